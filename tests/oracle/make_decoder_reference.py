#!/usr/bin/env python3
"""The references of the decoder parity test (angle_decoder_oracle_tests) for a real decoder
directory (SmolLM2-135M-Instruct from launch/setup-models.py): the same 24 STS-B sentences, padded
left and right, as make_tiny_decoders.py stores for the tiny ones: transformers' fp32 and bf16
last_hidden_state and angle-emb's `last` pooling."""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_tiny_decoders import reference_sentences, save_transformers_references  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--model', required=True)
    ap.add_argument('--data-dir', required=True)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_transformers_references(args.model, args.out, reference_sentences(args.data_dir))


if __name__ == '__main__':
    main()
