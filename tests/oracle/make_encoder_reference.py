#!/usr/bin/env python3
"""Reference tensors for the encoder parity test (angle_oracle_tests): 72 STS-B test sentences of
mixed length (shortest to longest), HF's padded token ids and mask, transformers' fp32
last_hidden_state, and sentence-transformers' pooled embeddings, stored as safetensors."""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import stsb_pairs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--model', required=True)
    ap.add_argument('--data-dir', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--count', type=int, default=72)
    args = ap.parse_args()
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    a, b, _ = stsb_pairs(pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-test.csv')
    by_length = sorted(set(a + b), key=lambda s: (len(s), s))
    picks = [by_length[round(i * (len(by_length) - 1) / (args.count - 1))] for i in range(args.count)]

    st = SentenceTransformer(args.model, device='cpu')
    max_length = st.max_seq_length
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    batch = tokenizer(picks, padding=True, truncation=True, max_length=max_length, return_tensors='pt')
    model = AutoModel.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        hidden = model(input_ids=batch['input_ids'], attention_mask=batch['attention_mask']).last_hidden_state
    pooled = st.encode(picks, batch_size=16, convert_to_numpy=True)

    encoded = [s.encode('utf-8') for s in picks]
    offsets = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file({'input_ids': batch['input_ids'].numpy().astype(np.int64),
               'attention_mask': batch['attention_mask'].numpy().astype(np.int64),
               'last_hidden_state': hidden.numpy().astype(np.float32),
               'st_embeddings': pooled.astype(np.float32),
               'text_bytes': np.frombuffer(b''.join(encoded), dtype=np.uint8).copy(),
               'text_offsets': offsets}, args.out)
    print(f'{len(picks)} sentences, padded length {batch["input_ids"].shape[1]} -> {args.out}')


if __name__ == '__main__':
    main()
