#!/usr/bin/env python3
"""`angle plan --project`'s parameter counts against transformers and peft: each config is built
as the HF model on the meta device (no memory), without its head (BertModel without pooler,
LlamaModel/Qwen2Model: what an embedding model keeps), and counted; with --lora R peft's LoRA of
rank R on the seven projections (q/k/v/o, gate/up/down) gives the trainable count and the base
the frozen one. Configs: the committed jobs/plan/*.config.json (BERT-base, LLaMA-2-7B) and a small
Qwen2 with grouped-query attention and Q/K/V biases written here."""
import json
import pathlib
import subprocess
import sys

import torch
import transformers
from peft import LoraConfig, get_peft_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import fresh_dir, script_args  # noqa: E402

PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']


def hf_counts(config_path, lora):
    config = transformers.AutoConfig.from_pretrained(str(config_path))
    with torch.device('meta'):
        if config.model_type == 'bert':
            model = transformers.BertModel(config, add_pooling_layer=False)
        else:
            model = transformers.AutoModel.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    if lora == 0:
        return total, 0
    model = get_peft_model(model, LoraConfig(r=lora, target_modules=PROJECTIONS))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()) - trainable


def main():
    args = script_args(__doc__, '--angle', '--work')
    work = fresh_dir(args.work)
    qwen = work / 'qwen2-gqa.config.json'
    qwen.write_text(json.dumps({'model_type': 'qwen2', 'vocab_size': 1000, 'hidden_size': 256, 'intermediate_size': 704,
                                'num_hidden_layers': 3, 'num_attention_heads': 8, 'num_key_value_heads': 2}))
    cases = [(ROOT / 'jobs/plan/bert-base-uncased.config.json', 0), (ROOT / 'jobs/plan/llama-2-7b.config.json', 0),
             (ROOT / 'jobs/plan/llama-2-7b.config.json', 16), (qwen, 0), (qwen, 8)]
    failures = []
    for config, lora in cases:
        proc = subprocess.run([args.angle, 'plan', '--project', str(config), '--lora', str(lora), '--flops', '1e12',
                               '--json'], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        plan = json.loads(proc.stdout)
        ours = (plan['parameters'], plan['frozen_parameters'])
        theirs = hf_counts(config, lora)
        ok = ours == theirs
        print(f'[{"ok" if ok else "FAIL"}] {config.name} lora {lora}: trainable/frozen {ours}, transformers+peft {theirs}')
        if not ok:
            failures.append(config.name)
    if failures:
        sys.exit(f'parameter counts differ: {failures}')
    print('plan shapes equal transformers and peft')


if __name__ == '__main__':
    main()
