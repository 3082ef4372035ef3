#!/usr/bin/env python3
"""`angle train` and `angle export` end to end on the real model (a few steps, short texts):
  - metrics.jsonl has a line per logged step with loss, each term, lr, grad_norm, pairs_per_s;
  - the same seed gives the same losses twice (dropout on);
  - the lr follows linear warm-up then decay;
  - the step profile: each line's phases (seconds per step) add up to the line's wall time (from
    its pairs/s), and eval.json's run profile covers the run; the
    achieved model FLOP/s is positive and below at::mm's peak on the same shapes;
  - with a test set, eval.json and the last line give the base model's test Spearman beside the
    trained one's, each equal to `angle eval` of that model directory;
  - the exported directory loads in sentence-transformers and embeds within 1e-5 cosine
    distance of `angle embed` on the checkpoint;
  - every bad input ends with one error line naming the key/file/step and a non-zero exit."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import Expectations  # noqa: E402
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'oracle'))
from common import fresh_dir, run, script_args  # noqa: E402


def metrics(out):
    return [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]


PHASES = {'data', 'batch', 'forward', 'loss', 'backward', 'reduce', 'optimizer', 'other', 'eval', 'checkpoint'}


def check_profile(out, lines, failures):
    """Each metrics line (one step each here) splits the step's wall time into phases; the window's
    wall time is its examples over its pairs/s (8 pairs per step)."""
    for m in lines:
        if set(m.get('phase_s', {})) != PHASES or set(m.get('phase_cpu_s', {})) != PHASES:
            failures.append(f'step {m["step"]}: phases {sorted(m.get("phase_s", {}))}, expected {sorted(PHASES)}')
            return
        wall = 8 / m['pairs_per_s']
        covered = sum(m['phase_s'].values())
        if abs(covered - wall) > 0.05 * wall + 0.01:
            failures.append(f'step {m["step"]}: phases add up to {covered:.4f} s, the step took {wall:.4f} s')
        if m['phase_s']['forward'] <= 0 or m['phase_s']['backward'] <= 0 or m['phase_s']['optimizer'] <= 0:
            failures.append(f'step {m["step"]}: a forward, backward or optimizer phase of 0 s: {m["phase_s"]}')
    profile = json.loads((out / 'eval.json').read_text())['profile']
    shares = sum(p['share'] for p in profile['phases'].values())
    if profile['steps'] != len(lines) or abs(shares - 1) > 1e-9:
        failures.append(f'eval.json profile: {profile["steps"]} steps, shares add up to {shares}')
    achieved, peak = profile['achieved_flops_per_s'], profile['mm_peak_flops_per_s']
    print(f'profile: {profile["step_s"]:.3f} s/step; forward {profile["phases"]["forward"]["share"]:.0%}, backward '
          f'{profile["phases"]["backward"]["share"]:.0%}; achieved {achieved / 1e9:.2f} GFLOP/s, at::mm {peak / 1e9:.2f}')
    if not 0 < achieved < 1.2 * peak:
        failures.append(f'achieved {achieved} FLOP/s against a peak of {peak}: the FLOP count or the peak is wrong')


def check_base_and_trained(angle, base, out, test_specs, failures):
    """eval.json scores every set of data.test for base and final as `angle eval` does; "test" is the
    first set's."""
    result = json.loads((out / 'eval.json').read_text())
    for key, model in (('base', base), ('final', out / 'final')):
        if result[key]['test'] != result[key]['tests'][test_specs[0]] or sorted(result[key]['tests']) != sorted(test_specs):
            failures.append(f'eval.json {key}: "test" is not the first set, or "tests" lacks a set: {result[key]}')
        for spec in test_specs:
            theirs = json.loads(run([angle, 'eval', '--model', model, '--data', spec, '--max-length', 32,
                                     '--json']).splitlines()[0])['spearman']
            ours = result[key]['tests'][spec]['spearman']
            print(f'{spec} Spearman {key}: eval.json {ours:.4f}, angle eval {theirs:.4f}')
            if abs(ours - theirs) > 1e-6:
                failures.append(f'eval.json {key} {spec} Spearman {ours} != angle eval {theirs}')
    if result['base']['test']['spearman'] == result['final']['test']['spearman']:
        failures.append('the base and trained test scores are equal: one of them is not the model it names')


def main():
    args = script_args(__doc__, '--angle', '--model', '--data-dir', '--work')
    angle, work, data = pathlib.Path(args.angle), fresh_dir(args.work), pathlib.Path(args.data_dir)
    expect = Expectations(angle)
    failures = expect.failures
    train_file = data / 'STS/STSBenchmark/sts-train.csv'
    job = work / 'tiny.ini'
    job.write_text(f"""[model]
path = {args.model}
pooling = mean
max_length = 32
[data]
train = stsb:{train_file}
[loss]
cosine_w = 1
ibn_w = 1
angle_w = 0.02
[optim]
lr = 5e-5
warmup_steps = 2
[train]
global_batch = 8
max_steps = 4
log_every = 1
seed = 7
""")
    common = ['--train.threads', 2]
    runs = []
    for i in range(2):
        out = work / f'run{i}'
        run([angle, 'train', '--job', job, '--run.output_dir', out, *common])
        runs.append(metrics(out))
    first = runs[0]
    required = {'step', 'loss', 'cosine', 'ibn', 'angle', 'lr', 'grad_norm', 'pairs_per_s', 'rss_bytes'}
    if len(first) != 4 or not all(required <= set(m) for m in first):
        failures.append(f'metrics.jsonl: expected 4 lines with {sorted(required)}, got {first}')
    if [m['loss'] for m in runs[0]] != [m['loss'] for m in runs[1]]:
        failures.append(f'same seed, different losses: {[m["loss"] for m in runs[0]]} vs {[m["loss"] for m in runs[1]]}')
    expected_lr = [0.0, 2.5e-5, 5e-5, 2.5e-5]  # warm-up over 2 steps, then decay to 0 at step 4
    if any(abs(m['lr'] - e) > 1e-12 for m, e in zip(first, expected_lr)):
        failures.append(f'lr schedule {[m["lr"] for m in first]} != {expected_lr}')
    print('losses', [round(m['loss'], 6) for m in first], 'lr', [m['lr'] for m in first])
    check_profile(work / 'run0', first, failures)

    # bf16 autocast: same first-step loss as fp32 within bf16 precision (dropout off for both).
    first_losses = {}
    test_file = work / 'test60.csv'
    test_file.write_text(''.join((data / 'STS/STSBenchmark/sts-test.csv').read_text(encoding='utf-8').splitlines(True)[:60]),
                         encoding='utf-8')
    sick_file = work / 'sick60.txt'
    sick_file.write_text(''.join((data / 'SICK/semeval2014_task1_noheader/SICK_test_annotated.txt')
                                 .read_text(encoding='utf-8').splitlines(True)[:61]), encoding='utf-8')
    test_specs = [f'stsb:{test_file}', f'sick:{sick_file}']  # data.test takes a list
    for dtype in ('fp32', 'bf16'):
        out = work / f'dtype-{dtype}'
        run([angle, 'train', '--job', job, '--run.output_dir', out, '--model.dtype', dtype, '--model.dropout', 0,
             '--train.max_steps', 1, *common] +
            # fp32 also trains a second step (step 1's lr is 0 in warm-up) and scores base and trained on a test set
            (['--train.max_steps', 2, '--data.test', ','.join(test_specs)] if dtype == 'fp32' else []))
        first_losses[dtype] = metrics(out)[0]['loss']
    check_base_and_trained(angle, args.model, work / 'dtype-fp32', test_specs, failures)
    print('first-step loss fp32 / bf16:', first_losses)
    if abs(first_losses['bf16'] - first_losses['fp32']) > 0.03 * abs(first_losses['fp32']):
        failures.append(f'bf16 autocast loss {first_losses["bf16"]} far from fp32 {first_losses["fp32"]}')
    if first_losses['bf16'] == first_losses['fp32']:
        failures.append('bf16 autocast gave exactly the fp32 loss: autocast is not active')

    exported = work / 'exported'
    run([angle, 'export', '--checkpoint', work / 'run0/final', '--output', exported])
    texts = work / 'texts.txt'
    sentences = [l.split('\t')[5] for l in train_file.read_text(encoding='utf-8').splitlines()[:40]]
    texts.write_text('\n'.join(sentences) + '\n', encoding='utf-8')
    run([angle, 'embed', '--model', work / 'run0/final', '--input', texts, '--output', work / 'ours.npy', '--quiet'])
    import numpy as np
    from sentence_transformers import SentenceTransformer
    ours = np.load(work / 'ours.npy')
    theirs = SentenceTransformer(str(exported), device='cpu').encode(sentences, convert_to_numpy=True)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    print(f'exported model in sentence-transformers: max cosine distance {float((1 - cos).max()):.2e}')
    if float((1 - cos).max()) > 1e-5:
        failures.append(f'exported model differs from angle embed: {float((1 - cos).max())}')
    base = SentenceTransformer(args.model, device='cpu').encode(sentences[:4], convert_to_numpy=True)
    if np.allclose(base, theirs[:4], atol=1e-4):
        failures.append('the exported model equals the base model: training changed nothing')

    # A job's text prompt travels with its model: final/ carries it (angle_embedding.json, and as
    # sentence-transformers' default prompt when it is a prefix), so that `angle embed` and
    # sentence-transformers both apply it with no flag, and `angle eval` reports it.
    prompted = work / 'prompted'
    run([angle, 'train', '--job', job, '--run.output_dir', prompted, '--train.max_steps', 2, '--data.text_prompt',
         'query: {text}', *common])
    final = prompted / 'final'
    carried = json.loads((final / 'angle_embedding.json').read_text()).get('prompt')
    default = json.loads((final / 'config_sentence_transformers.json').read_text())
    run([angle, 'embed', '--model', final, '--input', texts, '--output', work / 'prompted.npy', '--quiet'])
    ours = np.load(work / 'prompted.npy')
    theirs = SentenceTransformer(str(final), device='cpu').encode(sentences, convert_to_numpy=True)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    scored = json.loads(run([angle, 'eval', '--model', final, '--data', f'stsb:{test_file}', '--max-length', 32,
                             '--json', '--quiet']).splitlines()[0])
    print(f'prompted job: final/ carries {carried!r} (sentence-transformers: {default["prompts"]}); its embeddings '
          f'with no flag, ours vs sentence-transformers: max cosine distance {float((1 - cos).max()):.2e}; angle eval '
          f'reports {scored["prompt"]!r}')
    if carried != 'query: {text}' or default.get('default_prompt_name') != 'text' or \
            default['prompts'].get('text') != 'query: ' or float((1 - cos).max()) > 1e-5 or scored['prompt'] != carried:
        failures.append('a prompted job\'s final/ does not carry its prompt to angle embed, eval and sentence-transformers')

    # --- bad input ---
    def bad_job(name, text):
        path = work / name
        path.write_text(text)
        return path
    base_job = job.read_text()
    unknown = bad_job('unknown.ini', base_job.replace('[optim]\n', '[optim]\nlearning_rate = 1\n'))
    expect.failure('unknown job key', ['train', '--job', unknown], ['unknown.ini:12', 'optim.learning_rate'])
    expect.failure('unknown key on the command line', ['train', '--job', job, '--loss.foo', 1],
                 ['command line', 'loss.foo'])
    wrong = bad_job('wrong-type.ini', base_job.replace('lr = 5e-5', 'lr = fast'))
    expect.failure('wrong value type', ['train', '--job', wrong], ['wrong-type.ini', 'optim.lr', 'fast'])
    expect.failure('missing data file', ['train', '--job', job, '--data.train', f'stsb:{work}/none.csv'],
                 ['none.csv', 'cannot open'])
    labels = work / 'labels.csv'
    labels.write_text('g\tf\t2012\t1\t4.0\tA dog runs.\tA dog is running.\ng\tf\t2012\t2\thigh\tA cat.\tA kitten.\n')
    expect.failure('label not a number', ['train', '--job', job, '--data.train', f'stsb:{labels}'],
                 ['labels.csv:2', "'high' is not a number"])
    empty = work / 'empty.csv'
    empty.write_text('')
    expect.failure('empty training set', ['train', '--job', job, '--data.train', f'stsb:{empty}'],
                 ['empty.csv', 'empty'])
    dups = work / 'dups.csv'
    dups.write_text(''.join(f'g\tf\t2012\t{i}\t{i % 5}.0\tSame text {i}.\tSame text {i}.\n' for i in range(20)))
    expect.failure('batch empty after duplicate filtering', ['train', '--job', job, '--data.train', f'stsb:{dups}'],
                 ['step 1', 'duplicate'])
    expect.failure('NaN loss', ['train', '--job', job, '--optim.lr', '1e30', '--optim.warmup_steps', 0,
                                     '--optim.max_grad_norm', 0, '--run.output_dir', work / 'nan'],
                 ['step ', 'loss is', 'not finite'])
    expect.failure('batch not divisible by accumulation', ['train', '--job', job, '--train.grad_accum', 3],
                 ['global_batch 8', 'grad_accum 3'])
    expect.exit_status()
    print('train/export checks passed')


if __name__ == '__main__':
    main()
