#!/usr/bin/env python3
"""The FSDP stages are one training, only sharded differently (tests of shard/fsdp.h):
  - equivalence: tiny BERT and the default MiniLM job (5 steps, global batch 8, dropout 0), stages
    1, 2, 3 at N = 1, 2, 4 and hybrid sharding (shard.replicate 2) at N = 2, 4, with
    train.grad_accum 1 and 2, and tiny BERT with train.chunk 2; MiniLM with buckets of 3 MiB
    (several per layer, cut in the order learned from the first backward) at N = 2, 4: per-step
    losses within 1e-5 relative of stage 1 at N = 1, final parameters within 1e-5 (norm-relative);
  - memory, from metrics.jsonl (the sharder's own count of parameter, gradient and optimizer
    bytes): at N = 2 stage 3 < stage 2 < stage 1, and each stage shrinks from N = 1 to N = 4;
  - resume across stages, replicas and world sizes: 6 steps of stage 1 at N = 1 vs the step-3
    checkpoint of stage 3 at N = 4 resumed by stage 1 at N = 1 (and the reverse), of HSDP 2 x 2
    (stage 3) resumed as 1 rank and as FSDP 1 x 4 (stage 2), and of FSDP 1 x 4 resumed as HSDP
    2 x 2: losses of steps 4-6 and final parameters within 1e-5;
  - bf16 parameters and reductions (stage 3, N = 2): per-step losses within 2% of fp32;
  - bad input: an unknown stage or dtype, shard.bucket_mb below a parameter's gradient, a
    shard.replicate that is not a number or node, or (N = 4) does not divide the ranks: one error
    line, no step."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402
from runs import final_params, losses, metrics, mpirun, param_distance, rel, short_job  # noqa: E402


def main():
    args, angle, work, expect = setup(__doc__, '--tiny', '--model', '--data-dir')
    failures = expect.failures
    common = short_job(args.data_dir) + ['--train.max_steps', 5, '--train.global_batch', 8]
    tiny = common + ['--model.path', args.tiny, '--model.pooling', 'cls', '--model.max_length', 64]
    minilm = common + ['--model.path', args.model, '--model.max_length', 32]

    def compare(label, job, ranks, extra=(), stages=(1, 2, 3), replicas=(1, 2)):
        out = work / f'{label}-stage1-n1'
        mpirun(1, angle, job + list(extra) + ['--shard.stage', 1, '--run.output_dir', out])
        reference, reference_params = losses(out), final_params(out)
        peaks = {(1, 1): metrics(out)[-1]['state_peak_bytes']}
        for stage in stages:
            for n in ranks:
                for replicate in replicas:
                    if (stage, n) == (1, 1) or replicate > 1 and (n < 2 or n % replicate):
                        continue
                    name = f'{label}-stage{stage}-n{n}' + (f'-r{replicate}' if replicate > 1 else '')
                    out = work / name
                    mpirun(n, angle, job + list(extra) + ['--shard.stage', stage, '--shard.replicate', replicate,
                                                          '--run.output_dir', out])
                    worst = max(rel(a, b) for a, b in zip(losses(out), reference))
                    distance = param_distance(final_params(out), reference_params)
                    if replicate == 1:
                        peaks[(stage, n)] = max(m['state_peak_bytes'] for m in metrics(out))
                    ok = worst <= 1e-5 and distance <= 1e-5 and len(losses(out)) == len(reference)
                    print(f'[{"ok" if ok else "FAIL"}] {name}: losses {worst:.1e}, parameters {distance:.1e}, peak '
                          f'model state {max(m["state_peak_bytes"] for m in metrics(out)) / 2**20:.1f} MiB per rank')
                    if not ok:
                        failures.append(f'{name}: losses {worst:.1e}, parameters {distance:.1e}')
        return peaks

    compare('tiny', tiny, (1, 2, 4))
    compare('tiny-accum2', tiny, (1, 2, 4), ['--train.grad_accum', 2])
    compare('tiny-chunk2', tiny, (2, 4), ['--train.chunk', 2])
    peaks = compare('minilm', minilm, (1, 2, 4))
    compare('minilm-accum2', minilm, (1, 2, 4), ['--train.grad_accum', 2])
    compare('minilm-buckets', minilm, (2, 4), ['--shard.bucket_mb', 3], stages=(2, 3), replicas=(1,))
    order = [peaks[(3, 2)] < peaks[(2, 2)] < peaks[(1, 2)]] + [peaks[(s, 4)] < peaks[(s, 1)] for s in (1, 2, 3)]
    print(f'[{"ok" if all(order) else "FAIL"}] MiniLM peak model state per rank (MiB): ' +
          ', '.join(f'stage {s} N={n}: {peaks[(s, n)] / 2**20:.0f}' for s, n in sorted(peaks)))
    if not all(order):
        failures.append(f'memory does not shrink with the stage and the world size: {peaks}')

    # Resume across stages, replicas and world sizes: (stage, N, replicate) -> (stage, N, replicate).
    six = tiny + ['--train.max_steps', 6, '--run.checkpoint_every', 3]
    straight = work / 'straight'
    mpirun(1, angle, six + ['--shard.stage', 1, '--run.output_dir', straight])
    for first, second in (((3, 4, 1), (1, 1, 1)), ((1, 1, 1), (3, 4, 1)), ((3, 4, 2), (1, 1, 1)),
                          ((3, 4, 2), (2, 4, 1)), ((2, 4, 1), (3, 4, 2))):
        label = '-'.join(f's{s}n{n}r{r}' for s, n, r in (first, second))
        saved, resumed = work / f'saved-{label}', work / f'resumed-{label}'
        mpirun(first[1], angle, six + ['--shard.stage', first[0], '--shard.replicate', first[2],
                                       '--run.output_dir', saved])
        mpirun(second[1], angle, six + ['--shard.stage', second[0], '--shard.replicate', second[2],
                                        '--run.output_dir', resumed, '--run.resume', saved / 'step-3'])
        distance = param_distance(final_params(resumed), final_params(straight))
        worst = max(rel(a, b) for a, b in zip(losses(resumed), losses(straight)[3:]))
        ok = distance <= 1e-5 and worst <= 1e-5 and len(losses(resumed)) == 3
        print(f'[{"ok" if ok else "FAIL"}] resume: stage {first[0]} N={first[1]} replicate {first[2]} -> stage '
              f'{second[0]} N={second[1]} replicate {second[2]}: losses 4-6 {worst:.1e}, parameters {distance:.1e}')
        if not ok:
            failures.append(f'resume {first} -> {second}: losses {worst:.1e}, parameters {distance:.1e}')

    # bf16 parameters and reductions track fp32.
    fp32, bf16 = work / 'tiny-stage3-n2', work / 'bf16'
    mpirun(2, angle, tiny + ['--shard.stage', 3, '--shard.param_dtype', 'bf16', '--shard.reduce_dtype', 'bf16',
                             '--run.output_dir', bf16])
    worst = max(rel(a, b) for a, b in zip(losses(bf16), losses(fp32)))
    print(f'[{"ok" if worst <= 0.02 else "FAIL"}] bf16 stage 3 N=2: losses within {worst:.1e} of fp32 '
          f'({losses(bf16)} vs {losses(fp32)})')
    if worst > 0.02 or worst == 0:
        failures.append(f'bf16 losses differ from fp32 by {worst:.1e} (expected (0, 0.02])')

    # Bad input: one error line before any work.
    bad = tiny + ['--run.output_dir', work / 'bad']
    expect.failure('unknown stage', bad + ['--shard.stage', 4], ['shard.stage 4', 'must be 1, 2 or 3'])
    expect.failure('unknown param dtype', bad + ['--shard.param_dtype', 'fp16'], ['shard.param_dtype', 'fp16'])
    expect.failure('unknown reduce dtype', bad + ['--shard.reduce_dtype', 'int8'], ['shard.reduce_dtype', 'int8'])
    expect.failure('bucket below a parameter', minilm + ['--run.output_dir', work / 'bad', '--shard.bucket_mb', 0.5],
                   ['shard.bucket_mb = 0.5 is below the gradient of', 'set 0 for one bucket per unit'])
    expect.failure('replicate not a number', bad + ['--shard.replicate', 'two'], ['shard.replicate', "'two'"])
    # At 4 ranks, 3 replicas: every rank says so (one line each), and no step runs.
    proc = mpirun(4, angle, bad + ['--shard.replicate', 3], check=False)
    errors = [l for l in proc.stderr.splitlines() if ': error: ' in l]
    steps = metrics(work / 'bad') if (work / 'bad' / 'metrics.jsonl').exists() else []
    ok = (proc.returncode != 0 and len(errors) >= 1 and not steps and
          all('shard.replicate = 3 does not divide the 4 ranks' in line for line in errors))
    print(f'[{"ok" if ok else "FAIL"}] replicate 3 at N=4: rc={proc.returncode} {errors[:1]}')
    if not ok:
        failures.append(f'replicate 3 at N=4: rc={proc.returncode}, stderr {proc.stderr[-500:]}')
    expect.exit_status()
    print('FSDP checks passed')


if __name__ == '__main__':
    main()
