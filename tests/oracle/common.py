"""Shared helpers of the oracle scripts: reading the STS files the way the C++ side does."""
import argparse
import pathlib
import shutil
import subprocess
import sys


def stsb_pairs(path):
    rows = [line.rstrip('\r').split('\t') for line in pathlib.Path(path).read_text(encoding='utf-8').split('\n') if line]
    return [r[5] for r in rows], [r[6] for r in rows], [float(r[4]) for r in rows]


def sick_pairs(path):
    """SICK pairs (SemEval layout, no header): sentence A, sentence B, relatedness 1-5."""
    rows = [line.rstrip('\r').split('\t') for line in pathlib.Path(path).read_text(encoding='utf-8').split('\n') if line]
    rows = [r for r in rows if r[0] != 'pair_ID']
    return [r[1] for r in rows], [r[2] for r in rows], [float(r[3]) for r in rows]


def default_job_pairs(data_dir):
    """The training pairs of the main job (jobs/default.ini): STS-B train and SICK train, labels
    mapped to [0, 1] by each set's range (label_norm = range: STS-B 0-5, SICK 1-5)."""
    data = pathlib.Path(data_dir)
    a, b, y = stsb_pairs(data / 'STS/STSBenchmark/sts-train.csv')
    sa, sb, sy = sick_pairs(data / 'SICK/semeval2014_task1_noheader/SICK_train.txt')
    return a + sa, b + sb, [v / 5 for v in y] + [(v - 1) / 4 for v in sy]


def all_sentences(data_dir):
    """Every distinct sentence of STS-B train/dev/test and SICK (full release + SemEval splits)."""
    data = pathlib.Path(data_dir)
    seen, out = set(), []
    def add(s):
        if s not in seen:
            seen.add(s)
            out.append(s)
    for split in ('train', 'dev', 'test'):
        a, b, _ = stsb_pairs(data / 'STS/STSBenchmark' / f'sts-{split}.csv')
        for s in a + b:
            add(s)
    sick_files = [data / 'SICK/SICK.txt'] + sorted((data / 'SICK/semeval2014_task1_noheader').glob('*.txt'))
    for f in sick_files:
        for line in f.read_text(encoding='utf-8').splitlines():
            fields = line.rstrip('\r').split('\t')
            if fields[0] == 'pair_ID':
                continue
            add(fields[1])
            add(fields[2])
    return out


def compare_ids(label, ours, expected):
    """Exits at the first text whose ids differ from the reference's, printing both."""
    if len(ours) != len(expected):
        sys.exit(f'{label}: {len(ours)} outputs for {len(expected)} texts')
    for i, (a, b) in enumerate(zip(ours, expected)):
        if a != b:
            sys.exit(f'{label}: first mismatch at text {i}\n  ours: {a[:60]}\n  hf:   {b[:60]}')
    print(f'{label}: {len(ours)} texts, ids identical to HF', flush=True)


def run(cmd, capture_stderr=False):
    """Runs a command, echoing it; exits with its output on failure. Returns its stdout (its stderr
    with capture_stderr)."""
    print('+', ' '.join(map(str, cmd)), flush=True)
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f'command failed ({proc.returncode}):\n{proc.stderr}')
    return proc.stderr if capture_stderr else proc.stdout


def script_args(doc, *flags):
    """The command line of a test script: every flag required, the docstring as help."""
    parser = argparse.ArgumentParser(description=doc)
    for flag in flags:
        parser.add_argument(flag, required=True)
    return parser.parse_args()


def fresh_dir(path):
    """An empty directory at `path` (what an earlier run left is removed)."""
    path = pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
