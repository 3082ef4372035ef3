#!/usr/bin/env python3
"""`angle mine` at corpus scale: 10,000 queries against 1,000,000 precomputed corpus embeddings
(random unit vectors, 384-d, written here as the .h5 that `angle embed` writes; the texts are
"doc N") at 2 ranks, each rank under GNU time. Prints the wall time and every rank's peak RSS.
Goal: under 2 GiB per rank. Each query's positive is a random corpus line; 3 negatives each.

  python3 tests/bench/mine_scale.py [--queries 10000] [--corpus 1000000] [--ranks 2] [--work DIR]"""
import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'mpi'))
from distributed_step_time import machine  # noqa: E402
from runs import mpirun_peak_rss  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def unit_rows(rng, n, d):
    import numpy as np
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'), help='tokenizes the output')
    ap.add_argument('--queries', type=int, default=10000)
    ap.add_argument('--corpus', type=int, default=1000000)
    ap.add_argument('--dim', type=int, default=384)
    ap.add_argument('--ranks', type=int, default=2)
    ap.add_argument('--work', default=None)
    args = ap.parse_args()
    import h5py
    import numpy as np
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1', OMP_NUM_THREADS='1')
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = pathlib.Path(tmp)
        rng = np.random.default_rng(7)
        with h5py.File(work / 'corpus.h5', 'w') as f:
            out = f.create_dataset('embeddings', (args.corpus, args.dim), dtype='<f4')
            for start in range(0, args.corpus, 100000):
                out[start:start + 100000] = unit_rows(rng, min(100000, args.corpus - start), args.dim)
        (work / 'corpus.txt').write_text(''.join(f'doc {i}\n' for i in range(args.corpus)))
        positives = rng.integers(0, args.corpus, args.queries)
        (work / 'pairs.jsonl').write_text(''.join(json.dumps({'query': f'query {i}', 'positive': f'doc {p}'}) + '\n'
                                                  for i, p in enumerate(positives)))
        with h5py.File(work / 'queries.h5', 'w') as f:
            f['embeddings'] = unit_rows(rng, args.queries, args.dim)
        start = time.time()
        proc, rss = mpirun_peak_rss(args.ranks, args.angle, [
            'mine', '--model', args.model, '--queries', work / 'pairs.jsonl', '--corpus', work / 'corpus.txt',
            '--query-embeddings', work / 'queries.h5', '--corpus-embeddings', work / 'corpus.h5',
            '--output', work / 'mined.h5', '--quiet'], work / 'rss')
        seconds = time.time() - start
        with h5py.File(work / 'mined.h5') as f:
            triplets = int(f.attrs['count'])
    print(proc.stderr.strip().splitlines()[-1])
    print(f'machine: {machine()}')
    print(f'{args.queries:,} queries x {args.corpus:,} corpus embeddings ({args.dim}-d, '
          f'{args.corpus * args.dim * 4 / 2**30:.2f} GiB as float32) at {args.ranks} ranks: {seconds:.1f} s wall '
          f'(mpirun included), {triplets:,} triplets; peak RSS per rank: '
          + ', '.join(f'{r / 2**30:.2f} GiB' for r in rss) + ' (goal: under 2 GiB)')


if __name__ == '__main__':
    main()
