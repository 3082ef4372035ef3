#!/usr/bin/env python3
"""What launch/gpu-check.sh concludes from its runs (each subcommand prints its figures and exits
non-zero when the property fails):
  compare  REF RUN...   per-step losses and grad norms of each RUN within --rel (1e-4) of REF's, and
                        the final parameters (final/model.safetensors) within --rel, norm-relative
  resume   FULL RESUMED losses of the steps RESUMED logged, bitwise equal to FULL's; with
                        --baseline RUN, the pairs/s of FULL (train.deterministic) beside RUN's
  speed    RUN          sequences/s (2 per pair), tokens/s and model FLOP/s after the first logged
                        line (warm-up), MFU against --peak-tflops, the device peak memory per rank
                        beside --plan (an `angle plan --json` output: its per-rank model state,
                        activations and loss bytes, what a GPU holds)
  summary  RECORDS OUT  the JSON summary of the checks' records (name, status, seconds, log, figures)
  llama    OUT          a ~1B-parameter LLaMA (22 layers, hidden 2048, GQA 32/4, MLP 5632) with
                        random weights in bf16 and the tokenizer of --tokenizer (made on the GPU)"""
import argparse
import json
import math
import pathlib
import sys


def metric_lines(run):
    return [json.loads(l) for l in (pathlib.Path(run) / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def final_parameters(run):
    from safetensors.numpy import load_file
    return load_file(str(pathlib.Path(run) / 'final' / 'model.safetensors'))


def compare(args):
    ref = metric_lines(args.ref)
    ref_params = final_parameters(args.ref)
    ok = True
    for run in args.runs:
        lines = metric_lines(run)
        worst_loss = max((rel(a['loss'], b['loss']) for a, b in zip(lines, ref)), default=math.inf)
        worst_norm = max((rel(a['grad_norm'], b['grad_norm']) for a, b in zip(lines, ref)), default=math.inf)
        params = final_parameters(run)
        num = sum(float(((params[k].astype('float64') - ref_params[k].astype('float64')) ** 2).sum()) for k in ref_params)
        den = sum(float((ref_params[k].astype('float64') ** 2).sum()) for k in ref_params)
        worst_param = math.sqrt(num / den)
        good = (len(lines) == len(ref) and worst_loss <= args.rel and worst_norm <= args.rel and worst_param <= args.rel
                and sorted(params) == sorted(ref_params))
        print(f'{run}: {len(lines)} steps; worst relative difference: loss {worst_loss:.2e}, grad norm '
              f'{worst_norm:.2e}, final parameters {worst_param:.2e} (limit {args.rel:g}) {"ok" if good else "FAIL"}')
        print(json.dumps({'figures': {pathlib.Path(run).name: {'loss': worst_loss, 'grad_norm': worst_norm,
                                                                'parameters': worst_param}}}))
        ok = ok and good
    return ok


def resume(args):
    full = {l['step']: l['loss'] for l in metric_lines(args.full)}
    resumed = {l['step']: l['loss'] for l in metric_lines(args.resumed)}
    steps = sorted(resumed)
    unequal = [s for s in steps if full.get(s) != resumed[s]]
    print(f'resumed steps {steps[0] if steps else "-"}..{steps[-1] if steps else "-"}: '
          f'{len(steps) - len(unequal)} of {len(steps)} losses bitwise equal to the uninterrupted run'
          + (f'; first differing step {unequal[0]}: {full.get(unequal[0])!r} vs {resumed[unequal[0]]!r}' if unequal else ''))
    figures = {'steps': len(steps), 'unequal': len(unequal)}
    if args.baseline:  # what train.deterministic costs: the same run without it
        rate = lambda run: sum(l['pairs_per_s'] for l in metric_lines(run)[1:]) / max(1, len(metric_lines(run)) - 1)  # noqa: E731
        figures['deterministic_pairs_per_s'], figures['default_pairs_per_s'] = rate(args.full), rate(args.baseline)
        print(f'train.deterministic: {figures["deterministic_pairs_per_s"]:.1f} pairs/s, without: '
              f'{figures["default_pairs_per_s"]:.1f} pairs/s')
    print(json.dumps({'figures': figures}))
    return bool(steps) and not unequal


def speed(args):
    lines = metric_lines(args.run)[1:]
    if not lines:
        print(f'{args.run}: fewer than two logged lines')
        return False
    mean = lambda k: sum(l[k] for l in lines) / len(lines)  # noqa: E731
    pairs, tokens, flops = mean('pairs_per_s'), mean('tokens_per_s'), mean('model_flops_per_s')
    figures = {'sequences_per_s': 2 * pairs, 'tokens_per_s': tokens, 'model_tflops_per_s': flops / 1e12}
    line = f'{2 * pairs:.1f} sequences/s, {tokens:.0f} tokens/s, {flops / 1e12:.1f} model TFLOP/s'
    if args.peak_tflops:
        figures['mfu'] = flops / (args.peak_tflops * 1e12)
        line += f', MFU {100 * figures["mfu"]:.1f}% of {args.peak_tflops:g} TFLOP/s (dense bf16)'
    last = metric_lines(args.run)[-1]
    if 'device_peak_allocated_bytes' in last:
        figures['device_peak_allocated_mib'] = [b / 2**20 for b in last['device_peak_allocated_bytes']]
        figures['device_peak_reserved_mib'] = [b / 2**20 for b in last['device_peak_reserved_bytes']]
        line += f'; device peak allocated {figures["device_peak_allocated_mib"][0]:.0f} MiB, reserved ' \
                f'{figures["device_peak_reserved_mib"][0]:.0f} MiB'
    if args.plan:
        plan = json.loads(pathlib.Path(args.plan).read_text())
        peak = plan['peak_bytes']
        predicted = plan['state_bytes']['total'] + peak['activations'] + peak['loss']
        figures['plan_device_mib'] = predicted / 2**20
        line += f'; angle plan: {predicted / 2**20:.0f} MiB'
    print(line)
    print(json.dumps({'figures': figures}))
    return pairs > 0 and 'device_peak_allocated_bytes' in last


def summary(args):
    checks = []
    for row in pathlib.Path(args.records).read_text().splitlines():
        name, status, seconds, log, command = row.split('\t', 4)
        figures = {}
        if log and pathlib.Path(log).exists():
            for l in pathlib.Path(log).read_text(errors='replace').splitlines():
                if l.startswith('{"figures"'):
                    figures.update(json.loads(l)['figures'])
        checks.append({'name': name, 'status': status, 'seconds': float(seconds), 'command': command,
                       'figures': figures})
    statuses = {c['status'] for c in checks}
    overall = 'fail' if 'fail' in statuses else 'skipped' if statuses <= {'skipped'} else 'pass'
    out = {'status': overall, 'mode': args.mode, 'gpu': args.gpu or None, 'checks': checks}
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + '\n')
    listing = ', '.join(c['name'] + ' ' + c['status'] for c in checks)
    print(f'summary: {overall} ({listing}) -> {args.out}')
    return True


def llama(args):
    import shutil
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    out = pathlib.Path(args.out)
    if (out / 'DONE').exists():
        return True
    out.mkdir(parents=True, exist_ok=True)
    vocab = AutoTokenizer.from_pretrained(args.tokenizer).vocab_size
    config = LlamaConfig(vocab_size=vocab, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                         torch_dtype='bfloat16')
    torch.manual_seed(0)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    for f in pathlib.Path(args.tokenizer).iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)
    (out / 'DONE').write_text('')
    print(f'{sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters -> {out}')
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='command', required=True)
    p = sub.add_parser('compare'); p.add_argument('ref'); p.add_argument('runs', nargs='+'); p.add_argument('--rel', type=float, default=1e-4)  # noqa: E702
    p = sub.add_parser('resume'); p.add_argument('full'); p.add_argument('resumed'); p.add_argument('--baseline')  # noqa: E702
    p = sub.add_parser('speed'); p.add_argument('run'); p.add_argument('--peak-tflops', type=float); p.add_argument('--plan')  # noqa: E702
    p = sub.add_parser('summary'); p.add_argument('records'); p.add_argument('out'); p.add_argument('--mode', required=True); p.add_argument('--gpu', default='')  # noqa: E702
    p = sub.add_parser('llama'); p.add_argument('out'); p.add_argument('--tokenizer', required=True)  # noqa: E702
    args = ap.parse_args()
    sys.exit(0 if globals()[args.command](args) else 1)


if __name__ == '__main__':
    main()
