#!/usr/bin/env python3
"""Objectives on top of AnglE's in `angle train` (the tiny cased BERT, width 64, dropout 0):
  - Matryoshka (loss.matryoshka_dims 64,32,16, weights 1,1,0.5), formats A and C: per-step losses
    within 1e-5 relative and final parameters within 1e-5 of N = 1 at N = 2 and 4, and with
    train.chunk 2 at N = 2; each size's terms are logged ("ibn@32"); the sizes change training;
  - Espresso (loss.ese, compression 16, KL temperature 2), formats A and C: the same at N = 2 and 4
    and with train.chunk 2 at N = 2; its terms are logged; it changes training;
  - the model carries its sizes: final/ records matryoshka_dims; `angle export --dim 16` writes
    truncate_dim, with which sentence-transformers' SentenceTransformer(dir) gives 16-dimensional
    embeddings equal (cosine 1 - 1e-6) to `angle embed` on the same directory; `angle embed --dim 32`
    equals the first 32 columns of the whole embedding;
  - false negatives (loss.false_negatives), format B with every positive shared by 4 queries and
    data.filter_duplicate off: the text rule at N = 2 equals N = 1 (losses and parameters within 1e-5)
    on batches where a query's duplicate positive lies in the other rank's rows (counted from the
    sampler's order, tests/oracle/sampler_order.py), and it changes training; the margin rule at N = 2
    equals N = 1 (formats B and C) and with Matryoshka sizes;
  - bad input: one error line before any work.
The format C triplets are SNLI dev's (premise, entailment, contradiction), each twice, so that
batches hold duplicates that the filter drops unevenly across ranks."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from check_formats import snli_triplets, write_jsonl  # noqa: E402
from expect import setup  # noqa: E402
from runs import TrainRuns, final_params, losses, metrics, mpirun, param_distance, rel, short_job  # noqa: E402

DIMS = ['--loss.matryoshka_dims', '64,32,16', '--loss.matryoshka_weights', '1,1,0.5']


def main():
    args, angle, work, expect = setup(__doc__, '--tiny', '--data-dir')
    failures = expect.failures
    data = pathlib.Path(args.data_dir)

    def check(ok, label, detail=''):
        print(f'[{"ok" if ok else "FAIL"}] {label}{": " + detail if detail else ""}')
        if not ok:
            failures.append(f'{label}: {detail}')

    source = write_jsonl(work / 'c.jsonl', [{'q': q, 'p': p, 'n': n}
                                            for q, p, n in snli_triplets(data / 'NLI/SNLI_senteval', 48) * 2])
    c_file = work / 'c.h5'
    mpirun(1, angle, ['prepare', '--format', 'jsonl', '--input', source, '--columns', 'query=q,positive=p,negative=n',
                      '--model', args.tiny, '--output', c_file, '--max-length', 64])
    base = short_job(data) + ['--model.path', args.tiny, '--model.pooling', 'cls', '--model.max_length', 64,
                              '--train.global_batch', 16, '--train.max_steps', 4]

    runs = TrainRuns(angle, work, failures)
    run, same = runs.run, runs.same

    # Matryoshka across world sizes and with gradient caching.
    for fmt, train in (('A', []), ('C', ['--data.train', c_file])):
        job = base + train + DIMS
        reference = run(f'mrl-{fmt}-n1', 1, job)
        logged = metrics(reference)[0]
        want = ['ibn', 'ibn@16', 'ibn@32']
        check(all(k in logged for k in want), f'format {fmt}: terms of each size logged',
              str(sorted(k for k in logged if k.startswith('ibn'))))
        for n in (2, 4):
            same(f'Matryoshka format {fmt}: N={n} vs N=1', run(f'mrl-{fmt}-n{n}', n, job), reference)
        same(f'Matryoshka format {fmt}: N=2 chunk 2 vs N=1', run(f'mrl-{fmt}-chunk', 2, job + ['--train.chunk', 2]),
             reference)
        plain = run(f'plain-{fmt}', 1, base + train)
        effect = param_distance(final_params(plain), final_params(reference))
        check(effect > 1e-4, f'format {fmt}: the sizes change training', f'parameters differ by {effect:.1e}')

    # Espresso across world sizes and with gradient caching.
    ese = ['--loss.ese', 'true', '--loss.ese_compression_size', 16, '--loss.ese_kl_temperature', 2]
    for fmt, train in (('A', []), ('C', ['--data.train', c_file])):
        job = base + train + ese
        reference = run(f'ese-{fmt}-n1', 1, job)
        logged = metrics(reference)[0]
        check(all(k in logged for k in ('ibn', 'ibn@16', 'ese_distill', 'ese_layers')), f'ESE format {fmt}: terms logged',
              str(sorted(k for k in logged if k.startswith(('ibn', 'ese')))))
        for n in (2, 4):
            same(f'ESE format {fmt}: N={n} vs N=1', run(f'ese-{fmt}-n{n}', n, job), reference)
        same(f'ESE format {fmt}: N=2 chunk 2 vs N=1', run(f'ese-{fmt}-chunk', 2, job + ['--train.chunk', 2]), reference)
        effect = param_distance(final_params(work / f'plain-{fmt}'), final_params(reference))
        check(effect > 1e-4, f'ESE format {fmt}: changes training', f'parameters differ by {effect:.1e}')

    # The model carries its sizes; truncate_dim as sentence-transformers reads it.
    final = work / 'mrl-A-n1/final'
    recorded = json.loads((final / 'angle_embedding.json').read_text()).get('matryoshka_dims')
    check(recorded == [64, 32, 16], 'final/ records matryoshka_dims', str(recorded))
    exported = work / 'exported-16'
    mpirun(1, angle, ['export', '--checkpoint', final, '--output', exported, '--dim', 16])
    st_config = json.loads((exported / 'config_sentence_transformers.json').read_text())
    check(st_config.get('truncate_dim') == 16, 'export --dim 16 writes truncate_dim', str(st_config))
    texts = [t for q, p, n in snli_triplets(data / 'NLI/SNLI_senteval', 12) for t in (q, p, n)]
    (work / 'texts.txt').write_text('\n'.join(texts) + '\n')
    import numpy as np

    def embed(model, out, *extra):
        mpirun(1, angle, ['embed', '--model', model, '--input', work / 'texts.txt', '--output', work / out, '--quiet',
                          *extra])
        return np.load(work / out).astype(np.float64)

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    ours = embed(exported, 'ours-16.npy')
    from sentence_transformers import SentenceTransformer
    theirs = SentenceTransformer(str(exported), device='cpu').encode(texts, convert_to_numpy=True).astype(np.float64)
    cosine = float(np.min(np.sum(unit(ours) * unit(theirs), axis=1))) if ours.shape == theirs.shape else float('nan')
    check(ours.shape == theirs.shape == (len(texts), 16) and cosine > 1 - 1e-6,
          'sentence-transformers truncate_dim = angle embed on the exported model',
          f'shapes {ours.shape} / {theirs.shape}, min cosine {cosine:.8f}')
    whole, cut = embed(final, 'whole.npy'), embed(final, 'cut-32.npy', '--dim', 32)
    check(cut.shape == (len(texts), 32) and np.allclose(cut, whole[:, :32], atol=1e-6, rtol=0),
          'embed --dim 32 = the first 32 columns', f'shape {cut.shape}')

    # False negatives: groups of 4 queries share one positive; some groups span both ranks.
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'oracle'))
    from sampler_order import epoch_permutation
    triplets = snli_triplets(data / 'NLI/SNLI_senteval', 48)
    shared = write_jsonl(work / 'shared.jsonl', [{'q': q, 'p': triplets[i // 4 * 4][1]} for i, (q, _, _) in enumerate(triplets)])
    b_file = work / 'shared.h5'
    mpirun(1, angle, ['prepare', '--format', 'jsonl', '--input', shared, '--columns', 'query=q,positive=p',
                      '--model', args.tiny, '--output', b_file, '--max-length', 64])
    order = epoch_permutation(48, 42)
    spanning = sum(len({i // 4 for i in order[16 * s:16 * s + 8]} & {i // 4 for i in order[16 * s + 8:16 * s + 16]})
                   for s in range(3))
    check(spanning > 0, 'a shared positive lies in both ranks\' rows', f'{spanning} groups over 3 steps at N=2')
    fn = base + ['--data.train', b_file, '--data.filter_duplicate', 'false', '--train.max_steps', 3]
    text_ref = run('fn-text-n1', 1, fn + ['--loss.false_negatives', 'text'])
    same('false negatives by text: N=2 vs N=1', run('fn-text-n2', 2, fn + ['--loss.false_negatives', 'text']), text_ref)
    unmasked = run('fn-none', 1, fn)
    first = rel(losses(unmasked)[0], losses(text_ref)[0])
    effect = param_distance(final_params(unmasked), final_params(text_ref))
    check(first > 1e-3 and effect > 1e-5, 'masking the shared positives changes training',
          f'step 1 loss differs by {first:.1e} (relative), parameters by {effect:.1e}')
    margin = ['--loss.false_negatives', 'margin', '--loss.false_negative_margin', '0.05']
    same('false negatives by margin: N=2 vs N=1', run('fn-margin-n2', 2, fn + margin), run('fn-margin-n1', 1, fn + margin))
    c_margin = base + ['--data.train', c_file] + margin + DIMS
    same('margin rule + Matryoshka, format C: N=2 vs N=1', run('fn-c-n2', 2, c_margin), run('fn-c-n1', 1, c_margin))

    # Bad input.
    bad = base + ['--run.output_dir', work / 'bad']
    expect.failure('sizes not decreasing', bad + ['--loss.matryoshka_dims', '16,32'],
                   ['loss.matryoshka_dims', "'16,32'", 'strictly decreasing'])
    expect.failure('a size above the width', bad + ['--loss.matryoshka_dims', '128,64'],
                   ['loss.matryoshka_dims', '128 is above the embedding size 64'])
    expect.failure('an odd size with the angle term', bad + ['--loss.matryoshka_dims', '64,15'],
                   ['loss.matryoshka_dims', '15 is odd', 'angle'])
    expect.failure('weights of another count', bad + ['--loss.matryoshka_dims', '64,32', '--loss.matryoshka_weights', '1'],
                   ['loss.matryoshka_weights', '1 weights for 2 sizes'])
    expect.failure('a size that is not a number', bad + ['--loss.matryoshka_dims', '64,x'],
                   ['loss.matryoshka_dims', "'x' is not an integer"])
    expect.failure('false negatives on format A', bad + ['--loss.false_negatives', 'text'],
                   ['loss.false_negatives applies to formats B and C', 'format A'])
    expect.failure('unknown false-negative rule', bad + ['--loss.false_negatives', 'guide'],
                   ["loss.false_negatives 'guide'", 'none, margin or text'])
    expect.failure('a margin without the margin rule', bad + ['--loss.false_negative_margin', '0.1'],
                   ['loss.false_negative_margin applies to loss.false_negatives = margin'])
    expect.failure('ESE compression above the width', bad + ['--loss.ese', 'true', '--loss.ese_compression_size', 128],
                   ['loss.ese_compression_size 128 is above the embedding size 64'])
    expect.failure('ESE and Matryoshka together', bad + ['--loss.ese', 'true', '--loss.matryoshka_dims', '64,32'],
                   ['loss.ese and loss.matryoshka_dims', 'choose one'])
    expect.failure('an ESE setting without ESE', bad + ['--loss.ese_kl_temperature', 2],
                   ['apply to loss.ese = true'])
    for dim in (0, 65):
        expect.failure(f'embed --dim {dim}', ['embed', '--model', final, '--input', work / 'texts.txt', '--output',
                                              work / 'bad.npy', '--dim', dim], ['--dim', 'must be in 1..64'],
                       output=work / 'bad.npy')
    expect.exit_status()
    print('Matryoshka, Espresso and false-negative checks passed')


if __name__ == '__main__':
    main()
