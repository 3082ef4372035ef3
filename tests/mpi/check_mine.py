#!/usr/bin/env python3
"""`angle mine` against sentence-transformers' mine_hard_negatives (exact search, "top" sampling,
triplet output) on the same model (all-MiniLM-L6-v2) and data: SNLI dev premises as queries, their
entailed hypotheses as positives (a few pairs repeated, and one premise with two positives), the
corpus every SNLI dev hypothesis. For each filter setting:
  - the triplets equal sentence-transformers' in order, ties aside (a differing negative must score
    within 1e-5 of the one it replaces, by sentence-transformers' own embeddings; at most 5% differ);
  - 1, 2 and 4 ranks write the same triplets;
  - mining from precomputed embeddings (`angle embed --output .h5` of the queries and of the corpus)
    writes the same triplets as mining from the texts (1 and 2 ranks); the other settings mine from
    them, which keeps the test short;
  - the file trains (`angle train` reads it as format C) and records what made it;
  - bad input (a format A query file, a corpus file that is not text, embeddings of the wrong shape,
    k larger than the corpus, --corpus-embeddings without --corpus): one error line, no output."""
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402
from runs import mpirun, short_job  # noqa: E402

SETTINGS = {  # our flags -> sentence-transformers' keyword arguments
    'default': ([], {}),
    'range 2..+2': (['--range-min', 2, '--num-negatives', 2], dict(range_min=2, num_negatives=2)),
    'absolute margin + max score': (['--absolute-margin', 0.05, '--max-score', 0.8, '--num-negatives', 2],
                                    dict(absolute_margin=0.05, max_score=0.8, num_negatives=2)),
    'relative margin, range max 8': (['--relative-margin', 0.02, '--range-max', 8, '--num-negatives', 3],
                                     dict(relative_margin=0.02, range_max=8, num_negatives=3)),
    'min score': (['--min-score', 0.3, '--num-negatives', 3], dict(min_score=0.3, num_negatives=3)),
}


def snli_pairs(snli_dir, count):
    s1 = (snli_dir / 's1.dev').read_text().splitlines()
    s2 = (snli_dir / 's2.dev').read_text().splitlines()
    labels = (snli_dir / 'labels.dev').read_text().splitlines()
    pairs, seen = [], set()
    for p, h, l in zip(s1, s2, labels):
        if l == 'entailment' and p not in seen:
            seen.add(p)
            pairs.append((p, h))
    return pairs[:count], sorted(set(s2))


def triplets(path):
    import h5py
    with h5py.File(path) as f:
        columns = [[t.decode() if isinstance(t, bytes) else t for t in f[f'text/{c}'][:]]
                   for c in ('query', 'positive', 'negative')]
        mined = json.loads(f.attrs['mined'])
    return list(zip(*columns)), mined


def main():
    args, angle, work, expect = setup(__doc__, '--model', '--data-dir')
    failures = expect.failures
    data = pathlib.Path(args.data_dir)
    pairs, hypotheses = snli_pairs(data / 'NLI/SNLI_senteval', 200)
    pairs = pairs + pairs[:5] + [(pairs[0][0], pairs[1][1])]  # repeated pairs; a query with two positives
    queries = work / 'pairs.jsonl'
    queries.write_text(''.join(json.dumps({'query': q, 'positive': p}) + '\n' for q, p in pairs))
    corpus = work / 'corpus.txt'
    # (every positive is a line: precomputed corpus embeddings need them all)
    lines = hypotheses[:1800]
    lines += sorted({p for _, p in pairs} - set(lines))
    corpus.write_text('\n'.join(lines) + '\n')

    def check(ok, label, detail=''):
        print(f'[{"ok" if ok else "FAIL"}] {label}{": " + detail if detail else ""}')
        if not ok:
            failures.append(f'{label}: {detail}')

    def mine(n, out, flags):
        mpirun(n, angle, ['mine', '--model', args.model, '--queries', queries, '--output', work / out, '--quiet', *flags])
        return triplets(work / out)

    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives
    import numpy as np
    model = SentenceTransformer(args.model, device='cpu')
    dataset = Dataset.from_dict({'query': [q for q, _ in pairs], 'positive': [p for _, p in pairs]})
    corpus_texts = corpus.read_text().splitlines()
    emb = {}

    def cosine(a, b):
        for t in (a, b):
            if t not in emb:
                emb[t] = model.encode([t], normalize_embeddings=True)[0]
        return float(np.dot(emb[a], emb[b]))

    # Precomputed embeddings (the queries' a row per pair, the corpus' a row per line) = embedded here.
    query_texts = work / 'queries.txt'
    query_texts.write_text('\n'.join(q for q, _ in pairs) + '\n')
    for texts, out in ((query_texts, 'queries.h5'), (corpus, 'corpus.h5')):
        mpirun(1, angle, ['embed', '--model', args.model, '--input', texts, '--output', work / out, '--quiet'])
    stored = ['--corpus', corpus, '--query-embeddings', work / 'queries.h5', '--corpus-embeddings', work / 'corpus.h5']
    for n in (1, 2):
        computed, _ = mine(n, f'computed-{n}.h5', ['--corpus', corpus])
        precomputed, mined = mine(n, f'precomputed-{n}.h5', stored)
        check(precomputed == computed, f'{n} rank(s): precomputed embeddings = embedded here', f'{len(computed)} triplets')
    check(mined.get('corpus-embeddings', '').endswith('corpus.h5') and mined.get('num_negatives') == 3,
          'the file records what made it', json.dumps(mined)[:120])

    for label, (flags, kwargs) in SETTINGS.items():
        theirs = mine_hard_negatives(dataset, model, corpus=corpus_texts, batch_size=32, verbose=False, **kwargs)
        theirs = list(zip(theirs['query'], theirs['positive'], theirs['negative']))
        name = label.replace(' ', '_').replace(',', '')
        ours, _ = mine(1, f'{name}-1.h5', stored + flags)
        differ = [(a, b) for a, b in zip(ours, theirs) if a != b]
        ties = all(a[:2] == b[:2] and abs(cosine(a[0], a[2]) - cosine(b[0], b[2])) < 1e-5 for a, b in differ)
        check(len(ours) == len(theirs) and ties and len(differ) <= len(ours) // 20,
              f'{label}: = sentence-transformers', f'{len(ours)} / {len(theirs)} triplets, {len(differ)} differ '
              f'({"ties" if ties else "NOT ties"})')
        for n in (2, 4):
            ranked, _ = mine(n, f'{name}-{n}.h5', stored + flags)
            check(ranked == ours, f'{label}: {n} ranks = 1 rank', f'{len(ranked)} triplets')

    trained = work / 'trained'
    mpirun(1, angle, short_job(data) + ['--model.path', args.model, '--data.train', work / 'computed-1.h5',
                                        '--train.max_steps', 2, '--train.global_batch', 8, '--run.output_dir', trained])
    check((trained / 'final/model.safetensors').exists(), 'angle train reads the mined file (format C)')

    # Bad input.
    bad_out = work / 'bad.h5'
    base = ['mine', '--model', args.model, '--output', bad_out, '--quiet']
    a_file = work / 'a.jsonl'
    a_file.write_text(json.dumps({'text1': 'a b', 'text2': 'b c', 'label': 1}) + '\n')
    expect.failure('a format A query file', base + ['--queries', a_file, '--columns', 'text1=text1,text2=text2,label=label'],
                   ['--queries', 'format B', 'not format A'], output=bad_out)
    expect.failure('a query file of another kind', base + ['--queries', corpus], ['--queries', 'corpus.txt', '.jsonl'],
                   output=bad_out)
    expect.failure('a corpus that is not text', base + ['--queries', queries, '--corpus', work / 'corpus.h5'],
                   ['corpus.h5'], output=bad_out)
    expect.failure('corpus embeddings of the wrong shape', base + ['--queries', queries, '--corpus', corpus,
                                                                  '--corpus-embeddings', work / 'queries.h5'],
                   ['queries.h5', 'rows for the', 'lines of --corpus'], output=bad_out)
    expect.failure('corpus embeddings that are not embeddings', base + ['--queries', queries, '--corpus', corpus,
                                                                       '--corpus-embeddings', work / 'computed-1.h5'],
                   ['computed-1.h5', "no dataset 'embeddings'"], output=bad_out)
    expect.failure('k larger than the corpus', base + ['--queries', queries, '--num-negatives', 400],
                   ['--num-negatives 400', 'more candidates than the corpus has'], output=bad_out)
    expect.failure('corpus embeddings without the corpus', base + ['--queries', queries, '--corpus-embeddings',
                                                                  work / 'corpus.h5'],
                   ['--corpus-embeddings needs --corpus'], output=bad_out)
    proc = mpirun(2, angle, base + ['--queries', queries, '--corpus', corpus, '--corpus-embeddings', work / 'queries.h5'],
                  check=False)
    check(proc.returncode != 0 and 'rank' in proc.stderr and not bad_out.exists(),
          'a bad input under mpirun ends the job with the rank\'s message', proc.stderr.strip().splitlines()[-1][:160]
          if proc.stderr.strip() else 'no message')
    expect.exit_status()
    print('mining checks passed')


if __name__ == '__main__':
    main()
