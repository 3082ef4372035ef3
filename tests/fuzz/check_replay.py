#!/usr/bin/env python3
"""Every fuzz target (tests/fuzz/fuzz_*.cpp) replayed without libFuzzer over its seed corpus (built
from the real files by seeds.py) and over every input that once found a bug
(tests/fuzz/regressions/TARGET/): each input must end normally or in an angle::Error."""
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'oracle'))
from common import fresh_dir, script_args  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def main():
    args = script_args(__doc__, '--angle', '--replay', '--model', '--tiny', '--data-dir', '--work')
    work = fresh_dir(args.work)
    subprocess.run([sys.executable, HERE / 'seeds.py', '--angle', args.angle, '--model', args.model, '--tiny', args.tiny,
                    '--data-dir', args.data_dir, '--out', work / 'seeds'], check=True)
    targets = subprocess.run([args.replay, '--list'], capture_output=True, text=True, check=True).stdout.split()
    failures = []
    for target in targets:
        inputs = sorted(p for d in (work / 'seeds' / target, HERE / 'regressions' / target) if d.is_dir()
                        for p in d.iterdir() if p.is_file())
        if not inputs:
            failures.append(f'{target}: no seed input')
            continue
        proc = subprocess.run([args.replay, target, *inputs], capture_output=True, text=True,
                              env={'ANGLE_FUZZ_MODEL': args.model, 'PATH': '/usr/bin:/bin'})
        regressions = sum(1 for p in inputs if 'regressions' in p.parts)
        print(f'[{"ok" if proc.returncode == 0 else "FAIL"}] {target}: {len(inputs)} inputs '
              f'({regressions} regressions) {proc.stderr.strip()[-300:]}')
        if proc.returncode != 0:
            failures.append(f'{target}: rc {proc.returncode}: {proc.stderr[-500:]}')
    if len(targets) < 11:
        failures.append(f'only {len(targets)} targets: {targets}')
    if failures:
        sys.exit('FAILED:\n  ' + '\n  '.join(failures))


if __name__ == '__main__':
    main()
