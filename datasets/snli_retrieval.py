#!/usr/bin/env python3
"""A small retrieval set in the BEIR layout, built from SNLI test (SentEval's s1/s2/labels files,
fetched by datasets/fetch.sh): every premise with at least one entailed hypothesis is a query, every
distinct hypothesis of the split (entailed, neutral or contradicted) is a document, and a query's
entailed hypotheses are its relevant documents (score 1). SNLI test gives 3,089 queries over 9,639
documents. Queries are q1, q2, ... and documents d1, d2, ... in the order they first appear.

  python3 datasets/snli_retrieval.py [--data data] [--split test] [--out data/retrieval/snli-test]
  angle eval --model DIR --retrieval data/retrieval/snli-test

Writes corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv into a temporary directory beside --out
and renames it into place, so that a directory named --out is always complete."""
import argparse
import json
import pathlib
import shutil
import sys
import tempfile


def read_split(directory, split):
    columns = []
    for name in ('s1', 's2', 'labels'):
        path = directory / f'{name}.{split}'
        if not path.is_file():
            sys.exit(f'snli_retrieval.py: {path}: not found (run datasets/fetch.sh)')
        columns.append(path.read_text(encoding='utf-8').rstrip('\n').split('\n'))
    if len({len(c) for c in columns}) != 1:
        sys.exit(f'snli_retrieval.py: {directory}: s1/s2/labels.{split} differ in length')
    return list(zip(*columns))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default='data', help='the data directory of datasets/fetch.sh')
    ap.add_argument('--split', default='test', choices=('dev', 'test'))
    ap.add_argument('--out', help='default: DATA/retrieval/snli-SPLIT')
    args = ap.parse_args()
    out = pathlib.Path(args.out or f'{args.data}/retrieval/snli-{args.split}')
    rows = read_split(pathlib.Path(args.data) / 'NLI/SNLI_senteval', args.split)

    docs, queries, relevant = {}, {}, {}
    for premise, hypothesis, label in ((p.strip(), h.strip(), l) for p, h, l in rows):
        docs.setdefault(hypothesis, f'd{len(docs) + 1}')
        if label == 'entailment':
            queries.setdefault(premise, f'q{len(queries) + 1}')
            relevant.setdefault(queries[premise], []).append(docs[hypothesis])

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    try:
        (tmp / 'qrels').mkdir()
        (tmp / 'corpus.jsonl').write_text(''.join(json.dumps({'_id': i, 'title': '', 'text': t}) + '\n'
                                                  for t, i in docs.items()), encoding='utf-8')
        (tmp / 'queries.jsonl').write_text(''.join(json.dumps({'_id': i, 'text': t}) + '\n'
                                                   for t, i in queries.items()), encoding='utf-8')
        (tmp / 'qrels' / f'{args.split}.tsv').write_text(
            'query-id\tcorpus-id\tscore\n' + ''.join(f'{q}\t{d}\t1\n' for q, ds in relevant.items()
                                                     for d in dict.fromkeys(ds)), encoding='utf-8')
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'{out}: {len(queries)} queries, {len(docs)} documents, '
          f'{sum(len(set(d)) for d in relevant.values())} judgements (SNLI {args.split})')


if __name__ == '__main__':
    main()
