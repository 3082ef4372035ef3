#!/usr/bin/env python3
"""Memory of the sharding stages where it matters: a BERT-base-sized random model (~109 M
parameters, tests/oracle/make_bert_base.py), 2 steps of global batch 8, at N = 1, 2, 4 ranks and
stages 1, 2, 3. Per rank, the peak of the model-state bytes the sharder holds (parameters,
gradients, optimizer state; metrics.jsonl `state_peak_bytes`, counted as tensors are allocated and
freed) and the peak RSS of every rank as the kernel reports it to /usr/bin/time (measured from
outside the program; the largest over ranks), and the growth of the resident set across loading
that the program logs (its peak while loading over the resident set before, the largest rank).
Prints the table (README "Sharding") and asserts: at N = 4, stage 3 <= 0.32x and stage 2 <= 0.45x
of the unsharded run (stage 1 at N = 1), stage 1 keeps only the optimizer state sharded, and the
peak RSS falls with the stage. Sharded loading (each rank reads only its slices of the weights
files): at N = 4, stage 3, the largest rank's peak RSS at most 0.45x that at N = 1, stage 3, and its
growth across loading at most 0.4x that at N = 1, stage 3."""
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402
from runs import metrics, mpirun_peak_rss, short_job  # noqa: E402


def main():
    args, angle, work, expect = setup(__doc__, '--model', '--data-dir')
    failures = expect.failures
    job = short_job(args.data_dir) + ['--train.max_steps', 2, '--train.global_batch', 8, '--model.max_length', 32,
                                      '--model.path', args.model, '--model.pooling', 'mean']
    state, rss, loading = {}, {}, {}
    for n in (1, 2, 4):
        for stage in (1, 2, 3):
            out = work / f'stage{stage}-n{n}'
            proc, ranks_rss = mpirun_peak_rss(n, angle, job + ['--shard.stage', stage, '--run.output_dir', out],
                                              work / 'rss')
            lines = metrics(out)
            state[(stage, n)] = max(m['state_peak_bytes'] for m in lines)
            rss[(stage, n)] = max(ranks_rss)
            grew = re.search(r'loading: resident memory grew by at most ([0-9.]+) MiB', proc.stderr)
            if not grew:
                sys.exit(f'stage {stage} N={n}: no loading line in the log:\n{proc.stderr[-2000:]}')
            loading[(stage, n)] = float(grew.group(1)) * 2**20
            parts = lines[-1]
            print(f'stage {stage} N={n}: peak model state {state[(stage, n)] / 2**20:7.1f} MiB (parameters '
                  f'{parts["params_bytes"] / 2**20:.0f}, gradients {parts["grads_bytes"] / 2**20:.0f}, optimizer '
                  f'{parts["optim_bytes"] / 2**20:.0f}), peak RSS {rss[(stage, n)] / 2**20:.0f} MiB, loading '
                  f'+{loading[(stage, n)] / 2**20:.0f} MiB', flush=True)
    base = state[(1, 1)]
    print('\n| ranks | stage 1 | stage 2 | stage 3 |\n|---|---|---|---|')
    for n in (1, 2, 4):
        cells = [f'{state[(s, n)] / 2**20:.0f} MiB ({state[(s, n)] / base:.2f}x), RSS {rss[(s, n)] / 2**20:.0f} MiB, '
                 f'loading +{loading[(s, n)] / 2**20:.0f} MiB' for s in (1, 2, 3)]
        print(f'| {n} | ' + ' | '.join(cells) + ' |')
    rss_ratio, loading_ratio = rss[(3, 4)] / rss[(3, 1)], loading[(3, 4)] / loading[(3, 1)]
    print(f'\nstage 3 at N=4 against N=1: peak RSS {rss_ratio:.2f}x (against the smallest at N=1, stage 1: '
          f'{rss[(3, 4)] / min(rss[(s, 1)] for s in (1, 2, 3)):.2f}x), growth across loading {loading_ratio:.2f}x')
    checks = [('stage 3 at N=4 <= 0.32x', state[(3, 4)] <= 0.32 * base),
              ('stage 3 at N=4: peak RSS <= 0.45x that at N=1 (sharded loading)', rss_ratio <= 0.45),
              ('stage 3 at N=4: growth across loading <= 0.4x that at N=1', loading_ratio <= 0.4),
              ('stage 2 at N=4 <= 0.45x', state[(2, 4)] <= 0.45 * base),
              ('stage 1 at N=4 between 0.5x and 0.75x (only the optimizer state is sharded)',
               0.5 * base <= state[(1, 4)] <= 0.75 * base),
              # Stage 1 at N=4 saves only 3/4 of the optimizer state, less than the spread of four
              # ranks' loading peaks (2580-2791 MiB against 2753-2924 at N=1 in CI runs), so its RSS
              # is not compared with N=1; the model-state check above measures that saving.
              ('peak RSS at N=4: stage 3 below stage 1 and below N=1',
               rss[(3, 4)] < rss[(1, 4)] and rss[(3, 4)] < rss[(1, 1)])]
    for label, ok in checks:
        print(f'[{"ok" if ok else "FAIL"}] {label}')
        if not ok:
            failures.append(label)
    expect.exit_status()


if __name__ == '__main__':
    main()
