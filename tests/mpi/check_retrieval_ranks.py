#!/usr/bin/env python3
"""`angle eval --retrieval` across ranks: the SNLI test retrieval set (datasets/snli_retrieval.py)
on the tiny model, on 1 process and under mpirun with 2 and 3 ranks (each rank embeds its share of
queries and documents and searches its documents; the top 100 merged). The run files must be
byte-identical and the metrics equal: a text is embedded in the same batch at any world size, and
ties go to the lower document index. A bad qrels file under mpirun ends the job with the rank's
message and no run file."""
import json
import pathlib
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from runs import ROOT, mpirun  # noqa: E402

sys.path.insert(0, str(ROOT / 'tests/oracle'))
from common import fresh_dir, run, script_args  # noqa: E402


def main():
    args = script_args(__doc__, '--angle', '--tiny', '--data-dir', '--work')
    work = fresh_dir(args.work)
    beir = work / 'snli-test'
    run([sys.executable, ROOT / 'datasets/snli_retrieval.py', '--data', args.data_dir, '--out', beir])

    def evaluate(n):
        out = work / f'run-{n}.trec'
        cmd = ['eval', '--model', args.tiny, '--retrieval', beir, '--run-output', out, '--json', '--quiet']
        if n == 1:
            stdout = subprocess.run([args.angle, *map(str, cmd)], capture_output=True, text=True, check=True).stdout
        else:
            stdout = mpirun(n, args.angle, cmd).stdout
        return json.loads(stdout.splitlines()[-1]), out.read_bytes()

    failures = []
    reference, reference_run = evaluate(1)
    print(f'1 rank: {reference}')
    for n in (2, 3):
        scores, hits = evaluate(n)
        same = hits == reference_run and all(scores[k] == reference[k] for k in ('ndcg_at_10', 'mrr_at_10', 'recall_at_100'))
        print(f'[{"ok" if same else "FAIL"}] {n} ranks: {scores}; run file identical: {hits == reference_run}')
        if not same or scores['ranks'] != n:
            failures.append(f'{n} ranks differ from 1')
    bad = work / 'bad-qrels'
    shutil.copytree(beir, bad)
    (bad / 'qrels/test.tsv').write_text('query-id\tcorpus-id\tscore\nq1\tnope\t1\n')
    start = time.time()
    proc = mpirun(2, args.angle, ['eval', '--model', args.tiny, '--retrieval', bad, '--run-output', work / 'bad.trec',
                                  '--quiet'], check=False)
    named = "rank 0: " in proc.stderr or "rank 1: " in proc.stderr
    ok = proc.returncode != 0 and named and "corpus-id 'nope'" in proc.stderr and not (work / 'bad.trec').exists()
    print(f'[{"ok" if ok else "FAIL"}] bad qrels at 2 ranks: exit {proc.returncode} after {time.time() - start:.1f} s, '
          f'{[l for l in proc.stderr.splitlines() if "error" in l][:2]}')
    if not ok:
        failures.append(f'bad qrels at 2 ranks: exit {proc.returncode}, stderr {proc.stderr[-500:]}')
    if failures:
        sys.exit('\n'.join(failures))


if __name__ == '__main__':
    main()
