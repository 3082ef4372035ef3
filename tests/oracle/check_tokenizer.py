#!/usr/bin/env python3
"""Token ids of `angle tokenize` must equal HuggingFace's (the fast `tokenizers` backend through
transformers.AutoTokenizer) for every distinct sentence of STS-B train/dev/test and SICK, both from
the model's tokenizer.json and from a copy holding only vocab.txt + tokenizer_config.json.
Fails on the first mismatch and prints it."""
import json
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import all_sentences, compare_ids, fresh_dir, run, script_args  # noqa: E402

MAX_LENGTH = 512


def compare(angle, model_dir, input_file, expected, label):
    ours = [json.loads(line) for line in run([angle, 'tokenize', '--model', model_dir, '--input', input_file,
                                              '--max-length', MAX_LENGTH]).splitlines()]
    compare_ids(label, ours, expected)


def main():
    args = script_args(__doc__, '--angle', '--model', '--data-dir', '--work')
    from transformers import AutoTokenizer

    work = fresh_dir(args.work)
    sentences = all_sentences(args.data_dir)
    # STS-B 8,628 pairs + SICK 9,840 (+ 87 SemEval-only) pairs: 21,563 distinct sentences.
    if len(sentences) < 21000:
        sys.exit(f'expected 21,563 distinct sentences, found {len(sentences)}')
    # Lines must survive a round trip through a line-oriented file.
    assert not any('\n' in s or '\r' in s for s in sentences)
    input_file = work / 'sentences.txt'
    input_file.write_text('\n'.join(sentences) + '\n', encoding='utf-8')
    hf = AutoTokenizer.from_pretrained(args.model)
    expected = hf(sentences, truncation=True, max_length=MAX_LENGTH)['input_ids']
    compare(args.angle, args.model, input_file, expected, 'tokenizer.json')

    vocab_only = work / 'vocab-only'
    shutil.rmtree(vocab_only, ignore_errors=True)
    vocab_only.mkdir()
    for name in ('vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json'):
        if (pathlib.Path(args.model) / name).exists():
            shutil.copy(pathlib.Path(args.model) / name, vocab_only / name)
    compare(args.angle, vocab_only, input_file, expected, 'vocab.txt + tokenizer_config.json')


if __name__ == '__main__':
    main()
