#!/usr/bin/env python3
"""Side-by-side training on format C (CPU): the SNLI triplets that `angle prepare --triplets`
makes from SNLI dev and test (premise, entailment, contradiction), all-MiniLM-L6-v2, one epoch,
the same recipe (angle-emb 0.6.1 defaults: ibn_w 1, cln_w 1, angle_w 0.02, cosine_w 0, every tau
20; lr 2e-5, batch 32, max length 64, mean pooling, duplicate filter on) and seed, trained by
`angle train` and by angle-emb's AnglE.fit on the same triplets (read back from the prepared
files). Every model is scored by `angle eval` on STS-B dev and test (Spearman x 100).

  python3 tests/bench/format_c_side_by_side.py      (~15 minutes on 2 cores)"""
import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/bench'))
from train_side_by_side import score, sh  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'))
    ap.add_argument('--data', default=str(ROOT / 'data'))
    ap.add_argument('--work', default=str(ROOT / 'checkpoints/format-c-side-by-side'))
    ap.add_argument('--seed', type=int, default=42)
    args = ap.parse_args()
    import h5py
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    files, triplets = [], []
    for split in ('dev', 'test'):
        out = work / f'snli-{split}-triplets.h5'
        sh([args.angle, 'prepare', '--format', 'snli-senteval', '--input', f'{args.data}/NLI/SNLI_senteval', '--split',
            split, '--triplets', '--keep-text', '--model', args.model, '--output', out, '--max-length', 64])
        files.append(str(out))
        with h5py.File(out) as f:
            columns = [[t.decode() for t in f[f'text/{c}'][:]] for c in ('query', 'positive', 'negative')]
        triplets += [dict(zip(('query', 'positive', 'negative'), row)) for row in zip(*columns)]
    jsonl = work / 'triplets.jsonl'
    jsonl.write_text(''.join(json.dumps(t) + '\n' for t in triplets))
    print(f'{len(triplets)} triplets', flush=True)

    rows = {'base model (no training)': score(args.angle, args.model, args.data, 'mean')}
    sh([args.angle, 'train', '--job', 'jobs/stsb.ini', '--run.output_dir', work / 'ours', '--model.path', args.model,
        '--model.max_length', 64, '--data.train', ','.join(files), '--data.dev', '', '--data.test', '',
        '--loss.preset', 'current', '--loss.cosine_w', 0, '--loss.ibn_w', 1, '--loss.cln_w', 1, '--loss.angle_w', 0.02,
        '--train.seed', args.seed, '--train.epochs', 1, '--train.threads', 2])
    rows['angle train'] = score(args.angle, work / 'ours/final', args.data, 'mean')
    sh([sys.executable, ROOT / 'tests/bench/angle_emb_run.py', '--model', args.model, '--triplets', jsonl, '--output',
        work / 'angle-emb', '--epochs', 1, '--seed', args.seed, '--max-length', 64, '--loss',
        '{"cosine_w": 0, "ibn_w": 1, "cln_w": 1, "angle_w": 0.02, "cosine_tau": 20, "ibn_tau": 20, "angle_tau": 20}'])
    rows['angle-emb 0.6.1 fit'] = score(args.angle, work / 'angle-emb', args.data, 'mean')

    print(f'\nformat C (SNLI dev+test triplets, {len(triplets)}), all-MiniLM-L6-v2, 1 epoch, seed {args.seed}: '
          'STS-B Spearman x 100, mean pooling')
    print(f'{"run":28s} {"dev":>7s} {"test":>7s}')
    for name, s in rows.items():
        print(f'{name:28s} {s["dev"]:7.2f} {s["test"]:7.2f}')
    ours, ref = rows['angle train'], rows['angle-emb 0.6.1 fit']
    print(f'ours - angle-emb: dev {ours["dev"] - ref["dev"]:+.2f}, test {ours["test"] - ref["test"]:+.2f} '
          '(goal: within 0.3)')


if __name__ == '__main__':
    main()
