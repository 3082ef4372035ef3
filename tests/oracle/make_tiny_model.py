#!/usr/bin/env python3
"""A second, independent model for the parity tests: a *cased* WordPiece tokenizer (no lower-casing,
no accent stripping) trained with HF `tokenizers` on STS-B train, and a randomly initialised
2-layer BERT saved by `transformers` as safetensors, wrapped for sentence-transformers with CLS
pooling. The weights are seeded; the vocabulary's order is not quite fixed (HF's WordPiece trainer
orders part of its alphabet by hash), so tests compare runs within one set-up, never against stored
figures. Skipped when already present."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import script_args, stsb_pairs  # noqa: E402


def main():
    args = script_args(__doc__, '--data-dir', '--out')
    out = pathlib.Path(args.out)
    if (out / 'DONE').exists():
        return
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    a, b, _ = stsb_pairs(pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-train.csv')
    wordpiece = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True, handle_chinese_chars=True)
    wordpiece.train_from_iterator(a + b, vocab_size=3000, min_frequency=2, show_progress=False)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=False, strip_accents=False,
                                  unk_token='[UNK]', cls_token='[CLS]', sep_token='[SEP]', pad_token='[PAD]',
                                  mask_token='[MASK]', model_max_length=128)
    tokenizer.save_pretrained(out)
    vocab = tokenizer.get_vocab()  # also the vocab.txt layout, for the second loader path
    (out / 'vocab.txt').write_text(''.join(t + '\n' for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])),
                                   encoding='utf-8')
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=128)
    BertModel(config).save_pretrained(out, safe_serialization=True)
    (out / '1_Pooling').mkdir(exist_ok=True)
    (out / '1_Pooling/config.json').write_text(json.dumps({'word_embedding_dimension': 64, 'pooling_mode_cls_token': True,
                                                           'pooling_mode_mean_tokens': False}))
    (out / 'modules.json').write_text(json.dumps([
        {'idx': 0, 'name': '0', 'path': '', 'type': 'sentence_transformers.models.Transformer'},
        {'idx': 1, 'name': '1', 'path': '1_Pooling', 'type': 'sentence_transformers.models.Pooling'}]))
    (out / 'sentence_bert_config.json').write_text(json.dumps({'max_seq_length': 128, 'do_lower_case': False}))
    (out / 'DONE').write_text('ok\n')
    print(f'tiny cased model with {len(tokenizer)} tokens -> {out}')


if __name__ == '__main__':
    main()
