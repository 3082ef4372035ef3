#!/usr/bin/env python3
"""The bytes autograd keeps from one layer's forward, measured with PyTorch's saved-tensor hooks on
the same ATen operations as framework/model/bert.cpp's layer (packed per-token work, padded
attention, CPU dropout) and framework/model/decoder.cpp's (RMSNorm in float32, rotary Q/K, the
grouped-query repeat, the fused attention kernel, SwiGLU; LoRA adapters with a byte dropout mask
as model/dropout.cpp keeps it on the CPU): the oracle for plan/activation_plan's per-layer formulas. Each
distinct storage is counted once; parameters (and their transposed views) are not activations,
the layer's input is, tensors shared by all layers (the boolean mask, the rotary tables) are not.
Writes one JSON list of cases to --out."""
import argparse
import json

import torch
import torch.nn.functional as F


class ByteMaskDropout(torch.autograd.Function):
    """Dropout that keeps a byte per element for backward, as model/dropout.cpp's CPU path does."""

    @staticmethod
    def forward(ctx, t, p):
        kept = (torch.rand_like(t) >= p).to(torch.uint8)
        ctx.save_for_backward(kept)
        ctx.scale = 1 / (1 - p)
        return t * kept * ctx.scale

    @staticmethod
    def backward(ctx, grad):
        (kept,) = ctx.saved_tensors
        return grad * kept * ctx.scale, None


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


PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']


CPU_MATH_ATTENTION_MAX_LENGTH = 96  # model/attention.h: kCpuMathAttentionMaxLength


def decoder_layer_saved_bytes(rows, longest, hidden, intermediate, heads, kv_heads, head_dim, lora_r, targets,
                              lora_dropout):
    """One decoder layer in float32 on `rows` sequences padded to `longest`, real lengths random
    (decoders work on the padded layout); LoRA of rank lora_r on `targets` freezes the base."""
    torch.manual_seed(0)
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    frozen = lora_r > 0
    params = []

    def param(*shape, train):
        params.append(torch.randn(*shape).mul_(0.02).requires_grad_(train))
        return params[-1]

    shapes = dict(zip(PROJECTIONS, [(q_dim, hidden), (kv_dim, hidden), (kv_dim, hidden), (hidden, q_dim),
                                    (intermediate, hidden), (intermediate, hidden), (hidden, intermediate)]))
    weight = {name: param(*shape, train=not frozen) for name, shape in shapes.items()}
    adapter = {name: (param(lora_r, shapes[name][1], train=True), param(shapes[name][0], lora_r, train=True))
               for name in targets if frozen}
    norms = [param(hidden, train=not frozen) for _ in range(2)]
    x = torch.randn(rows, longest, hidden, requires_grad=True)
    lengths = torch.randint(1, longest + 1, (rows,))
    lengths[0] = longest
    real = torch.arange(longest)[None, :] < lengths[:, None]
    i, j = torch.arange(longest).view(-1, 1), torch.arange(longest).view(1, -1)
    allowed = ((j <= i).view(1, 1, longest, longest) & real.view(rows, 1, 1, longest)) | (i == j)
    inverse = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(torch.arange(longest).float(), inverse)
    angles = torch.cat([angles, angles], -1)
    cos, sin = angles.cos(), angles.sin()
    shared = {t.untyped_storage().data_ptr() for t in params + [allowed, cos, sin]}
    seen = {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}

    def keep(t):
        key = t.untyped_storage().data_ptr()
        if key not in shared:
            seen.setdefault(key, t.untyped_storage().nbytes())
        return t

    def rms_norm(t, w):
        f = t.to(torch.float32)
        f = f * torch.rsqrt(f.pow(2).mean(-1, keepdim=True) + 1e-6)
        return w * f.to(t.dtype)

    def rotate(t):
        half = t.size(-1) // 2
        return t * cos + torch.cat([-t.narrow(-1, half, half), t.narrow(-1, 0, half)], -1) * sin

    def project(t, name):
        y = F.linear(t, weight[name])
        if name not in adapter:
            return y
        a, b = adapter[name]
        if lora_dropout > 0:
            t = ByteMaskDropout.apply(t, lora_dropout)
        return y + F.linear(F.linear(t, a), b) * 2.0

    def split(t, n):
        return t.view(rows, longest, n, head_dim).transpose(1, 2)

    def attention(q, k, v):
        """model/attention.cpp in training on the CPU: the math path up to its length, else the fused kernel."""
        if longest > CPU_MATH_ATTENTION_MAX_LENGTH:
            return F.scaled_dot_product_attention(q, k, v, allowed)
        root_scale = (1.0 / head_dim ** 0.5) ** 0.5
        scores = (q * root_scale) @ (k * root_scale).transpose(-2, -1)
        scores.masked_fill_(allowed.logical_not(), float('-inf'))
        return torch.softmax(scores, -1) @ v

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        h = rms_norm(x, norms[0])
        q, k, v = split(project(h, 'q_proj'), heads), split(project(h, 'k_proj'), kv_heads), split(project(h, 'v_proj'), kv_heads)
        q, k = rotate(q), rotate(k)
        if kv_heads != heads:
            k, v = k.repeat_interleave(heads // kv_heads, 1), v.repeat_interleave(heads // kv_heads, 1)
        context = attention(q, k, v)
        attended = x + project(context.transpose(1, 2).reshape(rows, longest, q_dim), 'o_proj')
        g = rms_norm(attended, norms[1])
        attended + project(F.silu(project(g, 'gate_proj')) * project(g, 'up_proj'), 'down_proj')
    return sum(seen.values())


def decoder_cases():
    cases = []
    lora_settings = [(0, [], 0.0), (8, PROJECTIONS, 0.1), (8, PROJECTIONS, 0.0), (4, ['q_proj', 'v_proj'], 0.1),
                     (16, ['k_proj', 'o_proj', 'down_proj'], 0.0), (8, ['gate_proj'], 0.0)]
    for rows, longest in [(8, 32), (3, 57), (2, 100)]:  # the math attention path twice, the fused kernel
        for hidden, intermediate, heads, kv_heads, head_dim in [(512, 1408, 8, 4, 64), (64, 112, 4, 4, 16),
                                                                (96, 256, 6, 2, 32)]:
            for lora_r, targets, dropout in lora_settings:
                saved = decoder_layer_saved_bytes(rows, longest, hidden, intermediate, heads, kv_heads, head_dim,
                                                  lora_r, targets, dropout)
                cases.append({'kind': 'decoder', 'rows': rows, 'longest': longest, 'hidden': hidden,
                              'intermediate': intermediate, 'heads': heads, 'kv_heads': kv_heads,
                              'head_dim': head_dim, 'lora_r': lora_r, 'targets': targets,
                              'adapter_dropout': dropout > 0, 'saved_bytes': saved})
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    cases = []
    for rows, longest, real, dropout in [(64, 48, 14, 0.1), (64, 48, 14, 0.0), (64, 48, 48, 0.1), (16, 128, 30, 0.1),
                                         (256, 64, 20, 0.0), (8, 32, 31, 0.1)]:
        for hidden, intermediate, heads in [(384, 1536, 12), (128, 512, 2)]:
            saved, _ = layer_saved_bytes(rows, longest, real, dropout, hidden, intermediate, heads)
            cases.append({'kind': 'bert', 'rows': rows, 'longest': longest, 'tokens': (rows - 1) * real + longest,
                          'dropout': dropout > 0, 'hidden': hidden,
                          'intermediate': intermediate, 'heads': heads, 'saved_bytes': saved})
    cases += decoder_cases()
    with open(args.out, 'w') as f:
        json.dump(cases, f, indent=1)
    print(f'{len(cases)} cases -> {args.out}')


if __name__ == '__main__':
    main()
