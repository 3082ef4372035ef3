#!/usr/bin/env python3
"""N training steps of angle-emb 0.6.1 (AnglE.fit: its collator, Pooler, loss and HF Trainer) with
peft LoRA on a local decoder, from a given PEFT adapter, reproducibly: the reference of
tests/mpi/check_lora.py. Prints and writes the loss of every step.

What is pinned so that only the inputs decide the result:
  - the adapter starts from --adapter-init (AnglE.from_pretrained(pretrained_lora_path=...,
    train_mode=True): peft's PeftModel.from_pretrained(is_trainable=True)); its r, alpha, dropout
    and targets are the adapter's; the model in fp32, its attention dropout 0 (config);
  - the data in file order (HF Trainer's RandomSampler replaced by a SequentialSampler): step s
    takes pairs [s*B, (s+1)*B) of --pairs, rows text1, text2 of each pair in turn;
  - torch.compile (which AnglE.fit applies) left out: the eager model, op for op;
  - HF Trainer's defaults otherwise: AdamW (0.9, 0.999, eps 1e-8, weight decay 0), linear decay from
    --lr to 0 over the N steps, no warm-up, gradient clipping at norm 1.0;
  - each step's loss as compute_loss returns it (HF's log rounds to 4 decimals).

  - --bidirectional-from K: BiLLM's attention from layer K on (tests/oracle/billm_oracle.py, mode
    'keys': padding keys stay masked, as in model/decoder.h).

  angle_emb_lora_steps.py --model DIR --adapter-init DIR --pairs JSONL --batch-size B --steps N
                          --lr LR --max-length L --loss JSON --out JSON --save-adapter DIR
                          [--bidirectional-from K]"""
import argparse
import json
import pathlib


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True)
    ap.add_argument('--adapter-init', required=True)
    ap.add_argument('--pairs', required=True, help='JSONL of text1, text2, label in the order of consumption')
    ap.add_argument('--batch-size', type=int, required=True)
    ap.add_argument('--steps', type=int, required=True)
    ap.add_argument('--lr', type=float, required=True)
    ap.add_argument('--max-length', type=int, required=True)
    ap.add_argument('--text-prompt')
    ap.add_argument('--loss', required=True, help='angle-emb loss_kwargs as JSON')
    ap.add_argument('--out', required=True)
    ap.add_argument('--save-adapter', required=True)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--bidirectional-from', type=int)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.compile = lambda model, *a, **k: model  # eager, as angle runs it
    import transformers
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    transformers.Trainer._get_train_sampler = lambda self, *a, **k: SequentialSampler(self.train_dataset)
    import angle_emb.angle as angle_module
    from angle_emb import AnglE

    losses = []
    compute_loss = angle_module.AngleTrainer.compute_loss

    def recording(self, model, inputs, return_outputs=False, **kwargs):
        loss = compute_loss(self, model, inputs, return_outputs=return_outputs, **kwargs)
        losses.append(float((loss[0] if return_outputs else loss).detach()))
        return loss
    angle_module.AngleTrainer.compute_loss = recording

    rows = [json.loads(line) for line in pathlib.Path(args.pairs).read_text().splitlines() if line.strip()]
    data = Dataset.from_dict({k: [r[k] for r in rows] for k in ('text1', 'text2', 'label')})
    angle = AnglE.from_pretrained(args.model, max_length=args.max_length, pooling_strategy='last', is_llm=True,
                                  pretrained_lora_path=args.adapter_init, train_mode=True,
                                  torch_dtype=torch.float32)
    if args.bidirectional_from is not None:
        import billm_oracle
        billm_oracle.install(angle.backbone, args.bidirectional_from, 'keys')
    angle.fit(train_ds=data, output_dir=args.save_adapter, batch_size=args.batch_size, epochs=1000,
              learning_rate=args.lr, warmup_steps=0, logging_steps=1, save_strategy='no', eval_strategy='no',
              loss_kwargs=json.loads(args.loss), filter_duplicate=False, text_prompt=args.text_prompt,
              argument_kwargs={'max_steps': args.steps, 'report_to': 'none', 'use_cpu': True,
                               'dataloader_num_workers': 0, 'seed': 42})
    if args.bidirectional_from is not None:
        import billm_oracle
        assert billm_oracle.calls() > 0, 'the BiLLM hooks never ran'
    pathlib.Path(args.out).write_text(json.dumps({'losses': losses, 'adapter': args.save_adapter}))
    print(json.dumps({'losses': losses}))


if __name__ == '__main__':
    main()
