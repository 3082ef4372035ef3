#!/usr/bin/env python3
"""The bytes autograd keeps from one BERT layer's forward, measured with PyTorch's saved-tensor
hooks on the same ATen operations as framework/model/bert.cpp's layer (packed per-token work,
padded attention, CPU dropout): the oracle for plan/activation_plan's per-layer formula. Each
distinct storage is counted once; parameters (and their transposed views) are not activations,
the layer's input is. Writes one JSON list of cases to --out."""
import argparse
import json

import torch
import torch.nn.functional as F


def layer_saved_bytes(rows, longest, real, dropout, hidden, intermediate, heads):
    torch.manual_seed(0)
    lengths = torch.full((rows,), real)
    lengths[0] = longest
    mask = torch.arange(longest)[None, :] < lengths[:, None]
    tokens = mask.reshape(-1).nonzero().squeeze(1)
    padded = rows * longest
    dense = tokens.numel() * 10 >= padded * 9
    if dense:
        tokens = torch.arange(padded)
    params = []

    def param(*shape):
        params.append(torch.randn(*shape).mul_(0.02).requires_grad_())
        return params[-1]

    w = [param(hidden, hidden) for _ in range(4)] + [param(intermediate, hidden), param(hidden, intermediate)]
    b = [param(hidden) for _ in range(4)] + [param(intermediate), param(hidden)]
    norm = [param(hidden), param(hidden)]
    x = torch.randn(tokens.numel(), hidden, requires_grad=True)
    seen = {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}
    param_storages = {p.untyped_storage().data_ptr() for p in params}

    def keep(t):
        key = t.untyped_storage().data_ptr()
        if key not in param_storages:
            seen.setdefault(key, t.untyped_storage().nbytes())
        return t

    def unpack(t):
        if dense:
            return t.view(rows, longest, -1)
        return torch.zeros(padded, t.size(1)).index_copy(0, tokens, t).view(rows, longest, -1)

    def pack(t):
        flat = t.reshape(padded, -1)
        return flat if dense else flat.index_select(0, tokens)

    def drop(t):
        return F.dropout(t, dropout) if dropout > 0 else t

    d = hidden // heads
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        def heads_of(k):
            return unpack(F.linear(x, w[k], b[k])).view(rows, longest, heads, d).transpose(1, 2)
        context = F.scaled_dot_product_attention(heads_of(0), heads_of(1), heads_of(2),
                                                 mask.view(rows, 1, 1, longest), dropout_p=dropout)
        context = pack(context.transpose(1, 2).reshape(rows, longest, hidden))
        h = F.layer_norm(drop(F.linear(context, w[3], b[3])) + x, (hidden,), norm[0], norm[1])
        ff = F.linear(F.gelu(F.linear(h, w[4], b[4])), w[5], b[5])
        F.layer_norm(drop(ff) + h, (hidden,), norm[0], norm[1])
    return sum(seen.values()), int(tokens.numel())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    cases = []
    for rows, longest, real, dropout in [(64, 48, 14, 0.1), (64, 48, 14, 0.0), (64, 48, 48, 0.1), (16, 128, 30, 0.1),
                                         (256, 64, 20, 0.0), (8, 32, 31, 0.1)]:
        for hidden, intermediate, heads in [(384, 1536, 12), (128, 512, 2)]:
            saved, _ = layer_saved_bytes(rows, longest, real, dropout, hidden, intermediate, heads)
            cases.append({'rows': rows, 'longest': longest, 'tokens': (rows - 1) * real + longest,
                          'dropout': dropout > 0, 'hidden': hidden,
                          'intermediate': intermediate, 'heads': heads, 'saved_bytes': saved})
    with open(args.out, 'w') as f:
        json.dump(cases, f, indent=1)
    print(f'{len(cases)} cases -> {args.out}')


if __name__ == '__main__':
    main()
