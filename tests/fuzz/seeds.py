#!/usr/bin/env python3
"""Seed corpora of the fuzz targets, from the real files: one directory per target under --out.
  safetensors         a small safetensors file (3 tensors, 3 dtypes) written by the safetensors package
  config_json         MiniLM's and the tiny model's config.json
  tokenizer_json      the tiny model's tokenizer.json (MiniLM's is 466 KB: its first entries only)
  vocab_txt           MiniLM's vocab.txt (first 3000 lines)
  wordpiece           STS-B and SICK sentences, emoji, CJK, combining marks, control characters
  sts_files           the first 30 lines of STS-B train and SICK train
  jsonl_tsv           jsonl and tsv rows in the shapes `angle prepare` reads
  job_ini             jobs/stsb.ini and a run's resolved job.ini
  checkpoint_manifest the manifest.json of a real 2-step checkpoint (tiny model, 2 ranks' layout)
  sweep_manifest      the manifest.json of a real `angle sweep --dry-run`
  run_record          a real run's metrics.jsonl, NUL, eval.json
Usage: seeds.py --angle BUILD/angle --model models/all-MiniLM-L6-v2 --tiny TINY_MODEL --data-dir data --out DIR"""
import argparse
import json
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def head(path, n):
    with open(path, encoding='utf-8', errors='replace') as f:
        return ''.join(line for _, line in zip(range(n), f))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ('--angle', '--model', '--tiny', '--data-dir', '--out'):
        p.add_argument(flag, required=True)
    a = p.parse_args()
    out, model, tiny, data = (pathlib.Path(x) for x in (a.out, a.model, a.tiny, a.data_dir))
    shutil.rmtree(out, ignore_errors=True)

    def seed(target, name, content):
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    import numpy as np
    from safetensors.numpy import save
    seed('safetensors', 'small.safetensors', save({'w': np.arange(12, dtype=np.float32).reshape(3, 4),
                                                   'b': np.ones(4, dtype=np.float16), 'i': np.arange(3, dtype=np.int64)},
                                                  metadata={'format': 'pt'}))
    seed('config_json', 'minilm.json', (model / 'config.json').read_bytes())
    seed('config_json', 'tiny.json', (tiny / 'config.json').read_bytes())
    seed('tokenizer_json', 'tiny.json', (tiny / 'tokenizer.json').read_bytes())
    full = json.loads((model / 'tokenizer.json').read_text())
    full['model']['vocab'] = dict(list(full['model']['vocab'].items())[:500])
    seed('tokenizer_json', 'minilm-500.json', json.dumps(full))
    seed('vocab_txt', 'minilm-3000.txt', head(model / 'vocab.txt', 3000))
    sts = data / 'STS/STSBenchmark/sts-train.csv'
    sick = data / 'SICK/semeval2014_task1_noheader/SICK_train.txt'
    for i, line in enumerate(head(sts, 12).splitlines()):
        seed('wordpiece', f'stsb-{i}.txt', line.split('\t')[5])
    hard = ['😀 emoji 👍🏽', '中文字符和日本語', 'e\u0301 combining a\u0308', 'tab\tnew\nline\x00nul\x07', '', 'x' * 300,
            'UPPER lower MiXeD déjà-vu']
    for i, text in enumerate([t.encode() for t in hard] + [b'\xff\xfe invalid \xc3\x28 utf-8 \xed\xa0\x80']):
        seed('wordpiece', f'hard-{i}.txt', text)
    seed('sts_files', 'stsb.csv', head(sts, 30))
    seed('sts_files', 'sick.txt', head(sick, 30))
    seed('jsonl_tsv', 'a.jsonl', '\n'.join(json.dumps({'a': f'first {i}', 'b': f'second {i}', 'c': i % 6, 'w': 0.5})
                                           for i in range(5)) + '\n')
    seed('jsonl_tsv', 'c.jsonl', '\n'.join(json.dumps({'q': f'query {i}', 'p': f'pos {i}', 'n': f'neg {i}'})
                                           for i in range(5)) + '\n')
    seed('jsonl_tsv', 'a.tsv', 'a\tb\tc\n' + ''.join(f'one {i}\ttwo {i}\t{i % 6}\n' for i in range(5)))

    # a real run: 2 steps of the tiny model with a checkpoint and a dev set, and a real sweep manifest
    work = out / '.work'
    run = work / 'run'

    def angle(*args):
        proc = subprocess.run([a.angle, *map(str, args)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f'angle {args[0]} failed: {proc.stderr[-1000:]}')

    angle('train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', tiny, '--model.pooling', 'cls',
          '--model.max_length', 32, '--data.train', f'stsb:{sts}', '--data.dev', f'stsb:{data}/STS/STSBenchmark/sts-dev.csv',
          '--data.test', '', '--train.max_steps', 2, '--train.global_batch', 8, '--train.log_every', 1,
          '--train.eval_every', 1, '--run.checkpoint_every', 1, '--run.output_dir', run)
    seed('job_ini', 'stsb.ini', (ROOT / 'jobs/stsb.ini').read_bytes())
    seed('job_ini', 'resolved.ini', (run / 'job.ini').read_bytes())
    seed('checkpoint_manifest', 'step-2.json', (run / 'step-2/manifest.json').read_bytes())
    seed('run_record', 'run.bin', (run / 'metrics.jsonl').read_bytes() + b'\0' + (run / 'eval.json').read_bytes())
    seed('run_record', 'metrics-only.jsonl', (run / 'metrics.jsonl').read_bytes())
    angle('sweep', '--job', ROOT / 'jobs/stsb.ini', '--grid', 'optim.lr=1e-5,2e-5', '--grid', 'train.global_batch=16,32',
          '--seeds', 2, '--out', work / 'sweep', '--dry-run')
    seed('sweep_manifest', 'manifest.json', (work / 'sweep/manifest.json').read_bytes())
    shutil.rmtree(work)
    print(f'seeds: {sum(1 for _ in out.rglob("*") if _.is_file())} files for '
          f'{len(list(out.iterdir()))} targets in {out}')


if __name__ == '__main__':
    main()
