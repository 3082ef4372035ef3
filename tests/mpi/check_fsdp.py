#!/usr/bin/env python3
"""The FSDP stages are one training, only sharded differently (tests of shard/fsdp.h):
  - equivalence: tiny BERT and the default MiniLM job (5 steps, global batch 8, dropout 0), stages
    1, 2, 3 at N = 1, 2, 4, with train.grad_accum 1 and 2: per-step losses within 1e-5 relative of
    stage 1 at N = 1, final parameters within 1e-5 (norm-relative);
  - memory, from metrics.jsonl (the sharder's own count of parameter, gradient and optimizer
    bytes): at N = 2 stage 3 < stage 2 < stage 1, and each stage shrinks from N = 1 to N = 4;
  - resume across stages and world sizes: 6 steps of stage 1 at N = 1 vs the step-3 checkpoint of
    stage 3 at N = 4 resumed by stage 1 at N = 1 (and the reverse): losses of steps 4-6 and final
    parameters within 1e-5;
  - bf16 parameters and reductions (stage 3, N = 2): per-step losses within 2% of fp32;
  - bad input: an unknown stage or dtype, a unit over shard.bucket_mb: one error line, no work."""
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

    def compare(label, job, ranks, extra=()):
        out = work / f'{label}-stage1-n1'
        mpirun(1, angle, job + list(extra) + ['--shard.stage', 1, '--run.output_dir', out])
        reference, reference_params = losses(out), final_params(out)
        peaks = {(1, 1): metrics(out)[-1]['state_peak_bytes']}
        for stage in (1, 2, 3):
            for n in ranks:
                if (stage, n) == (1, 1):
                    continue
                out = work / f'{label}-stage{stage}-n{n}'
                mpirun(n, angle, job + list(extra) + ['--shard.stage', stage, '--run.output_dir', out])
                worst = max(rel(a, b) for a, b in zip(losses(out), reference))
                distance = param_distance(final_params(out), reference_params)
                peaks[(stage, n)] = max(m['state_peak_bytes'] for m in metrics(out))
                ok = worst <= 1e-5 and distance <= 1e-5 and len(losses(out)) == len(reference)
                print(f'[{"ok" if ok else "FAIL"}] {label} stage {stage} N={n}: losses {worst:.1e}, '
                      f'parameters {distance:.1e}, peak model state {peaks[(stage, n)] / 2**20:.1f} MiB per rank')
                if not ok:
                    failures.append(f'{label} stage {stage} N={n}: losses {worst:.1e}, parameters {distance:.1e}')
        return peaks

    compare('tiny', tiny, (1, 2, 4))
    compare('tiny-accum2', tiny, (1, 2, 4), ['--train.grad_accum', 2])
    peaks = compare('minilm', minilm, (1, 2, 4))
    compare('minilm-accum2', minilm, (1, 2, 4), ['--train.grad_accum', 2])
    order = [peaks[(3, 2)] < peaks[(2, 2)] < peaks[(1, 2)]] + [peaks[(s, 4)] < peaks[(s, 1)] for s in (1, 2, 3)]
    print(f'[{"ok" if all(order) else "FAIL"}] MiniLM peak model state per rank (MiB): ' +
          ', '.join(f'stage {s} N={n}: {peaks[(s, n)] / 2**20:.0f}' for s, n in sorted(peaks)))
    if not all(order):
        failures.append(f'memory does not shrink with the stage and the world size: {peaks}')

    # Resume across stages and world sizes: stage 3 at N = 4 -> stage 1 at N = 1, and back.
    six = tiny + ['--train.max_steps', 6, '--run.checkpoint_every', 3]
    straight = work / 'straight'
    mpirun(1, angle, six + ['--shard.stage', 1, '--run.output_dir', straight])
    for first, second in (((3, 4), (1, 1)), ((1, 1), (3, 4))):
        label = f's{first[0]}n{first[1]}-s{second[0]}n{second[1]}'
        saved, resumed = work / f'saved-{label}', work / f'resumed-{label}'
        mpirun(first[1], angle, six + ['--shard.stage', first[0], '--run.output_dir', saved])
        mpirun(second[1], angle, six + ['--shard.stage', second[0], '--run.output_dir', resumed,
                                        '--run.resume', saved / 'step-3'])
        distance = param_distance(final_params(resumed), final_params(straight))
        worst = max(rel(a, b) for a, b in zip(losses(resumed), losses(straight)[3:]))
        ok = distance <= 1e-5 and worst <= 1e-5 and len(losses(resumed)) == 3
        print(f'[{"ok" if ok else "FAIL"}] resume: stage {first[0]} N={first[1]} -> stage {second[0]} N={second[1]}: '
              f'losses 4-6 {worst:.1e}, parameters {distance:.1e}')
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
    expect.failure('unit above the bucket limit', bad + ['--shard.bucket_mb', 0.1],
                   ["unit 'embeddings.word_embeddings'", 'shard.bucket_mb = 0.1'])
    expect.exit_status()
    print('FSDP checks passed')


if __name__ == '__main__':
    main()
