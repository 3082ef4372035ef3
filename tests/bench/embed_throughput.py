#!/usr/bin/env python3
"""Sentences/s of `angle embed` and of sentence-transformers `encode` on the STS-B test sentences
(2,758 texts), on this machine, with the same number of threads and the same batch size, in fp32
and in bf16 (ours: --dtype bf16; theirs: the model cast to bfloat16). Both are timed over the
encoding alone (model loading excluded); best of --repeats runs each. Prints the machine: bf16
pays only where the CPU multiplies it natively (avx512_bf16, amx_bf16).

  python3 tests/bench/embed_throughput.py [--threads 2] [--batch-size 32] [--model models/all-MiniLM-L6-v2]"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/oracle'))
from common import stsb_pairs  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_step_time import machine  # noqa: E402


def angle_embed_rates(angle, model, texts, batch_size, threads, repeats, count, extra=()):
    """{dtype: best `count` / encoding second} of `angle embed` over `texts`, fp32 and bf16 (the
    encoding time `angle embed` reports: model loading excluded)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        inp = pathlib.Path(tmp) / 'texts.txt'
        inp.write_text('\n'.join(texts) + '\n', encoding='utf-8')
        for dtype in ('fp32', 'bf16'):
            for _ in range(repeats):
                proc = subprocess.run([angle, 'embed', '--model', model, '--input', inp, '--output',
                                       pathlib.Path(tmp) / 'e.npy', '--batch-size', str(batch_size), '--threads',
                                       str(threads), '--dtype', dtype, '--quiet', *extra], capture_output=True,
                                      text=True, env=env)
                if proc.returncode != 0:
                    sys.exit(proc.stderr)
                rate = count / float(re.search(r'in ([0-9.]+) s', proc.stderr).group(1))
                rates[dtype] = max(rates.get(dtype, 0.0), rate)
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'))
    ap.add_argument('--stsb', default=str(ROOT / 'data/STS/STSBenchmark/sts-test.csv'))
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--repeats', type=int, default=3)
    args = ap.parse_args()
    a, b, _ = stsb_pairs(args.stsb)
    texts = a + b
    ours = angle_embed_rates(args.angle, args.model, texts, args.batch_size, args.threads, args.repeats, len(texts))
    theirs = {}

    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(args.threads)
    for dtype, torch_dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16)):
        st = SentenceTransformer(args.model, device='cpu').to(torch_dtype)
        st.encode(texts[:64], batch_size=args.batch_size)  # warm-up
        for _ in range(args.repeats):
            start = time.perf_counter()
            st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
            theirs[dtype] = max(theirs.get(dtype, 0.0), len(texts) / (time.perf_counter() - start))

    print(f'machine: {machine()}; torch {torch.__version__}')
    print(f'model {pathlib.Path(args.model).name}, {len(texts)} STS-B test sentences, batch {args.batch_size}, '
          f'{args.threads} threads, best of {args.repeats}; sentences/s')
    print(f'  {"":24s} {"fp32":>8s} {"bf16":>8s}')
    print(f'  {"angle embed":24s} {ours["fp32"]:8.1f} {ours["bf16"]:8.1f}')
    print(f'  {"sentence-transformers":24s} {theirs["fp32"]:8.1f} {theirs["bf16"]:8.1f}')
    print(f'  ratio, same dtype        {ours["fp32"] / theirs["fp32"]:8.2f}x {ours["bf16"] / theirs["bf16"]:7.2f}x')
    print(f'  angle embed --dtype bf16 / sentence-transformers fp32 (its default): '
          f'{ours["bf16"] / theirs["fp32"]:.2f}x')


if __name__ == '__main__':
    main()
