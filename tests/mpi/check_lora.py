#!/usr/bin/env python3
"""LoRA on a decoder (model/lora.h; frozen units in shard/fsdp.h), on the tiny random llama of
make_tiny_decoders.py and its peft adapter llama-lora (r 4, alpha 8, all seven projections, random
A and B):
  - angle-emb 0.6.1 + peft: 10 AnglE steps from that adapter, the global batch = the 16 training
    pairs (so the data order cannot differ), labels in [0, 1], dropout 0, lr 1e-4 decaying
    linearly, clipping at 1: per-step losses within 1e-4
    (tests/oracle/angle_emb_lora_steps.py), and the final adapters within 1e-4 (norm-relative);
  - stages and ranks: fresh adapters (peft's init, seeded), stages 1, 2, 3 at N = 1, 2, 4: per-step
    losses within 1e-5 of stage 1 at N = 1 and final adapters within 1e-5; the checkpoint holds the
    adapters only and the base never moves;
  - export: final/ is a PEFT adapter that peft loads onto the base: its embeddings are within
    cosine distance 1e-6 of `angle embed`'s; `angle export --merge` writes a full model whose
    transformers embeddings are too; a sharded checkpoint exports to the same adapter;
  - memory (the 8-layer, hidden-512 llama): the peak RSS of full fine-tuning minus LoRA's is at
    least 0.7 x the base's gradient and Adam bytes (12 per trainable parameter), and the sharder's
    gradient and optimizer bytes are 4 and 8 x the adapter elements in the exported file;
  - bad input: target modules that match nothing, LoRA on BERT, --merge without adapters, an
    adapter whose shapes disagree with its config, a prompt that alone exceeds max_length: one
    error line, no work."""
import json
import math
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402
from runs import ROOT, losses, metrics, mpirun, mpirun_peak_rss, rel  # noqa: E402

LOSS = {'cosine_w': 1.0, 'ibn_w': 1.0, 'angle_w': 1.0, 'cosine_tau': 20.0, 'ibn_tau': 20.0, 'angle_tau': 20.0}


def adapters(out):
    from safetensors.numpy import load_file
    return load_file(str(pathlib.Path(out) / 'adapter_model.safetensors'))


def distance(a, b):
    import numpy as np
    assert sorted(a) == sorted(b), (sorted(a)[:3], sorted(b)[:3])
    delta = sum(float(np.sum((a[k].astype(np.float64) - b[k].astype(np.float64)) ** 2)) for k in b)
    return (delta / sum(float(np.sum(b[k].astype(np.float64) ** 2)) for k in b)) ** 0.5


def job(data_dir, model, train, extra=()):
    loss = [x for k, v in LOSS.items() for x in (f'--loss.{k}', v)]
    return (['train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', model, '--model.max_length', 64,
             '--model.dropout', 0, '--model.pooling', 'last', '--data.train', f'stsb:{train}', '--data.dev', '', '--data.test', '',
             '--data.filter_duplicate', 'false', '--train.log_every', 1, '--lora.dropout', 0] + loss + list(extra))


def peft_embeddings(base, adapter_or_none, texts, side):
    """Last-token embeddings by transformers (+ peft), as angle-emb pools them."""
    import torch
    from angle_emb.angle import Pooler
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter_or_none:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, adapter_or_none)
    model.eval()
    tok = AutoTokenizer.from_pretrained(base, padding_side=side)
    if tok.pad_token_id is None:
        tok.pad_token_id = 0
    batch = tok(texts, padding=True, truncation=True, max_length=64, return_tensors='pt')
    with torch.no_grad():
        return Pooler(model, pooling_strategy='last', padding_side=side)(
            {'input_ids': batch['input_ids'], 'attention_mask': batch['attention_mask']}).numpy()


def angle_embeddings(angle, model, texts, work, name):
    import numpy as np
    inputs, out = work / f'{name}.txt', work / f'{name}.npy'
    inputs.write_text('\n'.join(texts) + '\n')
    subprocess.run([str(angle), 'embed', '--model', str(model), '--input', str(inputs), '--output', str(out),
                    '--max-length', '64'], check=True, capture_output=True)
    return np.load(out)


def worst_cosine_distance(a, b):
    import numpy as np
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.max(1 - np.sum(a.astype(np.float64) * b, axis=1)))


def report(failures, ok, line):
    print(f'[{"ok" if ok else "FAIL"}] {line}', flush=True)
    if not ok:
        failures.append(line)


def main():
    args, angle, work, expect = setup(__doc__, '--decoders', '--data-dir', '--bert')
    failures = expect.failures
    decoders = pathlib.Path(args.decoders)
    base, init = decoders / 'llama', decoders / 'llama-lora'
    rows = (pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-train.csv').read_text(encoding='utf-8').splitlines()
    sixteen = work / 'sixteen.csv'
    sixteen.write_text('\n'.join(rows[:16]) + '\n', encoding='utf-8')
    train = pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-train.csv'

    # angle-emb + peft, 10 steps from the same adapter on the same 16 pairs.
    from common import stsb_pairs
    a, b, y = stsb_pairs(sixteen)
    pairs = work / 'pairs.jsonl'
    # Labels in [0, 1] on both sides (data.label_norm = range here): angle-emb's in-batch negative
    # loss truncates labels to integers, meant for 0/1 labels.
    pairs.write_text(''.join(json.dumps({'text1': s, 'text2': t, 'label': l / 5}) + '\n' for s, t, l in zip(a, b, y)))
    reference = work / 'angle-emb.json'
    subprocess.run([sys.executable, str(ROOT / 'tests/oracle/angle_emb_lora_steps.py'), '--model', str(base),
                    '--adapter-init', str(init), '--pairs', str(pairs), '--batch-size', '16', '--steps', '10',
                    '--lr', '1e-4', '--max-length', '64', '--loss', json.dumps(LOSS), '--out', str(reference),
                    '--save-adapter', str(work / 'angle-emb-adapter')], check=True)
    theirs = json.loads(reference.read_text())['losses']
    ours_dir = work / 'parity'
    mpirun(1, angle, job(args.data_dir, base, sixteen, ['--lora.init', init, '--data.label_norm', 'range',
                                                          '--train.global_batch', 16,
                                                          '--train.max_steps', 10, '--optim.lr', 1e-4,
                                                          '--run.output_dir', ours_dir]))
    ours = losses(ours_dir)
    worst = max(rel(o, t) for o, t in zip(ours, theirs))
    moved = distance(adapters(ours_dir / 'final'), adapters(init))
    final = distance(adapters(ours_dir / 'final'), adapters(work / 'angle-emb-adapter'))
    report(failures, len(ours) == len(theirs) == 10 and worst <= 1e-4 and final <= 1e-4 and moved > 1e-3,
           f'10 steps vs angle-emb 0.6.1 + peft: losses within {worst:.1e} (first {ours[0]:.6f} vs {theirs[0]:.6f}, '
           f'last {ours[-1]:.6f} vs {theirs[-1]:.6f}); final adapters {final:.1e} apart, {moved:.1e} from the start')

    # Stages and world sizes: one training.
    fresh = job(args.data_dir, base, train, ['--lora.r', 8, '--lora.alpha', 16, '--train.global_batch', 8,
                                             '--train.max_steps', 5, '--optim.lr', 1e-3])
    runs = {}
    for stage, n in ((1, 1), (1, 2), (2, 2), (2, 4), (3, 1), (3, 2), (3, 4)):
        out = work / f'stage{stage}-n{n}'
        mpirun(n, angle, fresh + ['--shard.stage', stage, '--run.output_dir', out, '--run.checkpoint_every', 5])
        runs[(stage, n)] = out
        if (stage, n) == (1, 1):
            continue
        worst = max(rel(x, r) for x, r in zip(losses(out), losses(runs[(1, 1)])))
        gap = distance(adapters(out / 'final'), adapters(runs[(1, 1)] / 'final'))
        report(failures, worst <= 1e-5 and gap <= 1e-5 and len(losses(out)) == 5,
               f'stage {stage} N={n}: losses within {worst:.1e}, adapters {gap:.1e} of stage 1 N=1')
    names = [t['name'] for t in json.loads((runs[(3, 4)] / 'step-5/manifest.json').read_text())['layout']]
    report(failures, bool(names) and all('.lora_A.' in n or '.lora_B.' in n for n in names),
           f'the stage-3 N=4 checkpoint holds {len(names)} tensors, all adapters')

    # Export: peft and transformers load what angle writes.
    texts = a + b
    for side in ('right',):
        ours_emb = angle_embeddings(angle, runs[(3, 4)] / 'final', texts, work, 'final')
        theirs_emb = peft_embeddings(base, runs[(3, 4)] / 'final', texts, side)
        d = worst_cosine_distance(ours_emb, theirs_emb)
        report(failures, d <= 1e-6, f'final/ loaded by peft: cosine distance {d:.1e} from angle embed')
    merged = work / 'merged'
    subprocess.run([str(angle), 'export', '--checkpoint', str(runs[(3, 4)] / 'final'), '--output', str(merged),
                    '--merge'], check=True, capture_output=True)
    d = worst_cosine_distance(angle_embeddings(angle, runs[(3, 4)] / 'final', texts, work, 'final'),
                              peft_embeddings(merged, None, texts, 'right'))
    report(failures, d <= 1e-6 and not (merged / 'adapter_config.json').exists(),
           f'--merge: a full model; transformers embeddings within cosine distance {d:.1e}')
    from_checkpoint = work / 'from-checkpoint'
    subprocess.run([str(angle), 'export', '--checkpoint', str(runs[(3, 4)] / 'step-5'), '--output',
                    str(from_checkpoint)], check=True, capture_output=True)
    gap = distance(adapters(from_checkpoint), adapters(runs[(3, 4)] / 'final'))
    report(failures, gap == 0, f'the step-5 checkpoint of 4 ranks exports the adapter of final/ ({gap:.1e})')

    # Memory: full fine-tuning vs LoRA on the 8 x 512 llama.
    big = decoders / 'llama-8x512'
    memory_job = job(args.data_dir, big, train, ['--train.global_batch', 8, '--train.max_steps', 2,
                                                 '--shard.stage', 1])
    peaks, state = {}, {}
    # glibc's adaptive mmap threshold keeps freed large blocks on the heap, so the peak RSS then
    # depends on the order of allocations as much as on the live bytes (the saving varied 196-249
    # MiB over runs); a fixed 1 MiB threshold returns them and the peak follows the live bytes
    # (280-293 MiB over runs, of 289).
    os.environ['MALLOC_MMAP_THRESHOLD_'] = str(2**20)
    for label, extra in (('full', []), ('lora', ['--lora.r', 8])):
        out = work / f'memory-{label}'
        _, rss = mpirun_peak_rss(1, angle, memory_job + extra + ['--run.output_dir', out], work / f'rss-{label}')
        peaks[label], state[label] = rss[0], metrics(out)[-1]
    del os.environ['MALLOC_MMAP_THRESHOLD_']
    from safetensors import safe_open
    base_params = 0  # what full fine-tuning trains: every tensor of the decoder (lm_head is not part of it)
    for path in big.glob('*.safetensors'):
        with safe_open(str(path), 'np') as f:
            base_params += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys() if not k.startswith('lm_head'))
    saved = peaks['full'] - peaks['lora']
    report(failures, saved >= 0.7 * 12 * base_params,
           f'peak RSS: full {peaks["full"] / 2**20:.0f} MiB, LoRA {peaks["lora"] / 2**20:.0f} MiB: LoRA saves '
           f'{saved / 2**20:.0f} MiB >= 0.7 x {12 * base_params / 2**20:.0f} MiB (gradient + Adam of '
           f'{base_params} base parameters)')
    # The sharder's gradient count at its peak also holds gradients on their way into the buffer:
    # at most one layer's (the unit), a layer's adapters being 1/8 of them.
    adapter_elements = sum(int(v.size) for v in adapters(work / 'memory-lora' / 'final').values())
    grads, optim = state['lora']['grads_bytes'], state['lora']['optim_bytes']
    layer = adapter_elements // 8
    report(failures, 4 * adapter_elements <= grads <= 4 * (adapter_elements + layer) and optim == 8 * adapter_elements,
           f'LoRA gradient bytes {grads} (4 x {adapter_elements} adapter elements of the exported file + at most one '
           f'layer\'s in flight: {4 * layer}), optimizer bytes {optim} (8 x); full fine-tuning: '
           f'{state["full"]["grads_bytes"]} and {state["full"]["optim_bytes"]}')

    # Bad input.
    import shutil
    misfit = work / 'misfit'  # qwen2-lora's r-2 adapter, declared as r 4
    shutil.copytree(decoders / 'qwen2-lora', misfit)
    config = json.loads((misfit / 'adapter_config.json').read_text())
    config['r'] = 4
    (misfit / 'adapter_config.json').write_text(json.dumps(config))
    bad = job(args.data_dir, base, sixteen, ['--run.output_dir', work / 'bad'])
    expect.failure('target module matching nothing', bad + ['--lora.r', 4, '--lora.target_modules', 'c_attn'],
                   ['lora.target_modules', "'c_attn'", 'q_proj'], work / 'bad')
    expect.failure('LoRA on BERT', bad + ['--model.path', args.bert, '--lora.r', 4],
                   ['LoRA', 'LLaMA-family', str(args.bert)], work / 'bad')
    expect.failure('--merge without adapters', ['export', '--checkpoint', base, '--output', work / 'bad-merge',
                                                '--merge'], ['--merge', 'no LoRA adapters'], work / 'bad-merge')
    expect.failure('an adapter that does not fit its config', ['embed', '--model', misfit,
                                                             '--input', work / 'final.txt', '--output',
                                                             work / 'bad.npy'],
                   ['adapter_model.safetensors', 'shape'], work / 'bad.npy')
    expect.failure('a prompt longer than max_length with last pooling', bad + [
        '--lora.r', 4, '--model.max_length', 8, '--data.text_prompt', 'Summarize sentence "{text}" in one word:"'],
        ['Summarize sentence', 'alone needs', 'max length is 8'], work / 'bad')
    expect.exit_status()


if __name__ == '__main__':
    main()
