#!/usr/bin/env python3
"""Token ids of `angle tokenize` must equal HuggingFace's for the BPE tokenizers that
make_llm_tokenizers.py trains (byte-level: Qwen2, Llama-3, GPT-2 style; SentencePiece-BPE with
byte fallback: Llama-2, Mistral style) and the real SmolLM2-135M-Instruct tokenizer (byte-level,
49,152 tokens; launch/setup-models.py), on every distinct STS-B + SICK sentence (21,563) and on a
set of hard strings, each at max length 512 and without truncation. HF is transformers'
AutoTokenizer, checked against `tokenizers` alone. Also: padding side and pad id as the
directories declare them. Fails on the first mismatch and prints it."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import all_sentences, compare_ids, fresh_dir, run, script_args  # noqa: E402

NAMES = ['bytelevel-qwen2', 'bytelevel-llama3', 'bytelevel-gpt2', 'sentencepiece-llama2', 'sentencepiece-mistral']


def hard_strings():
    long_text = ' '.join(['The quick brown fox jumps over the lazy dog, 1234567 times!'] * 170)
    return [
        '', ' ', '   ', '\t', '\n', 'a\r\nb', '  leading and trailing  ', 'double  space', 'tab\there',
        'emoji 😀 👩‍👩‍👧‍👦 👍🏽 🇫🇷 ❤️', '😀😀😀', 'CJK 中文字符 日本語のテキスト 한국어 텍스트',
        'combining e\u0301 n\u0303 a\u0300\u0301\u0302 Z\u0351\u0352\u0353algo', 'not NFC: A\u030a vs \u00c5',
        'controls \x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f end', 'NEL\x85LS\u2028PS\u2029 NBSP\u00a0 ideographic\u3000space',
        'zero width\u200b\u200c\u200d\ufeff joiners', 'RTL \u202e\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627',
        'Hindi \u0928\u092e\u0938\u094d\u0924\u0947', 'astral \U0001d518\U0001d52b\U0001d526 \U00020000',
        "contractions I'M DON'T we're they'VE you'll He'd it's ſ'S", 'digits 1234567890 ١٢٣ ½ ²',
        'full-width ＡＢＣ１２３', 'special <s> </s> <unk> <|endoftext|> <|begin_of_text|> <0x41> text',
        '<s>at the start', 'punctuation!!! ??? ... --- ((()))', 'x' * 10000, long_text,
        # A sweep of code points assigned before Unicode 9: HF's normalization tables are older than
        # ICU's, so NFC differs on later marks (U+08CB and U+08D2 swap in ours).
        ''.join(chr(c) for c in list(range(0x20, 0x800, 3)) + list(range(0x2000, 0x3000, 7))),
    ]


def main():
    args = script_args(__doc__, '--angle', '--tokenizers', '--smollm2', '--data-dir', '--work')
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    work = fresh_dir(args.work)
    sentences = all_sentences(args.data_dir)
    if len(sentences) < 21000:
        sys.exit(f'expected 21,563 distinct sentences, found {len(sentences)}')
    hard = hard_strings()
    inputs = {'sentences': (sentences, 512), 'hard-512': (hard, 512), 'hard-whole': (hard, 100000)}
    for name, (texts, _) in inputs.items():
        (work / f'{name}.jsonl').write_text(''.join(json.dumps(t) + '\n' for t in texts), encoding='utf-8')
    models = [pathlib.Path(args.tokenizers) / name for name in NAMES] + [pathlib.Path(args.smollm2)]
    for model in models:
        tokenizer_name = model.name
        hf = AutoTokenizer.from_pretrained(model)
        raw = Tokenizer.from_file(str(model / 'tokenizer.json'))
        for name, (texts, max_length) in inputs.items():
            expected = hf(texts, truncation=True, max_length=max_length)['input_ids']
            raw.enable_truncation(max_length)
            compare_ids(f'{tokenizer_name} {name}: transformers vs tokenizers', [e.ids for e in raw.encode_batch(texts)],
                    expected)
            ours = [json.loads(line) for line in run([args.angle, 'tokenize', '--model', model, '--jsonl', '--input',
                                                      work / f'{name}.jsonl', '--max-length', max_length]).splitlines()]
            compare_ids(f'{tokenizer_name} {name}', ours, expected)
            if tokenizer_name.startswith('sentencepiece') and name == 'hard-whole':
                # The test means something only if byte fallback and <unk> fusion were exercised.
                used = {i for ids in ours for i in ids}
                if not (used & set(range(3, 259))):
                    sys.exit(f'{tokenizer_name}: no <0xXX> byte token in the hard strings')
        described = json.loads(run([args.angle, 'tokenize', '--model', model, '--describe']))
        # AnglE pads LLM tokenizers that have no pad token with id 0.
        want = {'pad_id': hf.pad_token_id if hf.pad_token_id is not None else 0, 'padding_side': hf.padding_side}
        got = {k: described[k] for k in want}
        if got != want:
            sys.exit(f'{tokenizer_name}: ours {got}, HF {want}')
        print(f'{tokenizer_name}: {got} as HF', flush=True)


if __name__ == '__main__':
    main()
