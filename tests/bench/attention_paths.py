#!/usr/bin/env python3
"""Forward + backward time of the two attention paths model/attention.cpp chooses between on the CPU in
training: at::scaled_dot_product_attention's fused kernel (bf16 inputs) and SDPA's math path in fp32
(inputs rounded to bf16, then float, as attention() does under autocast), causal mask, 9 heads of 64
(SmolLM2-135M), about 2,560 tokens per call, over sequence lengths. The fastest of two rounds of 3
calls each; prints the machine. The source of kCpuMathAttentionMaxLength (model/attention.h).

  python3 tests/bench/attention_paths.py [--lengths 40,128,256,512]"""
import argparse
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from distributed_step_time import machine  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--lengths', default='40,128,256,512')
    ap.add_argument('--heads', type=int, default=9)
    ap.add_argument('--head-dim', type=int, default=64)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(machine(), f'{torch.get_num_threads()} threads')
    H, D = args.heads, args.head_dim
    for T in (int(t) for t in args.lengths.split(',')):
        B = max(1, 2560 // T)
        q, k, v = (torch.randn(B, H, T, D, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        allowed = torch.ones(T, T, dtype=torch.bool).tril()[None, None].expand(B, 1, T, T)
        grad = torch.randn(B, H, T, D, dtype=torch.bfloat16)

        def fused():
            F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).backward(grad)

        def math_fp32():
            root = (1.0 / D ** 0.5) ** 0.5
            scores = (q.float() * root) @ (k.float() * root).transpose(-1, -2)
            scores = scores.masked_fill(~allowed, float('-inf'))
            (torch.softmax(scores, -1) @ v.float()).to(torch.bfloat16).backward(grad)

        best = {}
        for f in (fused, math_fp32, fused, math_fp32):
            f()
            start = time.perf_counter()
            for _ in range(3):
                f()
            best[f.__name__] = min(best.get(f.__name__, 1e9), (time.perf_counter() - start) / 3 * 1000)
        print(f'T {T:4d} x {B:3d} rows: fused {best["fused"]:7.1f} ms, math fp32 {best["math_fp32"]:7.1f} ms')


if __name__ == '__main__':
    main()
