#!/usr/bin/env python3
"""Formats B and C, per-example weights and gradient caching in `angle train` (the tiny cased BERT,
dropout 0, stage 2 unless said):
  - formats B and C at N = 1, 2, 4 (and stage 3 at N = 4): per-step losses within 1e-5 relative
    and final parameters within 1e-5 of N = 1, on data whose duplicates the filter drops unevenly
    across ranks (checked: some step dropped examples);
  - prompts: `angle prepare --query-prompt/--doc-prompt` stores the ids of HF's tokenizer on the
    prompted text; a job asking for another prompt than the file's is an error;
  - weights (data.weight_mode = confidence): N = 2 equals N = 1; confidences all 1 equal no
    weights; real confidences change training; a gold STS-B set mixed with an LLM-labelled one
    (data.label_norm = range, data.source_weights) trains alike at N = 1 and 2;
  - gradient caching (train.chunk 2): equal to no chunking at N = 1 and 2 for every stage, with
    train.grad_accum 2 too;
  - bad input: one error line before any work.
The fixtures are made here: triplets and pairs from SNLI dev (each example twice, so that batches
hold duplicates), and "LLM-annotated" pairs whose labels (the STS-B score / 5, rounded) and
confidences (a fixed pattern) this script makes up: no model produced them."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402
from runs import TrainRuns, final_params, metrics, mpirun, param_distance, short_job  # noqa: E402


def snli_triplets(snli_dir, count):
    s1 = (snli_dir / 's1.dev').read_text().splitlines()
    s2 = (snli_dir / 's2.dev').read_text().splitlines()
    labels = (snli_dir / 'labels.dev').read_text().splitlines()
    by_premise = {}
    for p, h, l in zip(s1, s2, labels):
        if l != 'neutral':
            by_premise.setdefault(p, {}).setdefault(l, h)
    triplets = [(p, d['entailment'], d['contradiction']) for p, d in by_premise.items() if len(d) == 2]
    return triplets[:count]


def write_jsonl(path, rows):
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    return path


def main():
    args, angle, work, expect = setup(__doc__, '--tiny', '--data-dir')
    failures = expect.failures
    data = pathlib.Path(args.data_dir)

    def prepare(name, rows, columns, *extra):
        source = write_jsonl(work / f'{name}.jsonl', rows)
        out = work / f'{name}.h5'
        mpirun(1, angle, ['prepare', '--format', 'jsonl', '--input', source, '--columns', columns, '--model', args.tiny,
                          '--output', out, '--max-length', 64, *extra])
        return out

    triplets = snli_triplets(data / 'NLI/SNLI_senteval', 48) * 2
    c_file = prepare('dup-c', [{'q': q, 'p': p, 'n': n} for q, p, n in triplets], 'query=q,positive=p,negative=n')
    b_file = prepare('dup-b', [{'q': q, 'p': p} for q, p, _ in triplets], 'query=q,positive=p')
    base = short_job(data) + ['--model.path', args.tiny, '--model.pooling', 'cls', '--model.max_length', 64,
                              '--train.global_batch', 16, '--train.max_steps', 4]

    runs = TrainRuns(angle, work, failures)
    run, same = runs.run, runs.same

    # Formats B and C across world sizes, with uneven rows.
    for fmt, path in (('C', c_file), ('B', b_file)):
        job = base + ['--data.train', path, '--data.format', fmt]
        reference = run(f'{fmt}-n1', 1, job)
        dropped = sum(m['dropped_duplicates'] for m in metrics(reference))
        terms = sorted(k for k in metrics(reference)[0] if k in ('ibn', 'cln', 'angle', 'cosine', 'contrastive'))
        print(f'[{"ok" if dropped else "FAIL"}] format {fmt}: {dropped} duplicates dropped over 4 steps; terms {terms}')
        if not dropped:
            failures.append(f'format {fmt}: no duplicate dropped, the uneven case is not exercised')
        expected_terms = ['angle', 'cln', 'cosine', 'ibn'] if fmt == 'C' else ['contrastive']
        if terms != expected_terms:
            failures.append(f'format {fmt}: loss terms {terms}, expected {expected_terms}')
        for n, stage in ((2, 2), (4, 2), (4, 3)):
            same(f'format {fmt} N={n} stage {stage} vs N=1', run(f'{fmt}-n{n}-s{stage}', n, job + ['--shard.stage', stage]),
                 reference)

    # Prompts: the stored ids are HF's tokenizer on the prompted texts.
    from transformers import AutoTokenizer
    import h5py
    hf = AutoTokenizer.from_pretrained(args.tiny)
    prompted = prepare('prompted-c', [{'q': q, 'p': p, 'n': n} for q, p, n in triplets[:8]],
                       'query=q,positive=p,negative=n', '--query-prompt', 'query: {text}', '--doc-prompt',
                       'passage: {text} .')
    with h5py.File(prompted) as f:
        ok = True
        for column, template, texts in (('query', 'query: {text}', [t[0] for t in triplets[:8]]),
                                        ('negative', 'passage: {text} .', [t[2] for t in triplets[:8]])):
            ids, offsets = f[f'columns/{column}/ids'][:], f[f'columns/{column}/offsets'][:]
            for i, text in enumerate(texts):
                want = hf(template.replace('{text}', text), truncation=True, max_length=64)['input_ids']
                ok &= list(ids[offsets[i]:offsets[i + 1]]) == want
    print(f'[{"ok" if ok else "FAIL"}] prompts: prepared ids equal HF tokenizer(prompt.replace("{{text}}", text))')
    if not ok:
        failures.append('prompted ids differ from the HF tokenizer')
    run('prompted-ok', 1, base + ['--data.train', prompted, '--data.query_prompt', 'query: {text}',
                                  '--train.max_steps', 1, '--train.global_batch', 8])

    # Weights. The "LLM" labels and confidences are made up here (see the module doc).
    stsb = [l.split('\t') for l in (data / 'STS/STSBenchmark/sts-train.csv').read_text().splitlines()[:160]]
    llm_rows = [{'a': r[5], 'b': r[6], 'score': round(float(r[4]) / 5, 1), 'conf': round(0.1 + 0.9 * ((i * 7) % 10) / 9, 3)}
                for i, r in enumerate(stsb)]
    llm = prepare('llm', llm_rows, 'text1=a,text2=b,label=score,weight=conf', '--label-range', '0:1',
                  '--llm-model', 'made-up-by-check_formats.py')
    ones = prepare('llm-ones', [dict(r, conf=1.0) for r in llm_rows], 'text1=a,text2=b,label=score,weight=conf',
                   '--label-range', '0:1')
    weighted = base + ['--data.train', llm, '--data.weight_mode', 'confidence']
    reference = run('weights-n1', 1, weighted)
    same('weights N=2 vs N=1', run('weights-n2', 2, weighted), reference)
    # Weights of 1 take another summation path (a weighted mean) than none: rounding-level
    # differences that 4 Adam steps grow to 4e-7..1.4e-6 (it varies with the tiny model's vocabulary,
    # whose order HF's WordPiece trainer does not fix); real confidences move the parameters 2e-4.
    same('confidences all 1 vs no weights', run('ones-confidence', 1, base + ['--data.train', ones, '--data.weight_mode',
                                                                             'confidence']),
         run('ones-none', 1, base + ['--data.train', ones]), 1e-5)
    unweighted = run('weights-none', 1, base + ['--data.train', llm])
    effect = param_distance(final_params(unweighted), final_params(reference))
    print(f'[{"ok" if effect > 1e-4 else "FAIL"}] confidences change training: parameters differ by {effect:.1e}')
    if effect <= 1e-4:
        failures.append(f'weight_mode = confidence has no effect ({effect:.1e})')
    mixed = base + ['--data.train', f'stsb:{data}/STS/STSBenchmark/sts-train.csv,{llm}', '--data.label_norm', 'range',
                    '--data.mix_weights', '1,1', '--data.source_weights', '1,0.5', '--data.weight_mode', 'confidence']
    same('gold + LLM sets mixed, N=2 vs N=1', run('mixed-n2', 2, mixed), run('mixed-n1', 1, mixed))

    # Gradient caching: chunks of 2 of the 8 (N = 2) or 16 (N = 1) examples per rank.
    cached = base + ['--data.train', c_file]
    for n in (1, 2):
        for stage in (1, 2, 3):
            job = cached + ['--shard.stage', stage]
            same(f'chunk 2 vs none, N={n} stage {stage}', run(f'chunk-n{n}-s{stage}', n, job + ['--train.chunk', 2]),
                 run(f'nochunk-n{n}-s{stage}', n, job))
    accum = cached + ['--train.grad_accum', 2]
    same('chunk 2 vs none, N=2 grad_accum 2', run('chunk-accum', 2, accum + ['--train.chunk', 2]),
         run('nochunk-accum', 2, accum))

    # Bad input.
    bad = base + ['--run.output_dir', work / 'bad']
    expect.failure('format the data does not have', bad + ['--data.train', c_file, '--data.format', 'B'],
                   ['dup-c.h5', 'format C', 'data.format = B'])
    expect.failure('prompt without {text}', bad + ['--data.train', c_file, '--data.query_prompt', 'query:'],
                   ['data.query_prompt', 'must contain {text}'])
    expect.failure('text prompt on format C', bad + ['--data.train', c_file, '--data.text_prompt', 'x {text}'],
                   ['text_prompt applies to format A'])
    expect.failure('prompt the file was not prepared with', bad + ['--data.train', prompted, '--data.query_prompt',
                                                                   'q: {text}'], ['prompted-c.h5', "'query'", 'q: {text}'])
    negative = write_jsonl(work / 'negative.jsonl', [{'a': 'x y', 'b': 'y z', 's': 1, 'w': 0.5},
                                                     {'a': 'p q', 'b': 'q r', 's': 0, 'w': -2}])
    expect.failure('negative weight', ['prepare', '--format', 'jsonl', '--input', negative, '--columns',
                                       'text1=a,text2=b,label=s,weight=w', '--model', args.tiny, '--output',
                                       work / 'negative.h5'], ['negative.jsonl:2', 'weight -2 is negative'],
                   output=work / 'negative.h5')
    nonfinite = write_jsonl(work / 'nan.jsonl', [{'a': 'x y', 'b': 'y z', 's': 1, 'w': 'nan'}])
    expect.failure('non-finite weight', ['prepare', '--format', 'jsonl', '--input', nonfinite, '--columns',
                                         'text1=a,text2=b,label=s,weight=w', '--model', args.tiny, '--output',
                                         work / 'nan.h5'], ['nan.jsonl:1', "weight 'nan'"], output=work / 'nan.h5')
    expect.failure('chunk not dividing the per-rank batch', bad + ['--data.train', c_file, '--train.chunk', 3],
                   ['train.chunk 3', 'must divide', '16 examples'])
    expect.failure('chunk larger than the per-rank batch', bad + ['--data.train', c_file, '--train.chunk', 32],
                   ['train.chunk 32', 'must divide'])
    expect.failure('confidence weights on data without them', bad + ['--data.train', c_file, '--data.weight_mode',
                                                                     'confidence'], ['no training set has per-example weights'])
    expect.failure('label scales that differ', bad + ['--data.train', f'stsb:{data}/STS/STSBenchmark/sts-train.csv,{llm}'],
                   ['llm.h5', 'scale 0:1', '0:5', 'data.label_norm = range'])
    expect.failure('source weights of the wrong count', bad + ['--data.train', llm, '--data.source_weights', '1,2'],
                   ['data.source_weights has 2 entries for 1'])
    expect.failure('unknown weight mode', bad + ['--data.train', llm, '--data.weight_mode', 'llm'],
                   ["data.weight_mode 'llm'"])
    stsb_spec = f'stsb:{data}/STS/STSBenchmark/sts-train.csv'
    expect.failure('malformed label range', bad + ['--data.train', llm, '--data.label_norm', 'range',
                                                   '--data.label_ranges', '0-1'],
                   ['data.label_ranges entry 1', "label range '0-1'", 'MIN:MAX'])
    expect.failure('label ranges of the wrong count', bad + ['--data.train', llm, '--data.label_ranges', '0:1,0:5'],
                   ['data.label_ranges has 2 entries for 1'])
    expect.failure('label range that does not cover the labels', bad + ['--data.train', stsb_spec, '--data.label_norm',
                                                                        'range', '--data.label_ranges', '0:1'],
                   ['data.label_ranges entry 1', 'labels span [0, 5]', 'outside the label range 0:1'])
    unranged = prepare('unranged', llm_rows[:40], 'text1=a,text2=b,label=score')
    expect.failure('normalising a set without a known range', bad + ['--data.train', unranged, '--data.label_norm',
                                                                     'range'], ['unranged.h5', 'label range is unknown'])
    expect.failure('unknown range next to a known one', bad + ['--data.train', f'{stsb_spec},{unranged}'],
                   ['unranged.h5: label range unknown', 'sts-train.csv (0:5)', 'data.label_norm = range'])
    expect.failure('unknown label_norm', bad + ['--data.train', llm, '--data.label_norm', 'minmax'],
                   ["data.label_norm 'minmax'"])
    expect.failure('label ranges on format C', bad + ['--data.train', c_file, '--data.label_ranges', '0:1'],
                   ['format C data has no labels'])
    expect.failure('range normalisation with legacy-int labels', bad + ['--data.train', llm, '--data.label_norm', 'range',
                                                                        '--loss.label_mode', 'legacy-int'],
                   ['data.label_norm = range', 'legacy-int'])
    expect.failure('negative source weight', bad + ['--data.train', llm, '--data.source_weights', '-1'],
                   ['data.source_weights', "'-1' is not a finite number >= 0"])
    import shutil
    tampered = work / 'tampered.h5'
    shutil.copy(llm, tampered)
    with h5py.File(tampered, 'r+') as f:
        f['weights'][3] = float('inf')
    expect.failure('non-finite weight in a prepared file', bad + ['--data.train', tampered],
                   ['tampered.h5', 'weights[3] = inf', 'finite and >= 0'])
    expect.exit_status()
    print('format, weight and gradient-caching checks passed')


if __name__ == '__main__':
    main()
