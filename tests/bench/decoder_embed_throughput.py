#!/usr/bin/env python3
"""Tokens/s of `angle embed` on a LLaMA-family decoder against transformers doing the same work
(AutoModel, the tokenizer's padding side, last-token pooling as angle-emb's Pooler does), on the
STS-B test sentences (2,758 texts), the same threads, batch size and batch order (longest
first, as `angle embed` and sentence-transformers batch), in fp32 and in
bf16 (transformers: the model loaded in bfloat16). Tokens are the real (unpadded) tokens of all
texts. Timed over the encoding alone (model loading excluded); best of --repeats runs each. The
default model is the 8-layer, hidden-512 random llama that the test set-up makes
(tests/oracle/make_tiny_decoders.py: build/test-work/tiny-decoders/llama-8x512). With --adapter, the
model is a PEFT adapter directory (base + LoRA; transformers: peft's PeftModel).

  python3 tests/bench/decoder_embed_throughput.py [--model DIR] [--threads 2] [--batch-size 32]"""
import argparse
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/oracle'))
from common import stsb_pairs  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_step_time import machine  # noqa: E402
from embed_throughput import angle_embed_rates  # noqa: E402


def transformers_rate(model_dir, texts, batch_size, dtype, repeats):
    import json
    import torch
    from angle_emb.angle import Pooler
    from transformers import AutoModel, AutoTokenizer
    adapter = (pathlib.Path(model_dir) / 'adapter_config.json')
    base = json.loads(adapter.read_text())['base_model_name_or_path'] if adapter.exists() else model_dir
    model = AutoModel.from_pretrained(base, dtype=dtype)
    if adapter.exists():
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, model_dir)
    model.eval()
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token_id is None:
        tok.pad_token_id = 0
    pooler = Pooler(model, pooling_strategy='last', padding_side=tok.padding_side)
    # Longest first, as `angle embed` and sentence-transformers' encode batch them (less padding).
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=512)['input_ids']]
    texts = [t for _, t in sorted(zip(lengths, texts), key=lambda p: -p[0])]
    batches = [tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=512, return_tensors='pt')
               for i in range(0, len(texts), batch_size)]
    tokens = sum(int(b['attention_mask'].sum()) for b in batches)
    best = 0.0
    with torch.inference_mode():
        pooler({'input_ids': batches[0]['input_ids'], 'attention_mask': batches[0]['attention_mask']})  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            for b in batches:
                pooler({'input_ids': b['input_ids'], 'attention_mask': b['attention_mask']}).float().numpy()
            best = max(best, tokens / (time.perf_counter() - start))
    return best, tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'build/test-work/tiny-decoders/llama-8x512'))
    ap.add_argument('--stsb', default=str(ROOT / 'data/STS/STSBenchmark/sts-test.csv'))
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--repeats', type=int, default=3)
    args = ap.parse_args()
    a, b, _ = stsb_pairs(args.stsb)
    texts = a + b
    import torch
    torch.set_num_threads(args.threads)
    theirs, tokens = {}, 0
    for dtype, torch_dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16)):
        theirs[dtype], tokens = transformers_rate(args.model, texts, args.batch_size, torch_dtype, args.repeats)

    ours = angle_embed_rates(args.angle, args.model, texts, args.batch_size, args.threads, args.repeats, tokens,
                             ['--max-length', '512'])

    print(f'machine: {machine()}; torch {torch.__version__}')
    print(f'model {args.model}, {len(texts)} STS-B test sentences ({tokens} tokens), batch {args.batch_size}, '
          f'{args.threads} threads, best of {args.repeats}; tokens/s')
    print(f'  {"":24s} {"fp32":>9s} {"bf16":>9s}')
    print(f'  {"angle embed":24s} {ours["fp32"]:9.0f} {ours["bf16"]:9.0f}')
    print(f'  {"transformers":24s} {theirs["fp32"]:9.0f} {theirs["bf16"]:9.0f}')
    print(f'  ratio, same dtype        {ours["fp32"] / theirs["fp32"]:8.2f}x {ours["bf16"] / theirs["bf16"]:8.2f}x')


if __name__ == '__main__':
    main()
