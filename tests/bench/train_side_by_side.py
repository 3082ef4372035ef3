#!/usr/bin/env python3
"""Side-by-side fine-tuning on STS-B (CPU): the same model (all-MiniLM-L6-v2), data, recipe
(jobs/stsb.ini: cosine_w 1, ibn_w 1, angle_w 0.02, every tau 20, lr 2e-5, batch 32, max length
128, mean pooling) and seed, trained by `angle train` and by angle-emb 0.6.1, plus a CoSENT-only
run of ours (cosine_w 1, others 0). Every model is scored by `angle eval` on STS-B dev and test
(Spearman x 100; the dev/test scores of the base model are printed too).

  python3 tests/bench/train_side_by_side.py [--epochs 1]      (~15 minutes per epoch on 2 cores)"""
import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def sh(cmd):
    print('+', ' '.join(map(str, cmd)), flush=True)
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return proc.stdout


def score(angle, model, data, pooling):
    out = {}
    for split in ('dev', 'test'):
        line = sh([angle, 'eval', '--model', model, '--pooling', pooling, '--quiet', '--json',
                   '--data', f'stsb:{data}/STS/STSBenchmark/sts-{split}.csv'])
        out[split] = json.loads(line)['spearman']
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'))
    ap.add_argument('--data', default=str(ROOT / 'data'))
    ap.add_argument('--work', default=str(ROOT / 'checkpoints/side-by-side'))
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--seed', type=int, default=42)
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    rows = {'base model (no training)': score(args.angle, args.model, args.data, 'mean')}
    common = ['--train.epochs', args.epochs, '--train.seed', args.seed, '--data.dev', '', '--data.test', '',
              '--model.path', args.model, '--data.train', f'stsb:{args.data}/STS/STSBenchmark/sts-train.csv']
    sh([args.angle, 'train', '--job', 'jobs/stsb.ini', '--run.output_dir', work / 'ours-angle', *common])
    rows['angle train, AnglE'] = score(args.angle, work / 'ours-angle/final', args.data, 'mean')
    sh([args.angle, 'train', '--job', 'jobs/stsb.ini', '--run.output_dir', work / 'ours-cosent', *common,
        '--loss.ibn_w', 0, '--loss.angle_w', 0])
    rows['angle train, CoSENT only'] = score(args.angle, work / 'ours-cosent/final', args.data, 'mean')
    sh([sys.executable, ROOT / 'tests/bench/angle_emb_run.py', '--model', args.model, '--train',
        f'{args.data}/STS/STSBenchmark/sts-train.csv', '--output', work / 'angle-emb', '--epochs', args.epochs,
        '--seed', args.seed])
    rows['angle-emb 0.6.1, AnglE'] = score(args.angle, work / 'angle-emb', args.data, 'mean')

    print(f'\nSTS-B Spearman x 100, all-MiniLM-L6-v2, {args.epochs} epoch(s), seed {args.seed}, mean pooling')
    print(f'{"run":32s} {"dev":>7s} {"test":>7s}')
    for name, s in rows.items():
        print(f'{name:32s} {s["dev"]:7.2f} {s["test"]:7.2f}')
    ours, ref, cosent = rows['angle train, AnglE'], rows['angle-emb 0.6.1, AnglE'], rows['angle train, CoSENT only']
    print(f'ours - angle-emb: dev {ours["dev"] - ref["dev"]:+.2f}, test {ours["test"] - ref["test"]:+.2f} '
          f'(goal >= -0.3); AnglE - CoSENT: dev {ours["dev"] - cosent["dev"]:+.2f}, '
          f'test {ours["test"] - cosent["test"]:+.2f} (goal >= 0)')


if __name__ == '__main__':
    main()
