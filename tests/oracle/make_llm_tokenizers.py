#!/usr/bin/env python3
"""Trains the LLM tokenizers of the tests with HF `tokenizers` on STS-B train (no real LLM
tokenizer ships in a PyPI package; see README) and saves each as a HF model directory
(tokenizer.json + tokenizer_config.json) under --out:
  bytelevel-qwen2       NFC, Qwen2's split regex + ByteLevel, no special tokens around the text
  bytelevel-llama3      Llama-3's split regex + ByteLevel, ignore_merges, <|begin_of_text|> $A
  bytelevel-gpt2        ByteLevel with GPT-2's regex and a prefix space, padding on the left
  sentencepiece-llama2  Llama-2 (legacy): Prepend/Replace normalizer, BPE with byte fallback and
                        fused <unk>, <s> $A, padding on the left
  sentencepiece-mistral Mistral / Llama-2 (non-legacy): Metaspace(prepend first), <s> $A </s>
Both SentencePiece ones keep a small alphabet so that rarer characters fall back to <0xXX>."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import fresh_dir, script_args, stsb_pairs  # noqa: E402

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level(texts, split, specials, vocab_size=3000, add_prefix_space=False):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    steps = [pre_tokenizers.Split(Regex(split), behavior='isolated')] if split else []
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=split is None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps) if len(steps) > 1 else steps[0]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def sentencepiece(texts, vocab_size=3000):
    """A Llama-2-like BPE: <unk> <s> </s>, then the 256 byte tokens, then the learned pieces."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement='\u2581', prepend_scheme='always', split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=['<unk>', '<s>', '</s>'], limit_alphabet=60,
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    spec = json.loads(tok.to_str())
    learned = sorted(spec['model']['vocab'].items(), key=lambda kv: kv[1])
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2}
    vocab.update({f'<0x{b:02X}>': 3 + b for b in range(256)})
    for token, _ in learned:
        if token not in vocab:
            vocab[token] = len(vocab)
    spec['model'].update(vocab=vocab, byte_fallback=True, fuse_unk=True, unk_token='<unk>')
    return spec


def template(spec, single, specials):
    ids = {t['content']: t['id'] for t in spec['added_tokens']}
    spec['post_processor'] = {
        'type': 'TemplateProcessing',
        'single': [{'SpecialToken': {'id': s, 'type_id': 0}} if s != '$A' else {'Sequence': {'id': 'A', 'type_id': 0}}
                   for s in single],
        'pair': [{'Sequence': {'id': 'A', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
        'special_tokens': {s: {'id': s, 'ids': [ids[s]], 'tokens': [s]} for s in specials}}
    return spec


def save(spec, out, **config):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    out = pathlib.Path(out)
    out.mkdir(parents=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), model_max_length=4096,
                                   **config)
    fast.save_pretrained(out)
    print(f'{out.name}: {fast.vocab_size} tokens', flush=True)


def main():
    args = script_args(__doc__, '--data-dir', '--out')
    out = fresh_dir(args.out)
    a, b, _ = stsb_pairs(pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-train.csv')
    texts = a + b

    qwen = json.loads(byte_level(texts, QWEN2_SPLIT, ['<|endoftext|>', '<|im_start|>', '<|im_end|>']).to_str())
    qwen['normalizer'] = {'type': 'NFC'}
    qwen['post_processor'] = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False}
    save(qwen, out / 'bytelevel-qwen2', pad_token='<|endoftext|>', eos_token='<|endoftext|>')

    llama3 = json.loads(byte_level(texts, LLAMA3_SPLIT, ['<|begin_of_text|>', '<|end_of_text|>']).to_str())
    llama3['model']['ignore_merges'] = True
    save(template(llama3, ['<|begin_of_text|>', '$A'], ['<|begin_of_text|>']), out / 'bytelevel-llama3',
         bos_token='<|begin_of_text|>', eos_token='<|end_of_text|>')

    gpt2 = json.loads(byte_level(texts, None, ['<|endoftext|>'], add_prefix_space=True).to_str())
    save(gpt2, out / 'bytelevel-gpt2', eos_token='<|endoftext|>', padding_side='left')

    sp = sentencepiece(texts)
    legacy = json.loads(json.dumps(sp))
    legacy['normalizer'] = {'type': 'Sequence', 'normalizers': [{'type': 'Prepend', 'prepend': '\u2581'},
                                                               {'type': 'Replace', 'pattern': {'String': ' '},
                                                                'content': '\u2581'}]}
    legacy['pre_tokenizer'] = None
    save(template(legacy, ['<s>', '$A'], ['<s>']), out / 'sentencepiece-llama2', unk_token='<unk>', bos_token='<s>',
         eos_token='</s>', padding_side='left')

    mistral = json.loads(json.dumps(sp))
    mistral['normalizer'] = None
    mistral['pre_tokenizer'] = {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'first', 'split': False}
    save(template(mistral, ['<s>', '$A', '</s>'], ['<s>', '</s>']), out / 'sentencepiece-mistral', unk_token='<unk>',
         bos_token='<s>', eos_token='</s>')


if __name__ == '__main__':
    main()
