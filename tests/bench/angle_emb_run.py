#!/usr/bin/env python3
"""Runs the reference library angle-emb (v0.6.1, AnglE.fit) with a recipe given on the command
line, on STS-B pairs (format A, --train CSV), on the main job's pairs (--default-job-data DIR:
STS-B + SICK train, labels in [0, 1]), on format A pairs in a JSONL of text1/text2/label
(--pairs-jsonl) or on triplets (format C, --triplets JSONL with query/positive/negative).
--sequential: batches in file order (HF Trainer's train_sampling_strategy = sequential) instead of
the Trainer's seeded random order. --llm: a decoder with peft LoRA (--lora-r/--lora-alpha/--lora-dropout on
every linear layer, angle-emb's default targets), last-token pooling, --text-prompt. Used by the
side-by-side and throughput benchmarks; not part of the product. Prints the fit's seconds and the
number of pairs it trained on."""
import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/oracle'))
from common import default_job_pairs, stsb_pairs  # noqa: E402


def dataset(args):
    from datasets import Dataset
    if args.triplets:
        rows = [json.loads(line) for line in pathlib.Path(args.triplets).read_text().splitlines()]
        return Dataset.from_dict({k: [r[k] for r in rows] for k in ('query', 'positive', 'negative')})
    if args.pairs_jsonl:
        rows = [json.loads(line) for line in pathlib.Path(args.pairs_jsonl).read_text().splitlines()]
        return Dataset.from_dict({k: [r[k] for r in rows] for k in ('text1', 'text2', 'label')})
    a, b, y = default_job_pairs(args.default_job_data) if args.default_job_data else stsb_pairs(args.train)
    return Dataset.from_dict({'text1': a, 'text2': b, 'label': y})


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--model', required=True)
    ap.add_argument('--train', help='STS-B csv (format A)')
    ap.add_argument('--default-job-data', help="data directory: the main job's STS-B + SICK train pairs")
    ap.add_argument('--pairs-jsonl', help='JSONL of text1/text2/label (format A)')
    ap.add_argument('--triplets', help='JSONL of query/positive/negative (format C)')
    ap.add_argument('--sequential', action='store_true', help='train in file order')
    ap.add_argument('--output', required=True)
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--max-steps', type=int, default=-1)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--max-length', type=int, default=128)
    ap.add_argument('--lr', type=float, default=2e-5)
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bf16', action='store_true', help='bf16 autocast (HF Trainer bf16=True)')
    ap.add_argument('--llm', action='store_true', help='a decoder with LoRA, last-token pooling')
    ap.add_argument('--lora-r', type=int, default=32)
    ap.add_argument('--lora-alpha', type=float, default=32)
    ap.add_argument('--lora-dropout', type=float, default=0.1)
    ap.add_argument('--text-prompt', help='format A template with {text}')
    ap.add_argument('--loss', default='{"cosine_w": 1, "ibn_w": 1, "angle_w": 0.02, "cosine_tau": 20, '
                                      '"ibn_tau": 20, "angle_tau": 20}')
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from angle_emb import AnglE
    llm = {}
    if args.llm:
        llm = {'is_llm': True, 'apply_lora': True,
               'lora_config_kwargs': {'r': args.lora_r, 'lora_alpha': args.lora_alpha, 'lora_dropout': args.lora_dropout}}
    angle = AnglE.from_pretrained(args.model, max_length=args.max_length, pooling_strategy='last' if args.llm else 'avg',
                                  train_mode=True, torch_dtype=torch.float32, **llm)
    train_ds = dataset(args)
    start = time.perf_counter()
    angle.fit(train_ds=train_ds, output_dir=args.output, batch_size=args.batch_size, epochs=args.epochs,
              learning_rate=args.lr, warmup_steps=0, logging_steps=10, save_strategy='no', eval_strategy='no',
              loss_kwargs=json.loads(args.loss), filter_duplicate=True,
              argument_kwargs={'seed': args.seed, 'max_steps': args.max_steps, 'report_to': 'none',
                               'use_cpu': True, 'dataloader_num_workers': 0,
                               'train_sampling_strategy': 'sequential' if args.sequential else 'random'},
              bf16=args.bf16, text_prompt=args.text_prompt)
    steps = args.max_steps if args.max_steps > 0 else None  # else the epochs decide
    print(json.dumps({'fit_seconds': time.perf_counter() - start, 'steps': steps,
                      'pairs': None if steps is None else steps * args.batch_size}))


if __name__ == '__main__':
    main()
