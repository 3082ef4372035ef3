#!/usr/bin/env python3
"""Memory of gradient caching (train.chunk), measured outside the program: the peak RSS that the
kernel reports to /usr/bin/time for one `angle train` step of all-MiniLM-L6-v2 on format C (the
SNLI dev+test triplets of `angle prepare --triplets`, repeated as often as the batch needs, the
duplicate filter off so that every batch is full), max length 64, one rank, 2 threads:
  1. global batch 1024 with train.chunk 32 vs without;
  2. the largest global batch (doubling from 1024) whose step stays within --limit-gb (8 GB)
     with chunk 32.
Wall-clock seconds of each whole process (model loading included) are printed beside.

  python3 tests/bench/grad_cache_memory.py [--limit-gb 8] [--max-batch 16384]   (~15 minutes)"""
import argparse
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/bench'))
from distributed_step_time import machine  # noqa: E402
from train_side_by_side import sh  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'))
    ap.add_argument('--data', default=str(ROOT / 'data'))
    ap.add_argument('--work', default=str(ROOT / 'checkpoints/grad-cache-memory'))
    ap.add_argument('--limit-gb', type=float, default=8.0)
    ap.add_argument('--max-batch', type=int, default=16384)
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    files = []
    for split in ('dev', 'test'):
        out = work / f'snli-{split}-triplets.h5'
        if not out.exists():
            sh([args.angle, 'prepare', '--format', 'snli-senteval', '--input', f'{args.data}/NLI/SNLI_senteval',
                '--split', split, '--triplets', '--model', args.model, '--output', out, '--max-length', 64])
        files.append(str(out))
    triplets = 2954 + 2929  # counts of the two files (datasets/README.md)

    def step(batch, chunk):
        copies = -(-batch // triplets)
        out = work / f'b{batch}-c{chunk}'
        cmd = ['/usr/bin/time', '-f', 'max-rss-kb %M', args.angle, 'train', '--job', 'jobs/stsb.ini',
               '--model.path', args.model, '--model.max_length', 64, '--data.train', ','.join(files * copies),
               '--data.dev', '', '--data.test', '', '--data.filter_duplicate', 'false', '--train.global_batch', batch,
               '--train.max_steps', 1, '--train.chunk', chunk, '--train.threads', 2, '--run.output_dir', out]
        start = time.perf_counter()
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        rss = [int(l.split()[1]) for l in proc.stderr.splitlines() if l.startswith('max-rss-kb ')]
        if proc.returncode != 0 or not rss:
            print(proc.stderr[-2000:])
            return None, seconds
        gib = rss[0] / 2**20
        print(f'global batch {batch:6d}, chunk {chunk:3d}: peak RSS {gib:6.2f} GiB, {seconds:7.1f} s', flush=True)
        return gib, seconds

    print(f'machine: {machine()}; 2 threads, fp32', flush=True)
    plain, plain_s = step(1024, 0)
    cached, cached_s = step(1024, 32)
    largest = None
    batch = 1024
    while batch <= args.max_batch:
        gib, _ = (cached, cached_s) if batch == 1024 else step(batch, 32)
        if gib is None or gib > args.limit_gb * 1e9 / 2**30:
            break
        largest = batch
        batch *= 2
    print(f'\nglobal batch 1024: peak RSS {plain:.2f} GiB without chunks, {cached:.2f} GiB with chunk 32 '
          f'({plain / cached:.1f}x less); process time {plain_s:.0f} s vs {cached_s:.0f} s')
    print(f'largest global batch within {args.limit_gb:g} GB with chunk 32 (doubling from 1024, up to '
          f'{args.max_batch}): {largest} (goal >= 8192)')


if __name__ == '__main__':
    main()
