#!/usr/bin/env python3
"""torch.profiler over a PyTorch replica of `angle train`'s packed MiniLM step (model/bert.cpp's
operations: real tokens packed for the per-token layers, padded only for attention; dropout 0.1
through at::dropout and SDPA's math path, as before model/dropout.h) on 32 random STS-B train
pairs: the s/step and the operators' self CPU time (mm/addmm against the other operators, the
share of bernoulli_). --fused-qkv measures the one-projection Q/K/V variant that did not pay.

  python3 tests/bench/step_replica_profile.py [--fused-qkv] [--threads 2]"""
import argparse
import pathlib
import random
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_step_time import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/oracle'))
from common import stsb_pairs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'))
    ap.add_argument('--train', default=str(ROOT / 'data/STS/STSBenchmark/sts-train.csv'))
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--fused-qkv', action='store_true')
    args = ap.parse_args()
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModel.from_pretrained(args.model).train()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    a, b, _ = stsb_pairs(args.train)
    random.seed(0)
    texts = [t for i in random.sample(range(len(a)), 32) for t in (a[i], b[i])]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors='pt')
    ids, mask = batch['input_ids'], batch['attention_mask']
    B, T = ids.shape
    c = model.config
    H, heads = c.hidden_size, c.num_attention_heads
    P = dict(model.named_parameters())

    def forward():
        tokens = mask.reshape(-1).nonzero().squeeze(1)
        pack = lambda x: x.reshape(B * T, -1).index_select(0, tokens)  # noqa: E731
        unpack = lambda x: torch.zeros(B * T, x.size(1)).index_copy(0, tokens, x).view(B, T, x.size(1))  # noqa: E731
        positions = torch.arange(T).repeat(B).index_select(0, tokens)
        x = (F.embedding(ids.reshape(-1).index_select(0, tokens), P['embeddings.word_embeddings.weight']) +
             F.embedding(positions, P['embeddings.position_embeddings.weight']) +
             P['embeddings.token_type_embeddings.weight'][0])
        x = F.dropout(F.layer_norm(x, (H,), P['embeddings.LayerNorm.weight'], P['embeddings.LayerNorm.bias'], 1e-12), 0.1)
        key_mask = mask.bool().view(B, 1, 1, T)
        for layer in range(c.num_hidden_layers):
            p = lambda n: P[f'encoder.layer.{layer}.{n}']  # noqa: E731
            names = ('query', 'key', 'value')
            if args.fused_qkv:
                w = torch.cat([p(f'attention.self.{n}.weight') for n in names])
                bias = torch.cat([p(f'attention.self.{n}.bias') for n in names])
                q, k, v = unpack(F.linear(x, w, bias)).view(B, T, 3, heads, H // heads).permute(2, 0, 3, 1, 4)
            else:
                q, k, v = (unpack(F.linear(x, p(f'attention.self.{n}.weight'), p(f'attention.self.{n}.bias')))
                           .view(B, T, heads, H // heads).transpose(1, 2) for n in names)
            context = pack(F.scaled_dot_product_attention(q, k, v, key_mask, 0.1).transpose(1, 2).reshape(B, T, H))
            h = F.layer_norm(F.dropout(F.linear(context, p('attention.output.dense.weight'), p('attention.output.dense.bias')),
                                       0.1) + x, (H,), p('attention.output.LayerNorm.weight'),
                             p('attention.output.LayerNorm.bias'), 1e-12)
            ff = F.linear(F.gelu(F.linear(h, p('intermediate.dense.weight'), p('intermediate.dense.bias'))),
                          p('output.dense.weight'), p('output.dense.bias'))
            x = F.layer_norm(F.dropout(ff, 0.1) + h, (H,), p('output.LayerNorm.weight'), p('output.LayerNorm.bias'), 1e-12)
        return unpack(x)

    for _ in range(2):
        forward().pow(2).sum().backward()
    start = time.perf_counter()
    for _ in range(5):
        forward().pow(2).sum().backward()
    step = (time.perf_counter() - start) / 5
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            forward().pow(2).sum().backward()
    events = {e.key: e.self_cpu_time_total / 3e6 for e in prof.key_averages()}
    total = sum(events.values())
    tokens = int(mask.sum())
    shape = c.num_hidden_layers * (4 * H * H + 2 * H * c.intermediate_size)
    gemm = events.get('aten::mm', 0) + events.get('aten::addmm', 0)
    print(f'machine: {machine()}; {args.threads} threads; {B} sentences, {tokens} real tokens of {B * T} padded'
          f'{"; fused Q/K/V" if args.fused_qkv else ""}')
    print(f'step (forward + backward, unprofiled): {step:.3f} s')
    print(f'mm + addmm: {gemm:.3f} s/step ({gemm / total:.1%} of operator time), '
          f'{6 * shape * tokens / gemm / 1e9:.0f} GFLOP/s on the linear layers')
    for name, seconds in sorted(events.items(), key=lambda kv: -kv[1])[:8]:
        print(f'  {name:32s} {seconds * 1000:7.1f} ms/step {seconds / total:6.1%}')


if __name__ == '__main__':
    main()
