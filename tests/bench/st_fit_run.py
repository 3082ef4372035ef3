#!/usr/bin/env python3
"""Runs sentence-transformers' trainer with CoSENTLoss (its scale 20, as the AnglE recipe's
cosine_tau) on the main job's pairs (STS-B + SICK train, labels in [0, 1]): the peer of
`angle train` in tests/bench/train_throughput.py. Not part of the product."""
import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/oracle'))
from common import default_job_pairs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--model', required=True)
    ap.add_argument('--data', required=True, help='data directory (STS and SICK)')
    ap.add_argument('--output', required=True)
    ap.add_argument('--max-steps', type=int, required=True)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--max-length', type=int, default=128)
    ap.add_argument('--lr', type=float, default=2e-5)
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bf16', action='store_true', help='bf16 autocast (trainer bf16=True)')
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import CoSENTLoss
    model = SentenceTransformer(args.model, device='cpu')
    model.max_seq_length = args.max_length
    a, b, y = default_job_pairs(args.data)
    train = Dataset.from_dict({'sentence1': a, 'sentence2': b, 'score': y})
    training = SentenceTransformerTrainingArguments(
        output_dir=args.output, per_device_train_batch_size=args.batch_size, max_steps=args.max_steps,
        learning_rate=args.lr, warmup_steps=0, seed=args.seed, save_strategy='no', eval_strategy='no',
        report_to='none', use_cpu=True, dataloader_num_workers=0, logging_steps=10, bf16=args.bf16)
    trainer = SentenceTransformerTrainer(model=model, args=training, train_dataset=train,
                                         loss=CoSENTLoss(model, scale=20.0))
    start = time.perf_counter()
    trainer.train()
    print(json.dumps({'fit_seconds': time.perf_counter() - start}))


if __name__ == '__main__':
    main()
