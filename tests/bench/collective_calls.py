#!/usr/bin/env python3
"""Collective calls per micro-batch (counted by the comm layer: metrics.jsonl `comm_calls`) for
MiniLM (6 layers) and the BERT-base-sized model (12 layers, tests/oracle/make_bert_base.py) at
N = 2 and 4 ranks, stages 1, 2, 3 and hybrid sharding (shard.replicate 2 at N = 4), beside the
model's units and trainable parameter tensors: the sharder issues one reduce-scatter per unit (and
stage 3 one gather per unit before forward and before backward), so the calls follow the units,
not the parameters nor N. Steps 2-3 of global batch 8, max length 32, grad_accum 2 (the first step
also holds the start-up checks). Prints the machine.

  python3 tests/bench/collective_calls.py --model DIR --bert-base DIR --data-dir DIR [--angle build/angle]"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    return f'{cpu}, {os.cpu_count()} cores'


def units_and_tensors(model_dir):
    config = json.loads((pathlib.Path(model_dir) / 'config.json').read_text())
    layers = config['num_hidden_layers']
    # BERT: word embeddings, the other embeddings, each layer (16 tensors each), the pooler if any.
    return layers + 2, 1 + 4 + 16 * layers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', required=True, help='all-MiniLM-L6-v2')
    ap.add_argument('--bert-base', required=True)
    ap.add_argument('--data-dir', required=True)
    args = ap.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1', OMP_NUM_THREADS='1')
    job = ['train', '--job', 'jobs/stsb.ini', '--data.train', f'stsb:{args.data_dir}/STS/STSBenchmark/sts-train.csv',
           '--data.dev', '', '--data.test', '', '--train.max_steps', 3, '--train.log_every', 1, '--model.dropout', 0,
           '--train.global_batch', 8, '--train.grad_accum', 2, '--model.max_length', 32, '--train.threads', 1]
    print(f'machine: {machine()}')
    print('| model | units | parameter tensors | N | stage | replicate | calls per micro-batch |\n|---|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (('MiniLM', args.model), ('BERT-base-sized', args.bert_base)):
            units, tensors = units_and_tensors(path)
            for n, stage, replicate in ((2, 1, 1), (2, 2, 1), (2, 3, 1), (4, 1, 1), (4, 2, 1), (4, 3, 1), (4, 2, 2),
                                        (4, 3, 2)):
                out = pathlib.Path(tmp) / f'{name}-{n}-{stage}-{replicate}'
                cmd = ['mpirun', '--oversubscribe', '-np', n, args.angle] + job + [
                    '--model.path', path, '--shard.stage', stage, '--shard.replicate', replicate, '--run.output_dir', out]
                proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT, env=env)
                if proc.returncode != 0:
                    sys.exit(proc.stderr[-3000:])
                lines = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
                calls = sum(l['comm_calls'] for l in lines[1:]) / (2 * len(lines[1:]))
                print(f'| {name} | {units} | {tensors} | {n} | {stage} | {replicate} | {calls:.1f} |', flush=True)


if __name__ == '__main__':
    main()
