#!/usr/bin/env python3
"""AnglE on an LLM, side by side (CPU): the recipe of jobs/llm-lora.ini (SmolLM2-135M-Instruct + LoRA
on all seven projections, Prompts.A, last-token pooling, bf16 autocast, STS-B train + SICK train)
trained by `angle train` and by angle-emb 0.6.1 + peft 0.18.1 (AnglE.fit, tests/bench/angle_emb_run.py:
the same model, data, prompt, LoRA settings, loss weights, lr, batch, steps, max length, seed and bf16
autocast), one after the other, for each seed.

Data order (--order): `same` (the default) gives both sides the same batches, so that the comparison
is paired and the seed's data order drops out of the difference: the pairs go to `angle train` as
one prepared HDF5 file (labels already in [0, 1]), which it visits in the order of its sampler, and
to angle-emb in that order (tests/oracle/sampler_order.py, the sampler's Python replica) with
sequential sampling. The dropout masks still differ. `own`: each side its own order (the job's two
training sets for us, HF Trainer's seeded random sampler for angle-emb).

Every trained model, and the base model with the prompt, is scored by `angle eval` (equal to
transformers + peft: tests oracle_billm, mpi_lora) on STS-B dev, STS-B test and SICK-R test
(Spearman x 100). Training pairs/s: ours from eval.json (the training loop), angle-emb's from its
fit's seconds (its training loop, and saving the adapter); tokens/s: ours measured (metrics.jsonl),
angle-emb's as its pairs/s times our tokens per pair (the same data in another order). Peak RSS of
each training process by GNU time. The first seed's final/ and its --merge export, embedded with no
flag, against peft / transformers + last pooling + the prompt (cosine distance). Prints the machine
beside the figures; writes summary.json.

  python3 tests/bench/llm_side_by_side.py [--seeds 42,43] [--steps N]   (~22 minutes per seed, 2 cores)"""
import argparse
import configparser
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/bench'))
from distributed_step_time import machine  # noqa: E402


def sh(cmd, timed=False):
    cmd = [str(c) for c in cmd]
    if timed:
        cmd = ['/usr/bin/time', '-f', 'peak_rss_kb %M'] + cmd
    print('+', ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    if not timed:
        return proc.stdout
    rss = int(re.findall(r'peak_rss_kb (\d+)', proc.stderr)[-1])
    return proc.stdout, rss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--job', default=str(ROOT / 'jobs/llm-lora.ini'))
    ap.add_argument('--data', default=str(ROOT / 'data'))
    ap.add_argument('--work', default=str(ROOT / 'checkpoints/llm-side-by-side'))
    ap.add_argument('--seeds', default='42,43')
    ap.add_argument('--steps', type=int, help="default: the job's train.max_steps")
    ap.add_argument('--order', choices=('same', 'own'), default='same', help='data order of the two sides')
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    job = configparser.ConfigParser(interpolation=None)
    job.read(args.job)
    model = (ROOT / job['model']['path']).resolve()
    prompt, max_length = job['data']['text_prompt'], job['model']['max_length']
    steps = args.steps or int(job['train']['max_steps'])
    batch, lr = int(job['train']['global_batch']), job['optim']['lr']
    loss = {k: float(job['loss'][k]) for k in ('cosine_w', 'ibn_w', 'angle_w', 'cosine_tau', 'ibn_tau', 'angle_tau')}
    sets = [f'stsb:{args.data}/STS/STSBenchmark/sts-dev.csv', f'stsb:{args.data}/STS/STSBenchmark/sts-test.csv',
            f'sick:{args.data}/SICK/semeval2014_task1_noheader/SICK_test_annotated.txt']
    names = ('STS-B dev', 'STS-B test', 'SICK-R test')

    def score(directory):
        data = [x for s in sets for x in ('--data', s)]
        lines = sh([args.angle, 'eval', '--model', directory, '--pooling', 'last', '--prompt', prompt, '--max-length',
                    max_length, '--dtype', 'bf16', '--quiet', '--json', *data]).splitlines()
        return dict(zip(names, (json.loads(l)['spearman'] for l in lines)))

    def export_check(final):
        """final/ (PEFT adapter) and its --merge export, embedded by `angle embed` with no flag, against
        peft / transformers + last pooling + the prompt, on 64 STS-B test sentences: cosine distances."""
        import numpy as np
        sys.path.insert(0, str(ROOT / 'tests/oracle'))
        from billm_oracle import embeddings
        from common import stsb_pairs
        texts = stsb_pairs(pathlib.Path(args.data) / 'STS/STSBenchmark/sts-test.csv')[0][:64]
        (work / 'export-texts.txt').write_text('\n'.join(texts) + '\n')
        merged = work / 'merged'
        sh([args.angle, 'export', '--checkpoint', final, '--output', merged, '--merge'])
        worst = {}
        for label, directory, base, adapter in (('PEFT adapter', final, model, final), ('merged', merged, merged, None)):
            sh([args.angle, 'embed', '--model', directory, '--input', work / 'export-texts.txt', '--output',
                work / 'export.npy', '--quiet'])
            ours, theirs = np.load(work / 'export.npy'), embeddings(base, adapter, texts, None, prompt)
            cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
            worst[label] = float((1 - cos).max())
        return worst

    def same_order_data():
        """The job's pairs as one prepared file for us, and a function writing them in our order for a seed."""
        sys.path.insert(0, str(ROOT / 'tests/oracle'))
        from common import default_job_pairs
        from sampler_order import epoch_permutation
        pairs = [{'text1': a, 'text2': b, 'label': y} for a, b, y in zip(*default_job_pairs(args.data))]
        jsonl = work / 'train-pairs.jsonl'
        jsonl.write_text(''.join(json.dumps(p) + '\n' for p in pairs))
        prepared = work / 'train-pairs.h5'
        sh([args.angle, 'prepare', '--format', 'jsonl', '--input', jsonl, '--columns', 'text1=text1,text2=text2,label=label',
            '--label-range', '0:1', '--model', model, '--text-prompt', prompt, '--max-length', max_length,
            '--output', prepared])

        def in_our_order(seed):
            path = work / f'train-pairs-seed{seed}.jsonl'
            path.write_text(''.join(json.dumps(pairs[i]) + '\n' for i in epoch_permutation(len(pairs), seed)))
            return path
        return ['--data.train', prepared, '--data.label_norm', 'none'], in_our_order

    if args.order == 'same':
        our_data, in_our_order = same_order_data()

        def their_data(seed):
            return ['--pairs-jsonl', in_our_order(seed), '--sequential']
    else:
        our_data = []

        def their_data(seed):
            return ['--default-job-data', args.data]

    rows = {'base': score(model)}
    runs = []
    for seed in (int(s) for s in args.seeds.split(',')):
        out = work / f'angle-{seed}'
        _, rss = sh([args.angle, 'train', '--job', args.job, '--train.seed', seed, '--train.max_steps', steps,
                     '--data.dev', '', '--data.test', '', '--run.output_dir', out, *our_data], timed=True)
        result = json.loads((out / 'eval.json').read_text())
        windows = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines() if '"tokens_per_s"' in l]
        tokens_per_pair = statistics.mean(w['tokens_per_s'] / w['pairs_per_s'] for w in windows)
        ours = {'seed': seed, 'side': 'angle', 'pairs_per_s': result['pairs_per_s'],
                'tokens_per_s': result['pairs_per_s'] * tokens_per_pair, 'peak_rss_mib': rss, **score(out / 'final')}
        theirs_dir = work / f'angle-emb-{seed}'
        stdout, rss = sh([sys.executable, ROOT / 'tests/bench/angle_emb_run.py', '--llm', '--model', model,
                          *their_data(seed), '--output', theirs_dir, '--max-steps', steps,
                          '--batch-size', batch, '--max-length', max_length, '--lr', lr, '--seed', seed, '--bf16',
                          '--threads', os.cpu_count(), '--text-prompt', prompt, '--lora-r', job['lora']['r'],
                          '--lora-alpha', job['lora']['alpha'], '--lora-dropout', job['lora']['dropout'],
                          '--loss', json.dumps(loss)], timed=True)
        fit = json.loads(stdout.strip().splitlines()[-1])
        pairs_per_s = fit['pairs'] / fit['fit_seconds']
        theirs = {'seed': seed, 'side': 'angle-emb', 'pairs_per_s': pairs_per_s,
                  'tokens_per_s': pairs_per_s * tokens_per_pair, 'peak_rss_mib': rss, **score(theirs_dir)}
        if not runs:
            ours['export_cosine_distance'] = export_check(out / 'final')
        runs += [ours, theirs]
        print(json.dumps(ours), json.dumps(theirs), sep='\n', flush=True)

    def mean(side, key):
        return statistics.mean(r[key] for r in runs if r['side'] == side)

    def spread(side, key):
        values = [r[key] for r in runs if r['side'] == side]
        return max(values) - min(values)

    print(f'\nSmolLM2-135M-Instruct + LoRA, {steps} steps of {batch} pairs, seeds {args.seeds}, data order '
          f'{args.order}; {machine()}')
    print(f'{"run":24s} ' + ' '.join(f'{n:>11s}' for n in names) + f' {"pairs/s":>8s} {"tokens/s":>9s} {"RSS MiB":>8s}')
    print(f'{"base (Prompts.A)":24s} ' + ' '.join(f'{rows["base"][n]:11.2f}' for n in names))
    for r in runs:
        print(f'{r["side"] + " seed " + str(r["seed"]):24s} ' + ' '.join(f'{r[n]:11.2f}' for n in names)
              + f' {r["pairs_per_s"]:8.2f} {r["tokens_per_s"]:9.1f} {r["peak_rss_mib"]:8.0f}')
    for side in ('angle', 'angle-emb'):
        print(f'{side + " mean (spread)":24s} ' + ' '.join(f'{mean(side, n):6.2f} ({spread(side, n):.2f})' for n in names))
    for n in names[1:]:
        paired = [a[n] - b[n] for a, b in zip(runs[0::2], runs[1::2])]
        print(f'{n}: trained - base {mean("angle", n) - rows["base"][n]:+.2f} (seed spread {spread("angle", n):.2f}); '
              f'angle - angle-emb {mean("angle", n) - mean("angle-emb", n):+.2f} (goal >= -0.5; per seed '
              + ' '.join(f'{d:+.2f}' for d in paired) + ')')
    print(f'export of seed {runs[0]["seed"]} (no flag) vs peft / transformers + last pooling + the prompt, '
          f'max cosine distance: {runs[0]["export_cosine_distance"]} (goal <= 1e-5)')
    ratio = mean('angle', 'pairs_per_s') / mean('angle-emb', 'pairs_per_s')
    print(f'training pairs/s: angle / angle-emb {ratio:.2f}x (goal >= 1.5)')
    (work / 'summary.json').write_text(json.dumps({'machine': machine(), 'steps': steps, 'order': args.order,
                                                   'base': rows['base'],
                                                   'runs': runs, 'pairs_per_s_ratio': ratio}, indent=2))


if __name__ == '__main__':
    main()
