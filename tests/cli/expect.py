"""The contract every failing `angle` command must keep, shared by the CLI test scripts: a
non-zero exit status, exactly one error line, last on stderr, containing every expected fragment
(file, line, key, problem), and no output file left behind (not even a temporary one)."""
import subprocess


class Expectations:
    def __init__(self, angle):
        self.angle = str(angle)
        self.failures = []

    def failure(self, label, args, expect, output=None):
        proc = subprocess.run([self.angle] + [str(a) for a in args], capture_output=True, text=True)
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if ': error: ' in l]
        problems = []
        if proc.returncode == 0:
            problems.append('exit status 0')
        if len(errors) != 1 or lines[-1] != errors[0]:
            problems.append(f'{len(errors)} error lines (expected one, last)')
        elif not all(e in errors[0] for e in expect):
            problems.append(f'message lacks one of {expect}')
        if output is not None:
            leftovers = [p.name for p in output.parent.iterdir() if p.name.startswith(output.name)]
            if leftovers:
                problems.append(f'left output files {leftovers}')
        print(f'[{"FAIL" if problems else "ok"}] {label}: rc={proc.returncode} {errors[:1]}')
        if problems:
            self.failures.append(f'{label}: {"; ".join(problems)}; stderr: {proc.stderr[-300:]}')

    def exit_status(self):
        if self.failures:
            raise SystemExit('FAILED:\n  ' + '\n  '.join(self.failures))


def setup(doc, *options):
    """The common start of a multi-rank test script: --angle, --work and `options` (required
    flags), mpirun allowed as root with one thread per rank, an empty work directory.
    Returns (args, angle path, work path, Expectations)."""
    import os
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'oracle'))
    from common import fresh_dir, script_args
    args = script_args(doc, '--angle', '--work', *options)
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1', OMP_NUM_THREADS='1')
    angle = pathlib.Path(args.angle)
    return args, angle, fresh_dir(args.work), Expectations(angle)
