#!/usr/bin/env python3
"""`angle embed` end to end (sorting, batching, pooling, normalisation, .npy and .h5 writers)
against sentence-transformers `encode` on 300 STS-B dev sentences: every row within 1e-5 cosine
distance, the same norms when the model normalises, and the .h5 output equal to the .npy one.
bf16 (--dtype bf16) against the same fp32 reference within a stated 1e-3 cosine distance (bf16
keeps 8 bits of mantissa), and --dtype auto choosing bf16 exactly when /proc/cpuinfo lists
avx512_bf16 or amx_bf16. Prompts: see check_prompts."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import fresh_dir, run, script_args, stsb_pairs  # noqa: E402


def check_prompts(args, work, texts, plain):
    """--prompt as a prefix = sentence-transformers' encode(prompt=...); a template with a suffix =
    sentence-transformers on the formatted texts (angle-emb's prompt.format(text=...)); a model
    directory's default prompt (config_sentence_transformers.json) applied with no flag, as
    sentence-transformers applies it; angle_embedding.json before it; --prompt '' turns it off."""
    import json
    import numpy as np
    from sentence_transformers import SentenceTransformer

    def embed(model, name, *extra):
        run([args.angle, 'embed', '--model', model, '--input', work / 'texts.txt', '--output', work / name,
             '--batch-size', 17, '--quiet', *extra])
        return np.load(work / name)

    def distance(x, y):
        cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        return float((1 - cos).max())

    st = SentenceTransformer(args.model, device='cpu')
    template = 'Summarize sentence "{text}" in one word:"'
    gaps = {
        'prefix': distance(embed(args.model, 'prefix.npy', '--prompt', 'query: {text}'),
                           st.encode(texts, prompt='query: ', batch_size=32)),
        'template': distance(embed(args.model, 'template.npy', '--prompt', template),
                             st.encode([template.format(text=t) for t in texts], batch_size=32)),
    }
    carried = work / 'with-prompt'  # the model's files, and a default prompt
    carried.mkdir(exist_ok=True)
    for f in pathlib.Path(args.model).iterdir():
        if f.name not in ('config_sentence_transformers.json', 'angle_embedding.json') and not (carried / f.name).exists():
            (carried / f.name).symlink_to(f.resolve())
    (carried / 'config_sentence_transformers.json').write_text(
        json.dumps({'prompts': {'query': 'query: '}, 'default_prompt_name': 'query'}))
    (carried / 'angle_embedding.json').unlink(missing_ok=True)
    gaps['default prompt'] = distance(embed(carried, 'carried.npy'),
                                      SentenceTransformer(str(carried), device='cpu').encode(texts, batch_size=32))
    (carried / 'angle_embedding.json').write_text(json.dumps({'prompt': template}))
    same_template = np.array_equal(embed(carried, 'carried-template.npy'), np.load(work / 'template.npy'))
    off = np.array_equal(embed(carried, 'off.npy', '--prompt', ''), plain)
    print('prompts, max cosine distance to sentence-transformers: ' + ', '.join(f'{k} {v:.2e}' for k, v in gaps.items())
          + f'; angle_embedding.json = --prompt: {same_template}; --prompt \'\' = no prompt: {off}')
    if max(gaps.values()) > 1e-5 or not same_template or not off:
        sys.exit('prompts disagree (see the line above)')


def main():
    args = script_args(__doc__, '--angle', '--model', '--data-dir', '--work')
    import h5py
    import numpy as np
    from sentence_transformers import SentenceTransformer

    work = fresh_dir(args.work)
    a, b, _ = stsb_pairs(pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-dev.csv')
    texts = (a + b)[:300]
    (work / 'texts.txt').write_text('\n'.join(texts) + '\n', encoding='utf-8')
    for out in ('emb.npy', 'emb.h5'):
        (work / out).unlink(missing_ok=True)
        run([args.angle, 'embed', '--model', args.model, '--input', work / 'texts.txt', '--output', work / out,
             '--batch-size', 17, '--quiet'])
    ours = np.load(work / 'emb.npy')
    with h5py.File(work / 'emb.h5', 'r') as f:
        ours_h5 = f['embeddings'][...]
    theirs = SentenceTransformer(args.model, device='cpu').encode(texts, batch_size=32, convert_to_numpy=True)
    if ours.shape != theirs.shape:
        sys.exit(f'shape {ours.shape} != sentence-transformers {theirs.shape}')
    if not np.array_equal(ours, ours_h5):
        sys.exit('.h5 output differs from .npy output')
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    worst = float((1 - cos).max())
    norm_gap = float(np.abs(np.linalg.norm(ours, axis=1) - np.linalg.norm(theirs, axis=1)).max())
    print(f'{len(texts)} texts: max cosine distance {worst:.2e}, max norm difference {norm_gap:.2e}')
    if worst > 1e-5:
        sys.exit(f'max cosine distance {worst} > 1e-5 (row {int((1 - cos).argmax())})')
    if norm_gap > 1e-3 * float(np.linalg.norm(theirs, axis=1).max()):
        sys.exit(f'norms differ by {norm_gap}: normalisation disagrees with sentence-transformers')

    check_prompts(args, work, texts, ours)

    log = run([args.angle, 'embed', '--model', args.model, '--input', work / 'texts.txt', '--output',
               work / 'bf16.npy', '--batch-size', 17, '--quiet', '--dtype', 'bf16'], capture_stderr=True)
    bf16 = np.load(work / 'bf16.npy')
    cos = (bf16 * theirs).sum(1) / np.linalg.norm(bf16, axis=1) / np.linalg.norm(theirs, axis=1)
    worst_bf16 = float((1 - cos).max())
    print(f'bf16: max cosine distance {worst_bf16:.2e} ({log.strip().splitlines()[-1]})')
    if bf16.dtype != np.float32 or worst_bf16 > 1e-3:
        sys.exit(f'bf16 embeddings: dtype {bf16.dtype}, max cosine distance {worst_bf16} > 1e-3')
    flags = next((line.split(':', 1)[1].split() for line in open('/proc/cpuinfo') if line.startswith('flags')), [])
    native = [f for f in ('amx_bf16', 'avx512_bf16') if f in flags]
    log = run([args.angle, 'embed', '--model', args.model, '--input', work / 'texts.txt', '--output',
               work / 'auto.npy', '--quiet', '--dtype', 'auto'], capture_stderr=True)
    expected = f'bf16 (native: {native[0]})' if native else 'fp32'
    if f'normalized, {expected};' not in log and f'pooling, {expected};' not in log:
        sys.exit(f'--dtype auto on a CPU with {native or "no native bf16"}: expected "{expected}" in: {log}')
    print(f'--dtype auto: {expected}')


if __name__ == '__main__':
    main()
