#!/usr/bin/env python3
"""Tiny random LLaMA-family decoders generated with transformers (seeded), each saved as a HF
model directory with one of the tokenizers of make_llm_tokenizers.py (--tokenizers), and, beside
each, the reference tensors of the decoder parity test (angle_oracle_tests): 24 STS-B test
sentences of mixed length padded on the left and on the right, transformers' fp32 and bf16
last_hidden_state for both, and angle-emb 0.6's `last` pooling (angle_emb.angle.Pooler).
  llama    GQA 4/2, attention and MLP biases, llama3 rope scaling, sharded weights + index
  mistral  GQA 4/1, sliding window 6 (shorter than most sentences), Mistral-style tokenizer
  qwen2    q/k/v biases, rope_theta 1e6, tied embeddings, byte-level Qwen2-style tokenizer
  qwen3    q/k RMSNorm, head_dim 32 with hidden 64 (q width 128), linear rope scaling
and two LoRA adapters made with peft (random A and B, so that both count), with the same
references computed through peft's model (PeftModel on …ForCausalLM, as angle-emb trains LLMs):
  llama-lora  r 4, alpha 8, all seven projections (keys base_model.model.model.…)
  qwen2-lora  r 2, alpha 4, q_proj and v_proj
and llama-8x512 (8 layers, hidden 512, GQA 8/4, no references): tiny but not trivial, for the LoRA
memory test and the embed benchmark."""
import argparse
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import fresh_dir, stsb_pairs  # noqa: E402

COMMON = dict(hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=512, rms_norm_eps=1e-6)


def configs():
    from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config
    return {
        'llama': (LlamaConfig(**COMMON, num_key_value_heads=2, attention_bias=True, mlp_bias=True, rope_parameters={
            'rope_type': 'llama3', 'rope_theta': 500000.0, 'factor': 8.0, 'low_freq_factor': 1.0,
            'high_freq_factor': 4.0, 'original_max_position_embeddings': 64}), 'sentencepiece-llama2'),
        'mistral': (MistralConfig(**COMMON, num_key_value_heads=1, sliding_window=6), 'sentencepiece-mistral'),
        'qwen2': (Qwen2Config(**COMMON, num_key_value_heads=2, tie_word_embeddings=True,
                              rope_parameters={'rope_type': 'default', 'rope_theta': 1000000.0}), 'bytelevel-qwen2'),
        'qwen3': (Qwen3Config(**COMMON, num_key_value_heads=2, head_dim=32,
                              rope_parameters={'rope_type': 'linear', 'rope_theta': 10000.0, 'factor': 2.0}),
                  'bytelevel-qwen2'),
    }


LORA = {'llama': dict(r=4, lora_alpha=8, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj',
                                                        'up_proj', 'down_proj']),
        'qwen2': dict(r=2, lora_alpha=4, target_modules=['q_proj', 'v_proj'])}


def make_adapter(model_dir, adapter_dir, settings):
    """A peft LoRA adapter on the decoder in model_dir, with random (not peft's zero) B."""
    import json
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(99)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(task_type='CAUSAL_LM', lora_dropout=0.0, **settings))
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if 'lora_' in n:
                p.normal_(0, 0.1)
    peft_model.save_pretrained(adapter_dir)
    config_path = pathlib.Path(adapter_dir) / 'adapter_config.json'
    config = json.loads(config_path.read_text())
    config['base_model_name_or_path'] = str(pathlib.Path(model_dir).resolve())
    config_path.write_text(json.dumps(config, indent=2))


def reference_sentences(data_dir):
    """24 STS-B test sentences spread over the range of lengths."""
    a, b, _ = stsb_pairs(pathlib.Path(data_dir) / 'STS/STSBenchmark/sts-test.csv')
    by_length = sorted(set(a + b), key=lambda s: (len(s), s))
    return [by_length[round(i * (len(by_length) - 1) / 23)] for i in range(24)]


def save_references(path, picks, tokenizer_dir, forward, pooler_model):
    """forward(dtype, inputs) -> last_hidden_state; pooler_model: what angle-emb's Pooler wraps."""
    import numpy as np
    import torch
    from angle_emb.angle import Pooler
    from safetensors.numpy import save_file
    from transformers import AutoTokenizer
    encoded = [s.encode('utf-8') for s in picks]
    tensors = {'text_bytes': np.frombuffer(b''.join(encoded), dtype=np.uint8).copy(),
               'text_offsets': np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)}
    for side in ('left', 'right'):
        tok = AutoTokenizer.from_pretrained(tokenizer_dir, padding_side=side)
        if tok.pad_token_id is None:
            tok.pad_token_id = 0  # AnglE's LLM default
        batch = tok(picks, padding=True, truncation=True, max_length=512, return_tensors='pt')
        inputs = {'input_ids': batch['input_ids'], 'attention_mask': batch['attention_mask']}
        with torch.no_grad():
            hidden = forward(torch.float32, inputs)
            hidden_bf16 = forward(torch.bfloat16, inputs).float()
            pooled = Pooler(pooler_model, pooling_strategy='last', padding_side=side)(inputs)
        tensors.update({f'{side}_input_ids': inputs['input_ids'].numpy().astype(np.int64),
                        f'{side}_attention_mask': inputs['attention_mask'].numpy().astype(np.int64),
                        f'{side}_last_hidden_state': hidden.numpy().astype(np.float32),
                        f'{side}_last_hidden_state_bf16': hidden_bf16.numpy().astype(np.float32),
                        f'{side}_angle_last': pooled.numpy().astype(np.float32)})
    save_file(tensors, str(path))


def save_transformers_references(model_dir, path, picks):
    """save_references for a plain decoder directory: transformers' AutoModel in fp32 and bf16,
    angle-emb's Pooler over its …ForCausalLM."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM
    bases = {dtype: AutoModel.from_pretrained(model_dir, dtype=dtype).eval() for dtype in (torch.float32, torch.bfloat16)}
    causal = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    save_references(path, picks, model_dir, lambda dtype, inputs: bases[dtype](**inputs).last_hidden_state, causal)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--tokenizers', required=True)
    ap.add_argument('--data-dir', required=True)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = fresh_dir(args.out)
    picks = reference_sentences(args.data_dir)
    for name, (config, tokenizer_name) in configs().items():
        torch.manual_seed(1234)
        tokenizer_dir = pathlib.Path(args.tokenizers) / tokenizer_name
        config.vocab_size = AutoTokenizer.from_pretrained(tokenizer_dir).vocab_size
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        with torch.no_grad():  # random norms, so that a missing or misplaced norm weight shows
            for n, p in model.named_parameters():
                if n.endswith('norm.weight'):
                    p.uniform_(0.5, 1.5)
        model_dir = out / name
        model.save_pretrained(model_dir, max_shard_size='100KB' if name == 'llama' else '1GB')
        for f in tokenizer_dir.iterdir():
            shutil.copy(f, model_dir / f.name)
        save_transformers_references(model_dir, out / f'{name}-reference.safetensors', picks)
        files = sorted(p.name for p in model_dir.glob('*.safetensors*'))
        print(f'{name}: {sum(p.numel() for p in model.parameters())} parameters, {files}', flush=True)
        if name not in LORA:
            continue
        adapter_dir = out / f'{name}-lora'
        make_adapter(model_dir, adapter_dir, LORA[name])
        tuned = {dtype: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype),
                                                  adapter_dir).eval() for dtype in (torch.float32, torch.bfloat16)}
        # The decoder inside peft's wrapper, its projections replaced by peft's LoRA layers.
        save_references(out / f'{name}-lora-reference.safetensors', picks, model_dir,
                        lambda dtype, inputs: tuned[dtype].base_model.model.model(**inputs).last_hidden_state,
                        tuned[torch.float32])
        print(f'{name}-lora: {LORA[name]}', flush=True)
    from transformers import LlamaConfig
    torch.manual_seed(1234)
    tokenizer_dir = pathlib.Path(args.tokenizers) / 'sentencepiece-llama2'
    config = LlamaConfig(hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8,
                         num_key_value_heads=4, max_position_embeddings=512,
                         vocab_size=AutoTokenizer.from_pretrained(tokenizer_dir).vocab_size)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out / 'llama-8x512')
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, out / 'llama-8x512' / f.name)
    print(f'llama-8x512: {sum(p.numel() for p in model.model.parameters())} parameters', flush=True)


if __name__ == '__main__':
    main()
