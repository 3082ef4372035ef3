#!/usr/bin/env python3
"""A BERT-base-sized random model (12 layers, hidden 768, 12 heads, feed-forward 3072, the
30,522-token uncased vocabulary: ~109 M parameters) for the memory measurements of the sharding
stages: randomly initialised and saved by `transformers`, with the tokenizer files of the
all-MiniLM-L6-v2 directory (the same bert-base-uncased vocabulary). Seeded; skipped when present."""
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import script_args  # noqa: E402


def main():
    args = script_args(__doc__, '--tokenizer-from', '--out')
    out = pathlib.Path(args.out)
    if (out / 'DONE').exists():
        return
    import torch
    from transformers import BertConfig, BertModel
    out.mkdir(parents=True, exist_ok=True)
    source = pathlib.Path(args.tokenizer_from)
    for name in ('vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'):
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512)
    model = BertModel(config, add_pooling_layer=False)
    model.save_pretrained(out, safe_serialization=True)
    (out / 'DONE').write_text('ok\n')
    print(f'BERT-base-sized random model, {sum(p.numel() for p in model.parameters())} parameters -> {out}')


if __name__ == '__main__':
    main()
