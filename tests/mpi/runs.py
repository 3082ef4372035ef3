"""Helpers of the multi-rank test scripts: run `angle` under mpirun, read what a run wrote."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def short_job(data_dir):
    """`angle train` of the default job on STS-B train, without dev/test, logging every step, no dropout."""
    return ['train', '--job', ROOT / 'jobs/stsb.ini', '--data.train', f'stsb:{data_dir}/STS/STSBenchmark/sts-train.csv',
            '--data.dev', '', '--data.test', '', '--train.log_every', 1, '--model.dropout', 0]


def mpirun(n, angle, args, check=True, wrap=()):
    """`wrap`: a command each rank runs `angle` under (e.g. /usr/bin/time)."""
    cmd = ['mpirun', '--oversubscribe', '-np', str(n), *wrap, str(angle)] + [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if check and proc.returncode != 0:
        sys.exit(f'failed: {" ".join(cmd)}\n{proc.stderr[-2000:]}')
    return proc


def mpirun_peak_rss(n, angle, args, rss_prefix):
    """mpirun with every rank under /usr/bin/time writing its peak RSS to its own file
    (`rss_prefix`.RANK: the ranks' stderr lines can interleave). Returns (proc, [bytes per rank])."""
    for old in pathlib.Path(rss_prefix).parent.glob(pathlib.Path(rss_prefix).name + '.*'):
        old.unlink()
    script = 'exec /usr/bin/time -f "%M" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"'
    proc = mpirun(n, angle, args, wrap=['sh', '-c', script, str(rss_prefix)])
    files = [pathlib.Path(f'{rss_prefix}.{r}') for r in range(n)]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f'/usr/bin/time wrote no peak RSS to {missing}')
    return proc, [1024 * int(f.read_text().split()[-1]) for f in files]


def metrics(out):
    """The loss records of out/metrics.jsonl. Only complete lines count: a test that polls a running
    job can read the file while a record is half written."""
    text = (pathlib.Path(out) / 'metrics.jsonl').read_text()
    complete = text[:text.rfind('\n') + 1]
    return [json.loads(l) for l in complete.splitlines() if '"loss"' in l]


def losses(out):
    return [m['loss'] for m in metrics(out)]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def final_params(out):
    from safetensors.numpy import load_file
    return load_file(str(pathlib.Path(out) / 'final/model.safetensors'))


def param_distance(a, b):
    """||a - b|| / ||b|| over all tensors. Relative to the norm of all parameters: the attention
    key biases have an exactly zero true gradient (softmax ignores a per-row shift), so Adam turns
    their rounding noise into +-lr steps; per-tensor ratios of those are meaningless."""
    import numpy as np
    delta = sum(float(np.sum((a[k].astype(np.float64) - b[k].astype(np.float64)) ** 2)) for k in b)
    norm = sum(float(np.sum(b[k].astype(np.float64) ** 2)) for k in b)
    return (delta / norm) ** 0.5


class TrainRuns:
    """`angle train` jobs under mpirun, each into WORK/LABEL, compared with `same`; failures collected."""

    def __init__(self, angle, work, failures):
        self.angle, self.work, self.failures = angle, pathlib.Path(work), failures

    def run(self, label, n, job):
        out = self.work / label
        mpirun(n, self.angle, job + ['--run.output_dir', out])
        return out

    def same(self, label, out, reference, tolerance=1e-5):
        """Per-step losses and final parameters of `out` within `tolerance` of `reference`'s."""
        worst = max(rel(a, b) for a, b in zip(losses(out), losses(reference)))
        distance = param_distance(final_params(out), final_params(reference))
        ok = worst <= tolerance and distance <= tolerance and len(losses(out)) == len(losses(reference))
        print(f'[{"ok" if ok else "FAIL"}] {label}: losses {worst:.1e}, parameters {distance:.1e}')
        if not ok:
            self.failures.append(f'{label}: losses {worst:.1e}, parameters {distance:.1e}')
