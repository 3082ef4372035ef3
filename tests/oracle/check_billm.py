#!/usr/bin/env python3
"""BiLLM (model.bidirectional_from = K, `--bidirectional-from K`; model/decoder.h) against BiLLM's
attention change applied to transformers + peft (tests/oracle/billm_oracle.py: the `billm` package
cannot run beside transformers 5.3.0), on the tiny random decoders of make_tiny_decoders.py:
  - embeddings: llama, mistral, qwen2, qwen3 and the llama/qwen2 PEFT adapters, K = 0, 1, 2 (of 2
    layers; K = 1 with mean pooling, the others with last-token pooling): `angle embed` in padded
    batches within 1e-4 (largest difference over the largest value) of BiLLM on each text alone;
    K = 2 is causal, bitwise; K = 0, 1 differ from causal; the
    directory's angle_embedding.json gives the flag's result, bitwise;
  - 10 LoRA steps (dropout 0 in model and adapters) from the llama-lora adapter with K = 0 and
    Prompts.A: per-step losses and final adapters within 1e-4 of angle-emb 0.6.1 + peft with the
    same change (tests/oracle/angle_emb_lora_steps.py --bidirectional-from 0);
  - export: final/ (PEFT adapter) and `angle export --merge` carry K and the prompt in
    angle_embedding.json; `angle embed` with no flag is within cosine distance 1e-5 of BiLLM on
    peft / transformers with the prompt;
  - bad input: K outside [0, layers] (job key, flag, file), K on a BERT model: one error line."""
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
from billm_oracle import embeddings  # noqa: E402
from common import fresh_dir, script_args, stsb_pairs  # noqa: E402
from expect import Expectations  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMPT = 'Summarize sentence "{text}" in one word:"'
LOSS = {'cosine_w': 1.0, 'ibn_w': 1.0, 'angle_w': 0.02, 'cosine_tau': 20.0, 'ibn_tau': 20.0, 'angle_tau': 20.0}


def run(cmd):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f'{" ".join(map(str, cmd))} failed:\n{proc.stderr[-3000:]}')
    return proc.stdout


def with_settings(model, out, settings):
    """A copy of a model directory (its files linked) with angle_embedding.json."""
    out.mkdir(parents=True, exist_ok=True)
    for f in pathlib.Path(model).iterdir():
        if f.name != 'angle_embedding.json' and not (out / f.name).exists():
            (out / f.name).symlink_to(f.resolve())
    (out / 'angle_embedding.json').write_text(json.dumps(settings))
    return out


def main():
    args = script_args(__doc__, '--angle', '--decoders', '--bert', '--data-dir', '--work')
    import numpy as np
    work, decoders, angle = fresh_dir(args.work), pathlib.Path(args.decoders), pathlib.Path(args.angle)
    expect = Expectations(angle)
    failures = expect.failures
    a, b, y = stsb_pairs(pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-dev.csv')
    texts = a[:12] + b[:12]
    (work / 'texts.txt').write_text('\n'.join(texts) + '\n')

    def ours(model, name, *extra):
        run([angle, 'embed', '--model', model, '--input', work / 'texts.txt', '--output', work / name,
             '--batch-size', 8, '--quiet', *extra])
        return np.load(work / name)

    def report(ok, line):
        print(f'[{"ok" if ok else "FAIL"}] {line}', flush=True)
        if not ok:
            failures.append(line)

    def gap(x, ref):
        return float(np.abs(x - ref).max() / np.abs(ref).max())

    for name in ('llama', 'mistral', 'qwen2', 'qwen3', 'llama-lora', 'qwen2-lora'):
        model = decoders / name
        adapter = model if (model / 'adapter_config.json').exists() else None
        base = decoders / name.removesuffix('-lora')
        # Last-token pooling reads the last position, which sees every key causally already: K = 1
        # changes only the other positions of the last layer, so it is checked with mean pooling.
        for k, pooling in ((0, 'last'), (1, 'mean'), (2, 'last')):
            flags = ('--pooling', pooling)
            causal = ours(model, f'{name}-causal-{pooling}.npy', *flags)
            mine = ours(model, f'{name}-{k}.npy', '--bidirectional-from', k, *flags)
            theirs = embeddings(base, adapter, texts, k, pooling={'mean': 'avg'}.get(pooling, pooling))
            from_file = ours(with_settings(model, work / f'{name}-k{k}', {'bidirectional_from': k}), f'{name}-{k}f.npy',
                             *flags)
            line = (f'{name} K={k} ({pooling} pooling): {gap(mine, theirs):.1e} from BiLLM (each text alone); '
                    f'angle_embedding.json = flag: {np.array_equal(mine, from_file)}')
            ok = gap(mine, theirs) <= 1e-4 and np.array_equal(mine, from_file)
            if k == 2:
                ok, line = ok and np.array_equal(mine, causal), line + f'; = causal: {np.array_equal(mine, causal)}'
            else:
                ok, line = ok and gap(mine, causal) > 1e-3, line + f'; {gap(mine, causal):.1e} from causal'
            report(ok, line)

    # 10 LoRA steps with K = 1 and Prompts.A, against angle-emb + peft with the same change.
    base, init = decoders / 'llama', decoders / 'llama-lora'
    rows = (pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-train.csv').read_text(encoding='utf-8').splitlines()
    sixteen = work / 'sixteen.csv'
    sixteen.write_text('\n'.join(rows[:16]) + '\n', encoding='utf-8')
    a, b, y = stsb_pairs(sixteen)
    pairs = work / 'pairs.jsonl'
    pairs.write_text(''.join(json.dumps({'text1': s, 'text2': t, 'label': l / 5}) + '\n' for s, t, l in zip(a, b, y)))
    reference = work / 'angle-emb.json'
    subprocess.run([str(c) for c in (
        sys.executable, ROOT / 'tests/oracle/angle_emb_lora_steps.py', '--model', base, '--adapter-init', init,
        '--pairs', pairs, '--batch-size', 16, '--steps', 10, '--lr', 1e-4, '--max-length', 64, '--loss', json.dumps(LOSS),
        '--out', reference, '--save-adapter', work / 'angle-emb-adapter', '--text-prompt', PROMPT,
        '--bidirectional-from', 0)], check=True)
    theirs = json.loads(reference.read_text())['losses']
    out = work / 'trained'
    loss = [x for k, v in LOSS.items() for x in (f'--loss.{k}', v)]
    run([angle, 'train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', base, '--model.max_length', 64,
         '--model.dropout', 0, '--model.pooling', 'last', '--model.bidirectional_from', 0, '--data.train',
         f'stsb:{sixteen}', '--data.dev', '', '--data.test', '', '--data.filter_duplicate', 'false',
         '--data.label_norm', 'range', '--data.text_prompt', PROMPT, '--lora.init', init, '--lora.dropout', 0,
         '--train.global_batch', 16, '--train.max_steps', 10, '--train.log_every', 1, '--optim.lr', 1e-4,
         '--run.output_dir', out, *loss])
    mine = [json.loads(l)['loss'] for l in (out / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
    worst = max(abs(m - t) / max(abs(t), 1e-12) for m, t in zip(mine, theirs))
    from safetensors.numpy import load_file
    ad_ours, ad_theirs = (load_file(str(d / 'adapter_model.safetensors')) for d in (out / 'final', work / 'angle-emb-adapter'))
    apart = (sum(float(((ad_ours[k] - ad_theirs[k]) ** 2).sum()) for k in ad_theirs)
             / sum(float((ad_theirs[k] ** 2).sum()) for k in ad_theirs)) ** 0.5
    report(len(mine) == len(theirs) == 10 and worst <= 1e-4 and apart <= 1e-4,
           f'10 LoRA steps, K=0, Prompts.A: losses within {worst:.1e} of angle-emb + peft with BiLLM '
           f'(first {mine[0]:.6f} vs {theirs[0]:.6f}); final adapters {apart:.1e} apart')

    # Exports carry K and the prompt; embedding them needs no flag.
    run([angle, 'export', '--checkpoint', out / 'final', '--output', work / 'merged', '--merge'])
    for label, directory, oracle_base, oracle_adapter in (('final/ (PEFT adapter)', out / 'final', base, out / 'final'),
                                                           ('--merge', work / 'merged', work / 'merged', None)):
        settings = json.loads((directory / 'angle_embedding.json').read_text())
        mine, theirs = ours(directory, f'{directory.name}.npy'), embeddings(oracle_base, oracle_adapter, texts, 0, PROMPT)
        cos = (mine * theirs).sum(1) / np.linalg.norm(mine, axis=1) / np.linalg.norm(theirs, axis=1)
        d = float((1 - cos).max())
        report(settings == {'prompt': PROMPT, 'bidirectional_from': 0} and d <= 1e-5,
               f'{label}: angle_embedding.json {settings}; no-flag embeddings within cosine distance {d:.1e} of BiLLM')

    # Bad input: one line each, before any work.
    short = ['train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', base, '--data.train', f'stsb:{sixteen}',
             '--data.dev', '', '--data.test', '', '--train.max_steps', 1]
    expect.failure('job: K above the layers', short + ['--model.bidirectional_from', 3, '--run.output_dir', work / 'bad1'],
                   ['bidirectional_from 3 is outside [0, 2]', 'config.json'], work / 'bad1')
    expect.failure('job: K negative', short + ['--model.bidirectional_from', -1, '--run.output_dir', work / 'bad2'],
                   ['model.bidirectional_from must be >= 0'], work / 'bad2')
    expect.failure('job: K on BERT', short + ['--model.path', args.bert, '--model.bidirectional_from', 0,
                                              '--run.output_dir', work / 'bad3'],
                   ['bidirectional_from (BiLLM) applies to LLaMA-family decoders', 'BERT-family'], work / 'bad3')
    embed = ['embed', '--input', work / 'texts.txt', '--output', work / 'bad.npy']
    expect.failure('embed: --bidirectional-from above the layers', embed + ['--model', base, '--bidirectional-from', 5],
                   ['bidirectional_from 5 is outside [0, 2]'], work / 'bad.npy')
    expect.failure('embed: K on BERT', embed + ['--model', args.bert, '--bidirectional-from', 0],
                   ['applies to LLaMA-family decoders'], work / 'bad.npy')
    expect.failure('embed: angle_embedding.json K not an integer',
                   embed + ['--model', with_settings(base, work / 'bad-file', {'bidirectional_from': 'x'})],
                   ['angle_embedding.json: bidirectional_from is not an integer'], work / 'bad.npy')
    expect.exit_status()


if __name__ == '__main__':
    main()
