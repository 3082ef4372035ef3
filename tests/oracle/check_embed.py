#!/usr/bin/env python3
"""`angle embed` end to end (sorting, batching, pooling, normalisation, .npy and .h5 writers)
against sentence-transformers `encode` on 300 STS-B dev sentences: every row within 1e-5 cosine
distance, the same norms when the model normalises, and the .h5 output equal to the .npy one.
bf16 (--dtype bf16) against the same fp32 reference within a stated 1e-3 cosine distance (bf16
keeps 8 bits of mantissa), and --dtype auto choosing bf16 exactly when /proc/cpuinfo lists
avx512_bf16 or amx_bf16."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import fresh_dir, run, script_args, stsb_pairs  # noqa: E402


def main():
    args = script_args(__doc__, '--angle', '--model', '--data-dir', '--work')
    import h5py
    import numpy as np
    from sentence_transformers import SentenceTransformer

    work = fresh_dir(args.work)
    a, b, _ = stsb_pairs(pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-dev.csv')
    texts = (a + b)[:300]
    (work / 'texts.txt').write_text('\n'.join(texts) + '\n', encoding='utf-8')
    for out in ('emb.npy', 'emb.h5'):
        (work / out).unlink(missing_ok=True)
        run([args.angle, 'embed', '--model', args.model, '--input', work / 'texts.txt', '--output', work / out,
             '--batch-size', 17, '--quiet'])
    ours = np.load(work / 'emb.npy')
    with h5py.File(work / 'emb.h5', 'r') as f:
        ours_h5 = f['embeddings'][...]
    theirs = SentenceTransformer(args.model, device='cpu').encode(texts, batch_size=32, convert_to_numpy=True)
    if ours.shape != theirs.shape:
        sys.exit(f'shape {ours.shape} != sentence-transformers {theirs.shape}')
    if not np.array_equal(ours, ours_h5):
        sys.exit('.h5 output differs from .npy output')
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    worst = float((1 - cos).max())
    norm_gap = float(np.abs(np.linalg.norm(ours, axis=1) - np.linalg.norm(theirs, axis=1)).max())
    print(f'{len(texts)} texts: max cosine distance {worst:.2e}, max norm difference {norm_gap:.2e}')
    if worst > 1e-5:
        sys.exit(f'max cosine distance {worst} > 1e-5 (row {int((1 - cos).argmax())})')
    if norm_gap > 1e-3 * float(np.linalg.norm(theirs, axis=1).max()):
        sys.exit(f'norms differ by {norm_gap}: normalisation disagrees with sentence-transformers')

    log = run([args.angle, 'embed', '--model', args.model, '--input', work / 'texts.txt', '--output',
               work / 'bf16.npy', '--batch-size', 17, '--quiet', '--dtype', 'bf16'], capture_stderr=True)
    bf16 = np.load(work / 'bf16.npy')
    cos = (bf16 * theirs).sum(1) / np.linalg.norm(bf16, axis=1) / np.linalg.norm(theirs, axis=1)
    worst_bf16 = float((1 - cos).max())
    print(f'bf16: max cosine distance {worst_bf16:.2e} ({log.strip().splitlines()[-1]})')
    if bf16.dtype != np.float32 or worst_bf16 > 1e-3:
        sys.exit(f'bf16 embeddings: dtype {bf16.dtype}, max cosine distance {worst_bf16} > 1e-3')
    flags = next((line.split(':', 1)[1].split() for line in open('/proc/cpuinfo') if line.startswith('flags')), [])
    native = [f for f in ('amx_bf16', 'avx512_bf16') if f in flags]
    log = run([args.angle, 'embed', '--model', args.model, '--input', work / 'texts.txt', '--output',
               work / 'auto.npy', '--quiet', '--dtype', 'auto'], capture_stderr=True)
    expected = f'bf16 (native: {native[0]})' if native else 'fp32'
    if f'normalized, {expected};' not in log and f'pooling, {expected};' not in log:
        sys.exit(f'--dtype auto on a CPU with {native or "no native bf16"}: expected "{expected}" in: {log}')
    print(f'--dtype auto: {expected}')


if __name__ == '__main__':
    main()
