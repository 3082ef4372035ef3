#!/usr/bin/env python3
"""`angle plan` against measured runs of the same jobs (STS-B train, global batch 8, max length 32,
3 steps, metrics every step): MiniLM at N = 1, 2, 4 x stages 1, 2, 3, plus bf16 parameters and
reductions and gradient caching (train.chunk 2) at N = 2; the BERT-base-sized model at N = 1, 2, 4
x stages 1, 2, 3; the 8-layer, hidden-512 llama of make_tiny_decoders.py with LoRA (r 8 on all
seven projections, dropout 0.1: the base frozen, sharded as frozen units) at N = 1 x stage 1,
N = 2 x stages 1, 2, 3 and N = 4 x stages 2, 3, LoRA on q/v only at N = 2 x stage 3 and full fine-tuning at N = 2 x stages 2, 3:
  - communication: the bytes rank 0 hands to collectives in steps 2 and 3 (metrics.jsonl
    `comm_bytes`, counted by the comm layer) equal the plan's exactly;
  - model state: the sharder's measured peak (`state_peak_bytes`) at most the plan's (an upper
    bound) and within 10% of it once the window of reductions in flight is set aside at stages 2
    and 3 (shard.inflight_mb, 12 MiB: how much of it fills at once depends on the communication
    thread's timing, so a run can stay below the bound by up to that much);
  - peak RSS: the largest over the ranks as the kernel reports it to /usr/bin/time, within 25% of
    the plan's estimate where the ranks have a core each (printed only with more ranks than cores:
    a descheduled rank buffers its peers' eager messages, so its peak depends on timing) (also at N = 1 with global batch 128 and 256 with train.chunk 16, max length
    128, and the llama with LoRA and with full fine-tuning at global batch 16, where activations
    dominate);
  - bad input: a missing job or model directory, N < 1, a memory or link figure that does not
    parse: one error line.
  - projection (`--project config.json`, closed form on uniform data) against the simulation of a
    job on data that is uniform (every text 10 distinct tokens): communication bytes equal at
    stage 1, an upper bound at stages 2 and 3 (where the word embeddings are looked up by rows: it
    counts every token as distinct, [CLS] and [SEP] too), N = 2 and 4,
    with and without gradient caching; and its bad input.
The time model is compared with measured step times by tests/bench/plan_time.py (a benchmark)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402
from runs import ROOT, metrics, mpirun_peak_rss, short_job  # noqa: E402

INFLIGHT_WINDOW = 12 << 20  # shard.inflight_mb's default (the jobs here keep it)


def plan_json(angle, args):
    proc = subprocess.run([str(angle), 'plan', '--json'] + [str(a) for a in args], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f'angle plan {args} failed: {proc.stderr[-500:]}')
    return json.loads(proc.stdout)


def check_projection(angle, model, job, work, expect):
    """Uniform STS-B-format data: 64 examples, every text 8 distinct whole words of the model's
    vocabulary ([CLS] + 8 + [SEP] = 10 tokens), no text twice."""
    words = [w for w in (pathlib.Path(model) / 'vocab.txt').read_text().split('\n') if w.isalpha() and w.islower()
             and len(w) >= 3][:64 * 2 * 8]
    data = work / 'uniform.csv'
    data.write_text(''.join(f'main-captions\tMSRvid\t2012test\t{i:04d}\t{i % 6}.000\t'
                            f'{" ".join(words[16 * i:16 * i + 8])}\t{" ".join(words[16 * i + 8:16 * i + 16])}\n'
                            for i in range(64)))
    job = job + ['--data.train', f'stsb:{data}', '--model.path', model]
    for n in (2, 4):
        for stage in (1, 2, 3):
            for chunk in (0, 2):
                simulated = plan_json(angle, ['--ranks', n] + job + ['--shard.stage', stage, '--train.chunk', chunk])
                projected = plan_json(angle, ['--project', pathlib.Path(model) / 'config.json', '--ranks', n,
                                              '--global-batch', 8, '--tokens', 10, '--stage', stage, '--chunk', chunk,
                                              '--dtype', 'fp32', '--flops', 1e12])
                a, b = projected['comm_bytes']['total'], simulated['comm_bytes']['total']
                ok = a == b if stage < 2 else a >= b
                print(f'[{"ok" if ok else "FAIL"}] projection N={n} stage {stage} chunk {chunk}: {a} bytes, '
                      f'simulated {b} ({"equal" if stage < 2 else "upper bound"})')
                if not ok:
                    expect.failures.append(f'projection N={n} stage {stage} chunk {chunk}: {projected["comm_bytes"]} '
                                           f'vs {simulated["comm_bytes"]}')
    config = pathlib.Path(model) / 'config.json'
    expect.failure('projection without --flops', ['plan', '--project', config, '--ranks', 8], ['--flops'])
    expect.failure('LoRA on BERT', ['plan', '--project', config, '--lora', 8, '--flops', 1e12], ['LoRA'])
    expect.failure('batch not divisible', ['plan', '--project', config, '--ranks', 3, '--global-batch', 8,
                                           '--flops', 1e12], ['global batch 8', 'multiple of the ranks 3'])
    expect.failure('both job and projection', ['plan', '--project', config] + job, ['either --job'])


def main():
    args, angle, work, expect = setup(__doc__, '--model', '--bert-base', '--decoder', '--data-dir')
    failures = expect.failures
    job = short_job(args.data_dir)[1:]  # without 'train': '--job FILE' and the overrides
    job += ['--model.max_length', 32, '--train.global_batch', 8, '--train.max_steps', 3]
    grid = [(n, stage, []) for stage in (1, 2, 3) for n in (1, 2, 4)]
    cases = [('MiniLM', args.model, *case) for case in grid]
    cases += [('MiniLM', args.model, 2, 3, ['--shard.param_dtype', 'bf16', '--shard.reduce_dtype', 'bf16'])]
    cases += [('MiniLM', args.model, 2, stage, ['--train.chunk', 2]) for stage in (1, 2, 3)]
    # Where activations dominate the peak (one rank, larger batches; with gradient caching).
    cases += [('MiniLM', args.model, 1, 2, ['--train.global_batch', 128, '--model.max_length', 128]),
              ('MiniLM', args.model, 1, 2, ['--train.global_batch', 256, '--model.max_length', 128, '--train.chunk', 16])]
    cases += [('BERT-base', args.bert_base, *case) for case in grid]
    llama = ['--model.pooling', 'last']
    lora = llama + ['--lora.r', 8]
    cases += [('llama LoRA', args.decoder, n, stage, lora) for n, stage in ((1, 1), (2, 1), (2, 2), (2, 3), (4, 2), (4, 3))]
    cases += [('llama LoRA q/v', args.decoder, 2, 3, lora + ['--lora.target_modules', 'q_proj,v_proj'])]
    cases += [('llama', args.decoder, 2, stage, llama) for stage in (2, 3)]
    cases += [(model, args.decoder, 1, 2, extra + ['--train.global_batch', 16, '--model.max_length', 128])
              for model, extra in (('llama LoRA', lora), ('llama', llama))]
    worst_state = worst_peak = 0.0
    for model, path, n, stage, extra in cases:
        label = f'{model} N={n} stage {stage}' + (' ' + ' '.join(map(str, extra)) if extra else '')
        out = work / label.replace(' ', '_').replace('=', '')
        overrides = job + ['--model.path', path, '--shard.stage', stage, *extra]
        _, ranks_rss = mpirun_peak_rss(n, angle, ['train'] + overrides + ['--run.output_dir', out], work / 'rss')
        rss = max(ranks_rss)
        measured = {m['step']: m for m in metrics(out)}
        shutil.rmtree(out)  # the run's model directories (440 MB each for BERT-base) are not needed
        for step in (2, 3):
            proc = subprocess.run([str(angle), 'plan', '--ranks', str(n), '--step', str(step), '--json'] +
                                  [str(a) for a in overrides], capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                failures.append(f'{label}: angle plan failed: {proc.stderr[-500:]}')
                continue
            plan = json.loads(proc.stdout)
            if step == 3:
                peak_gap = (plan['peak_bytes']['total'] - rss) / rss
                # More ranks than cores: a descheduled rank buffers its peers' eager messages, so
                # its peak depends on timing (BERT-base at 4 ranks on 2 cores: +21% to +33%).
                asserted = n <= (os.cpu_count() or 1)
                if asserted:
                    worst_peak = max(worst_peak, abs(peak_gap))
                verdict = ('ok' if abs(peak_gap) <= 0.25 else 'FAIL') if asserted else 'info, more ranks than cores'
                print(f'[{verdict}] {label}: peak RSS plan '
                      f'{plan["peak_bytes"]["total"] / 2**20:.0f} MiB measured {rss / 2**20:.0f} MiB ({peak_gap:+.0%})')
                if asserted and abs(peak_gap) > 0.25:
                    failures.append(f'{label}: peak RSS plan {plan["peak_bytes"]} measured {rss}')
            comm_ok = plan['comm_bytes']['total'] == measured[step]['comm_bytes']
            state = measured[step]['state_peak_bytes']
            planned = plan['state_bytes']['total']
            gap = abs(planned - state) / state
            window = INFLIGHT_WINDOW if stage >= 2 else 0
            below = max(0, planned - window - state) / state
            worst_state = max(worst_state, below)
            ok = comm_ok and state <= planned * 1.01 and below <= 0.10
            print(f'[{"ok" if ok else "FAIL"}] {label} step {step}: comm bytes plan {plan["comm_bytes"]["total"]} '
                  f'measured {measured[step]["comm_bytes"]}; model state plan {plan["state_bytes"]["total"] / 2**20:.1f} '
                  f'MiB measured {state / 2**20:.1f} MiB ({gap:.1%})')
            if not ok:
                failures.append(f'{label} step {step}: comm {plan["comm_bytes"]} vs {measured[step]["comm_bytes"]}, '
                                f'state {plan["state_bytes"]["total"]} vs {state}')
    print(f'worst model-state gap (the in-flight window set aside) {worst_state:.1%}, worst peak-RSS gap {worst_peak:.0%}')

    check_projection(angle, args.model, job, work, expect)
    job += ['--model.path', args.model]
    expect.failure('missing job', ['plan', '--job', work / 'nope.ini', '--ranks', 2], ['nope.ini', 'cannot open'])
    expect.failure('no ranks', ['plan', '--ranks', 0] + job, ['--ranks 0', 'at least 1'])
    expect.failure('memory that does not parse', ['plan', '--ranks', 2, '--memory-gb', 'lots'] + job, ['memory-gb'])
    expect.failure('link that does not parse', ['plan', '--ranks', 2, '--link', 'intra=fast'] + job,
                   ["--link 'intra=fast'", 'intra=GB/s'])
    expect.failure('missing model directory', ['plan', '--ranks', 2] + job + ['--model.path', work / 'no-model'],
                   ['no-model'])
    expect.exit_status()
    print('plan checks passed')


if __name__ == '__main__':
    main()
