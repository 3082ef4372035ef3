#!/usr/bin/env python3
"""`angle prepare` on the real files and `angle eval --suite sts`:
  - exact example counts (STS-B 5749/1500/1379, SICK SemEval 4500/500/4927, SICK.txt 9840, SNLI
    dev/test pairs and premise-grouped triplets, the expected SNLI counts derived here from the raw
    files independently);
  - round trip: ids read back with h5py equal HF tokenizers' ids for every STS-B row;
  - attributes: schema version, tokenizer, max length, source checksums (= sha256 of the inputs),
    LLM annotator and per-example weights;
  - training from the .h5 gives the same losses as from the raw file;
  - the suite table on SentEval-layout fixtures, STS12 equal to `angle eval` of the same pairs;
  - every bad input: one error line naming file and line/row, non-zero exit, no output file."""
import hashlib
import json
import pathlib
import re
import shutil
import sys
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'oracle'))
from common import fresh_dir, run, script_args, stsb_pairs  # noqa: E402
from expect import Expectations  # noqa: E402


def snli_expected(directory, split):
    s1 = (directory / f's1.{split}').read_text(encoding='utf-8').splitlines()
    s2 = (directory / f's2.{split}').read_text(encoding='utf-8').splitlines()
    labels = (directory / f'labels.{split}').read_text(encoding='utf-8').splitlines()
    pairs = sum(1 for l in labels if l != 'neutral')
    groups = defaultdict(lambda: [0, 0])
    for p, _, l in zip(s1, s2, labels):
        if l != 'neutral':
            groups[p][l == 'contradiction'] += 1
    return pairs, sum(min(e, c) for e, c in groups.values())


def main():
    # --other-model: a model with a different tokenizer
    args = script_args(__doc__, '--angle', '--model', '--other-model', '--data-dir', '--snli-dir', '--work')
    angle, data, work = pathlib.Path(args.angle), pathlib.Path(args.data_dir), fresh_dir(args.work)
    expect = Expectations(angle)
    failures = expect.failures

    def prepare(fmt, inp, out, *extra, model=args.model):
        text = run([angle, 'prepare', '--format', fmt, '--input', inp, '--model', model, '--output', out, *extra])
        print(text.strip())
        return int(re.search(r'prepared (\d+) examples', text).group(1))

    sts = data / 'STS/STSBenchmark'
    sick = data / 'SICK/semeval2014_task1_noheader'
    counts = {
        'stsb train': (prepare('stsb', sts / 'sts-train.csv', work / 'stsb-train.h5'), 5749),
        'stsb dev': (prepare('stsb', sts / 'sts-dev.csv', work / 'stsb-dev.h5'), 1500),
        'stsb test': (prepare('stsb', sts / 'sts-test.csv', work / 'stsb-test.h5'), 1379),
        'sick train': (prepare('sick', sick / 'SICK_train.txt', work / 'sick-train.h5'), 4500),
        'sick trial': (prepare('sick', sick / 'SICK_trial.txt', work / 'sick-trial.h5'), 500),
        'sick test': (prepare('sick', sick / 'SICK_test_annotated.txt', work / 'sick-test.h5'), 4927),
        'SICK.txt': (prepare('sick', data / 'SICK/SICK.txt', work / 'sick-all.h5'), 9840),
    }
    snli = pathlib.Path(args.snli_dir)
    for split in ('dev', 'test'):
        pairs, triplets = snli_expected(snli, split)
        counts[f'snli {split} pairs'] = (prepare('snli-senteval', snli, work / f'snli-{split}.h5', '--split', split), pairs)
        counts[f'snli {split} triplets'] = (prepare('snli-senteval', snli, work / f'snli-{split}-c.h5', '--split', split,
                                                    '--triplets'), triplets)
    for name, (got, want) in counts.items():
        if got != want:
            failures.append(f'{name}: {got} examples, expected {want}')

    import h5py
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(args.model)
    for split in ('train', 'dev', 'test'):
        a, b, labels = stsb_pairs(sts / f'sts-{split}.csv')
        with h5py.File(work / f'stsb-{split}.h5', 'r') as f:
            for column, texts in (('text1', a), ('text2', b)):
                ids, offsets = f[f'columns/{column}/ids'][...], f[f'columns/{column}/offsets'][...]
                expected = hf(texts, truncation=True, max_length=512)['input_ids']
                for i, want in enumerate(expected):
                    got = ids[offsets[i]:offsets[i + 1]].tolist()
                    if got != want:
                        failures.append(f'stsb {split} row {i} {column}: {got} != HF {want}')
                        break
            if [round(x, 4) for x in f['labels'][...].tolist()] != [round(x, 4) for x in labels]:
                failures.append(f'stsb {split}: labels differ from the file')
            sources = json.loads(f.attrs['sources'])
            digest = hashlib.sha256((sts / f'sts-{split}.csv').read_bytes()).hexdigest()
            if sources[0]['sha256'] != digest or f.attrs['schema_version'] != 1 or f.attrs['count'] != len(a):
                failures.append(f'stsb {split}: attributes {dict(f.attrs)}')
    print('round trip: every STS-B row has HF ids')

    # Generic formats with a column mapping, LLM labels and weights.
    jsonl = work / 'llm.jsonl'
    jsonl.write_text('\n'.join(json.dumps({'s1': f'A man plays {i}.', 's2': f'Someone plays {i}.', 'score': i % 6,
                                           'conf': 0.5 + i / 100}) for i in range(20)) + '\n')
    n = prepare('jsonl', jsonl, work / 'llm.h5', '--columns', 'text1=s1,text2=s2,label=score,weight=conf',
                '--label-range', '0:5', '--llm-model', 'gpt-x', '--llm-prompt', 'Rate 0-5')
    with h5py.File(work / 'llm.h5', 'r') as f:
        if n != 20 or f.attrs['annotator_model'].decode() != 'gpt-x' or abs(f['weights'][3] - 0.53) > 1e-6:
            failures.append(f'llm jsonl: n={n}, attrs={dict(f.attrs)}')
    tsv = work / 'triplets.tsv'
    tsv.write_text('q\tp\tn\nA dog.\tA puppy.\tA car.\nA cat.\tA kitten.\tA tree.\n')
    if prepare('tsv', tsv, work / 'c.h5', '--columns', 'query=q,positive=p,negative=n') != 2:
        failures.append('tsv triplets: wrong count')

    # Training from the prepared file equals training from the raw file.
    losses = []
    for spec in (work / 'stsb-train.h5', f'stsb:{sts / "sts-train.csv"}'):
        out = work / 'run'
        run([angle, 'train', '--job', 'jobs/stsb.ini', '--model.path', args.model, '--data.train', spec, '--data.dev', '',
             '--data.test', '', '--train.max_steps', 3, '--train.log_every', 1, '--model.dropout', 0,
             '--model.max_length', 32, '--train.global_batch', 8, '--run.output_dir', out])
        losses.append([json.loads(l)['loss'] for l in (out / 'metrics.jsonl').read_text().splitlines()])
    print('losses from .h5 / raw:', losses)
    if losses[0] != losses[1]:
        failures.append(f'training from .h5 differs from raw: {losses}')

    # --suite sts on a SentEval-style directory built from STS-B dev pairs.
    suite = work / 'senteval'
    a, b, y = stsb_pairs(sts / 'sts-dev.csv')
    for year, names in ((12, ('MSRpar', 'MSRvid')), (13, ('FNWN', 'headlines')), (14, ('images',)),
                        (15, ('belief',)), (16, ('plagiarism',))):
        d = suite / f'STS/STS{year}-en-test'
        d.mkdir(parents=True)
        prefix = 'STS2016' if year == 16 else 'STS'
        for k, name in enumerate(names):
            lo = 40 * (year - 12) + 20 * k
            rows = range(lo, lo + 20)
            (d / f'{prefix}.input.{name}.txt').write_text(''.join(f'{a[i]}\t{b[i]}\n' for i in rows))
            # Every fifth gold line is empty: that pair is not evaluated.
            (d / f'{prefix}.gs.{name}.txt').write_text(''.join('\n' if i % 5 == 0 else f'{y[i]}\n' for i in rows))
    (suite / 'STS/STSBenchmark').mkdir(parents=True)
    shutil.copy(sts / 'sts-test.csv', suite / 'STS/STSBenchmark/sts-test.csv')
    (suite / 'SICK').mkdir()
    shutil.copy(sick / 'SICK_test_annotated.txt', suite / 'SICK/SICK_test_annotated.txt')
    table = run([angle, 'eval', '--model', args.model, '--suite', 'sts', '--data-dir', suite, '--quiet'])
    print(table)
    header, values = table.splitlines()[:2]
    if header.split() != ['STS12', 'STS13', 'STS14', 'STS15', 'STS16', 'STS-B', 'SICK-R', 'Avg.']:
        failures.append(f'suite header {header}')
    scores = [float(v) for v in values.split()]
    if abs(scores[-1] - sum(scores[:-1]) / 7) > 0.011:
        failures.append('Avg. is not the mean of the 7 sets')
    # STS12 "all": the two subsets concatenated, gold-less pairs skipped, as one STS-B-style file.
    rows = [i for i in range(0, 40) if i % 5 != 0]
    same = work / 'sts12-as-stsb.csv'
    same.write_text(''.join(f'g\tf\t2012\t{i}\t{y[i]}\t{a[i]}\t{b[i]}\n' for i in rows))
    reference = json.loads(run([angle, 'eval', '--model', args.model, '--data', f'stsb:{same}', '--json', '--quiet']))
    if abs(reference['spearman'] - scores[0]) > 0.006 or reference['n'] != 32:
        failures.append(f'STS12 {scores[0]} != the same pairs through --data: {reference}')

    # --- bad input ---
    out = work / 'bad' / 'x.h5'
    out.parent.mkdir()

    def bad(name, content):
        p = work / name
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        return p
    prep = ['prepare', '--model', args.model, '--output', out, '--format']
    expect.failure('wrong column count (tsv)', prep + ['tsv', '--input', bad('cols.tsv', 'a\tb\tc\nx\ty\n'), '--columns',
                   'text1=a,text2=b,label=c'], ['cols.tsv:2', 'expected 3'], out)
    expect.failure('score not a number', prep + ['stsb', '--input', bad('nan.csv', 'g\tf\t2012\t1\tabc\tA.\tB.\n')],
                   ['nan.csv:1', "'abc' is not a number"], out)
    expect.failure('score outside the declared range', prep + ['jsonl', '--input', bad('range.jsonl',
                   '{"a": "x", "b": "y", "s": 1}\n{"a": "x", "b": "z", "s": 7}\n'), '--columns', 'text1=a,text2=b,label=s',
                   '--label-range', '0:5'], ['range.jsonl:2', 'outside the declared range [0, 5]'], out)
    expect.failure('non-UTF-8 text', prep + ['stsb', '--input', bad('latin.csv', 'g\tf\t2012\t1\t1.0\tcaf\xe9\tB.\n'.encode('latin-1'))],
                   ['latin.csv:1', 'not valid UTF-8'], out)
    expect.failure('empty file', prep + ['stsb', '--input', bad('empty.csv', '')], ['empty.csv', 'empty'], out)
    mismatch = work / 'mismatch'
    mismatch.mkdir()
    (mismatch / 'STS.input.x.txt').write_text('A.\tB.\nC.\tD.\n')
    (mismatch / 'STS.gs.x.txt').write_text('1.0\n')
    expect.failure('gold and input files of different lengths', prep + ['senteval-sts', '--input', mismatch],
                   ['STS.input.x.txt has 2 lines', 'STS.gs.x.txt has 1'], out)
    expect.failure('missing column in the mapping', prep + ['jsonl', '--input', jsonl, '--columns',
                   'text1=s1,text2=nope,label=score'], ['llm.jsonl:1', "missing column 'nope'"], out)
    expect.failure('incomplete mapping', prep + ['jsonl', '--input', jsonl, '--columns', 'text1=s1,label=score'],
                   ['format A needs text1, text2 and label'], out)
    train = ['train', '--job', 'jobs/stsb.ini', '--model.path', args.model, '--data.dev', '', '--data.test', '',
             '--train.max_steps', 1, '--run.output_dir', work / 'badrun', '--data.train']
    whole = (work / 'stsb-dev.h5').read_bytes()
    expect.failure('truncated HDF5', train + [bad('trunc.h5', whole[:len(whole) // 2])], ['trunc.h5', 'truncated'])
    with h5py.File(work / 'foreign.h5', 'w') as f:
        f['x'] = [1, 2, 3]
    expect.failure('foreign HDF5', train + [work / 'foreign.h5'], ['foreign.h5', 'not an AnglE-HPC dataset'])
    shutil.copy(work / 'stsb-dev.h5', work / 'future.h5')
    with h5py.File(work / 'future.h5', 'r+') as f:
        f.attrs['schema_version'] = 99
    expect.failure('schema version from the future', train + [work / 'future.h5'], ['future.h5', 'schema version 99'])
    prepare('stsb', sts / 'sts-dev.csv', work / 'other-tok.h5', model=args.other_model)
    expect.failure('tokenizer mismatch', train + [work / 'other-tok.h5'], ['other-tok.h5', 'was prepared with tokenizer',
                   args.other_model, args.model])
    # Token ids are checked when the job opens the file (each rank its share), not when the
    # sampler draws the example: a bad id in the last row stops a 1-step run at start-up.
    def edited(name, edit):
        shutil.copy(work / 'stsb-dev.h5', work / name)
        with h5py.File(work / name, 'r+') as f:
            edit(f)
        return work / name

    def set_id(column, from_end, value):
        def edit(f):
            ids = f[f'columns/{column}/ids']
            ids[len(ids) - from_end] = value
        return edit

    last = 1499  # stsb-dev.h5's last row
    with h5py.File(work / 'stsb-dev.h5', 'r') as f:
        o = f['columns/text2/offsets'][:]
    token = int(o[last + 1] - 2 - o[last])  # the token before the last [SEP]
    expect.failure('token id beyond the vocabulary', train + [edited('big-id.h5', set_id('text2', 2, 10_000_000))],
                   ['big-id.h5', "column 'text2'", f'row {last}', f'token {token}', 'id 10000000', 'vocabulary [0, 30522)'])
    expect.failure('negative token id', train + [edited('negative-id.h5', set_id('text2', 2, -5))],
                   ['negative-id.h5', "column 'text2'", f'row {last}', 'id -5'])

    def float_ids(f):
        ids = f['columns/text1/ids'][:]
        del f['columns/text1/ids']
        f['columns/text1/ids'] = ids.astype('float32') + 0.5
    expect.failure('float token ids', train + [edited('float-ids.h5', float_ids)],
                   ['float-ids.h5', "column 'text1'", 'token ids stored as floats'])
    expect.exit_status()
    print('prepare / suite checks passed')


if __name__ == '__main__':
    main()
