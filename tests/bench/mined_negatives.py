#!/usr/bin/env python3
"""Hard negatives mined by `angle mine` against random and SNLI's own negatives: all-MiniLM-L6-v2
trained on the same (premise, entailed hypothesis) pairs of SNLI dev, format C, for the same steps
(one epoch of jobs/stsb.ini's settings: batch 32, lr 2e-5, seed 42), with the negative of each pair
  - mined: `angle mine --num-negatives 1` over every SNLI dev hypothesis, by the base model: the
    nearest non-positive ("top"), and with sentence-transformers' documented example filters
    (--range-min 10 --range-max 50 --max-score 0.8 --relative-margin 0.05), which skip the nearest
    candidates, where false negatives are;
  - random: a hypothesis of the same set drawn at random (seeded), never the pair's positive;
  - SNLI: the premise's contradiction hypothesis (human-written);
each scored on the SNLI test retrieval set (datasets/snli_retrieval.py: nDCG@10, MRR@10,
Recall@100; test and dev share no sentence) and STS-B test, beside the base model.

  python3 tests/bench/mined_negatives.py [--seed 42]"""
import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'mpi'))
from check_formats import snli_triplets  # noqa: E402
from distributed_step_time import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / 'models/all-MiniLM-L6-v2'


def run(cmd):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f'failed: {" ".join(map(str, cmd))}\n{proc.stderr[-3000:]}')
    return proc


def scores(angle, model, beir):
    retrieval = json.loads(run([angle, 'eval', '--model', model, '--retrieval', beir, '--json', '--quiet']).stdout
                           .splitlines()[-1])
    sts = json.loads(run([angle, 'eval', '--model', model, '--data', 'stsb:data/STS/STSBenchmark/sts-test.csv', '--json',
                          '--quiet']).stdout.splitlines()[0])
    return {'ndcg@10': retrieval['ndcg_at_10'], 'mrr@10': retrieval['mrr_at_10'],
            'recall@100': retrieval['recall_at_100'], 'sts-b test': sts['spearman']}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--seed', type=int, default=42)
    args = ap.parse_args()
    import h5py
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
    snli = ROOT / 'data/NLI/SNLI_senteval'
    triplets = snli_triplets(snli, 10**9)
    hypotheses = sorted(set((snli / 's2.dev').read_text().splitlines()))
    rng = random.Random(args.seed)
    start = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        beir = work / 'snli-test'
        run([sys.executable, ROOT / 'datasets/snli_retrieval.py', '--data', ROOT / 'data', '--out', beir])
        results['base model'] = scores(args.angle, MODEL, beir)
        pairs = work / 'pairs.jsonl'
        pairs.write_text(''.join(json.dumps({'query': q, 'positive': p}) + '\n' for q, p, _ in triplets))
        corpus = work / 'hypotheses.txt'
        corpus.write_text('\n'.join(hypotheses) + '\n')
        files = {}
        for name, flags in (('mined top', []), ('mined filtered', ['--range-min', 10, '--range-max', 50, '--max-score',
                                                                     0.8, '--relative-margin', 0.05])):
            files[name] = work / f'{name.replace(" ", "-")}.h5'
            run([args.angle, 'mine', '--model', MODEL, '--queries', pairs, '--corpus', corpus, '--num-negatives', 1,
                 '--output', files[name], '--quiet', *flags])

        def prepared(name, rows):
            source = work / f'{name}.jsonl'
            source.write_text(''.join(json.dumps({'q': q, 'p': p, 'n': n}) + '\n' for q, p, n in rows))
            files[name] = work / f'{name}.h5'
            run([args.angle, 'prepare', '--format', 'jsonl', '--input', source, '--columns',
                 'query=q,positive=p,negative=n', '--model', MODEL, '--output', files[name]])

        def random_negative(positive):
            while True:
                h = rng.choice(hypotheses)
                if h != positive:
                    return h

        prepared('random', [(q, p, random_negative(p)) for q, p, _ in triplets])
        prepared('SNLI contradiction', [(q, p, n) for q, p, n in triplets])
        for name, path in files.items():
            out = work / f'train-{name}'.replace(' ', '-')
            run([args.angle, 'train', '--job', 'jobs/stsb.ini', '--data.train', path, '--data.format', 'C',
                 '--data.dev', '', '--data.test', '', '--train.seed', args.seed, '--run.output_dir', out])
            results[f'{name} negatives'] = scores(args.angle, out / 'final', beir)
            with h5py.File(path) as f:
                results[f'{name} negatives']['triplets'] = int(f.attrs['count'])
            print(f'{name}: {results[f"{name} negatives"]}', flush=True)
    print(f'\nmachine: {machine()}; {len(triplets):,} SNLI dev pairs, one epoch each; {time.time() - start:.0f} s')
    keys = ['ndcg@10', 'mrr@10', 'recall@100', 'sts-b test']
    print(f'{"model":<34}' + ''.join(f'{k:>12}' for k in keys) + f'{"triplets":>10}')
    for name, row in results.items():
        print(f'{name:<34}' + ''.join(f'{row[k]:>12.2f}' for k in keys) + f'{row.get("triplets", ""):>10}')


if __name__ == '__main__':
    main()
