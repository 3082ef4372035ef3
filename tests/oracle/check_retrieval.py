#!/usr/bin/env python3
"""`angle eval --retrieval` on the SNLI test retrieval set (datasets/snli_retrieval.py), MiniLM:
  - its nDCG@10, MRR@10 and Recall@100 equal pytrec_eval's (trec_eval) on the run file it writes,
    to 1e-6 (MRR@10: recip_rank on the run cut at 10);
  - the whole chain (embedding, exact cosine search, metrics) agrees with sentence-transformers'
    InformationRetrievalEvaluator on the same model within 0.05 points (float noise can swap
    near-tied documents);
  - bad input: qrels naming an unknown document or query, a run file option without --retrieval:
    one-line errors naming the file and line, non-zero exit, no run file written."""
import json
import pathlib
import shutil
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import fresh_dir, run, script_args  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def read_jsonl(path):
    return {j['_id']: j['text'] for j in map(json.loads, path.read_text(encoding='utf-8').splitlines())}


def read_qrels(path):
    qrels = {}
    for line in path.read_text().splitlines()[1:]:
        q, d, s = line.split('\t')
        qrels.setdefault(q, {})[d] = int(s)
    return qrels


def main():
    args = script_args(__doc__, '--angle', '--model', '--data-dir', '--work')
    work = fresh_dir(args.work)
    beir = work / 'snli-test'
    run([sys.executable, ROOT / 'datasets/snli_retrieval.py', '--data', args.data_dir, '--out', beir])
    run_file = work / 'run.trec'
    ours = json.loads(run([args.angle, 'eval', '--model', args.model, '--retrieval', beir, '--run-output', run_file,
                           '--json', '--quiet']).splitlines()[-1])
    failures = []

    import pytrec_eval
    qrels = read_qrels(beir / 'qrels/test.tsv')
    hits = {}
    for line in run_file.read_text().splitlines():
        q, _, d, rank, score, _ = line.split()
        hits.setdefault(q, []).append((int(rank), d, float(score)))
    full = {q: {d: s for _, d, s in h} for q, h in hits.items()}
    top10 = {q: {d: s for _, d, s in sorted(h)[:10]} for q, h in hits.items()}  # our ranks: trec_eval's order
    trec = pytrec_eval.RelevanceEvaluator(qrels, {'ndcg_cut.10', 'recall.100'}).evaluate(full)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {'recip_rank'}).evaluate(top10)
    theirs = {'ndcg_at_10': 100 * sum(m['ndcg_cut_10'] for m in trec.values()) / len(trec),
              'recall_at_100': 100 * sum(m['recall_100'] for m in trec.values()) / len(trec),
              'mrr_at_10': 100 * sum(m['recip_rank'] for m in rr.values()) / len(rr)}
    print(f'angle: {ours}\npytrec_eval on its run: {theirs}')
    if ours['queries'] != len(qrels) or len(trec) != len(qrels) or any(len(h) != 100 for h in hits.values()):
        failures.append(f'queries: ours {ours["queries"]}, judged {len(qrels)}, evaluated {len(trec)}; '
                        'every query needs 100 hits')
    for key, value in theirs.items():
        if abs(ours[key] / 100 - value / 100) > 1e-6:
            failures.append(f'{key}: angle {ours[key]:.8f} vs pytrec_eval {value:.8f}')

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator
    queries, corpus = read_jsonl(beir / 'queries.jsonl'), read_jsonl(beir / 'corpus.jsonl')
    evaluator = InformationRetrievalEvaluator(
        queries, corpus, {q: {d for d, s in j.items() if s > 0} for q, j in qrels.items()}, mrr_at_k=[10],
        ndcg_at_k=[10], accuracy_at_k=[1], precision_recall_at_k=[100], map_at_k=[10], write_csv=False,
        score_functions={'cosine': __import__('sentence_transformers').util.cos_sim})
    st = evaluator(SentenceTransformer(args.model, device='cpu'))
    st = {'ndcg_at_10': 100 * st['cosine_ndcg@10'], 'mrr_at_10': 100 * st['cosine_mrr@10'],
          'recall_at_100': 100 * st['cosine_recall@100']}
    print(f'sentence-transformers InformationRetrievalEvaluator: {st}')
    for key, value in st.items():
        if abs(ours[key] - value) > 0.05:
            failures.append(f'{key}: angle {ours[key]:.4f} vs sentence-transformers {value:.4f} (limit 0.05)')

    def expect_error(name, qrels_text, extra, fragment):
        bad = work / name
        shutil.copytree(beir, bad)
        if qrels_text is not None:
            (bad / 'qrels/test.tsv').write_text('query-id\tcorpus-id\tscore\n' + qrels_text)
        out = work / f'{name}.trec'
        cmd = [args.angle, 'eval', '--model', args.model, '--quiet', *extra(bad, out)]
        proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
        lines = proc.stderr.strip().splitlines()
        ok = proc.returncode != 0 and len(lines) == 1 and fragment in lines[0] and not out.exists()
        print(f'[{"ok" if ok else "FAIL"}] {name}: exit {proc.returncode}, {lines}')
        if not ok:
            failures.append(f'{name}: expected one line with {fragment!r}, got exit {proc.returncode}: {lines}')

    def retrieval(d, out):
        return ['--retrieval', d, '--run-output', out]
    expect_error('unknown-document', 'q1\td1\t1\nq1\tnope\t1\n', retrieval, "qrels/test.tsv:3: corpus-id 'nope' is not in")
    expect_error('unknown-query', 'q0\td1\t1\n', retrieval, "query-id 'q0' is not in")
    expect_error('run-output-without-retrieval', None,
                 lambda d, out: ['--data', f'stsb:{args.data_dir}/STS/STSBenchmark/sts-test.csv', '--run-output', out],
                 '--run-output applies to --retrieval only')
    if failures:
        sys.exit('\n'.join(failures))


if __name__ == '__main__':
    main()
