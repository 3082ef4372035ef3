#!/usr/bin/env bash
# STS-B, SICK and SNLI (SentEval's dev/test files) into data/ (idempotent). Each file is verified
# against the checksum of the public release before it is accepted.
#   datasets/fetch.sh [--from DIR] [--out DIR]
#   --from DIR   offline mirror laid out as the public releases unpack (STS/STSBenchmark/*.csv,
#                SICK/SICK.txt, SICK/semeval2014_task1_noheader/*.txt, NLI/SNLI_senteval/{s1,s2,
#                labels}.{dev,test}); compute nodes rarely have internet. Without --from the public
#                archives are downloaded.
# Public locations:
#   STS-B  https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz
#   SICK   https://zenodo.org/records/2787612/files/SICK.zip   (SICK.txt, with SemEval_set column)
#   SNLI   https://nlp.stanford.edu/projects/snli/snli_1.0.zip  (SentEval derives s1/s2/labels from it)
# The SemEval-2014 split files (SICK_train/trial/test_annotated.txt) are not part of SICK.zip;
# with a download they are derived from SICK.txt's SemEval_set column instead.
set -euo pipefail
from=""; out="data"
while (($#)); do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "fetch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# path-in-layout  sha256-prefix (from the public releases)
files=(
  "STS/STSBenchmark/sts-train.csv 0f71910b59aa1ad9"
  "STS/STSBenchmark/sts-dev.csv 5d7e944d8b02734b"
  "STS/STSBenchmark/sts-test.csv affe45928a66ee5a"
  "SICK/SICK.txt 1539c2d059809b5b"
  "SICK/semeval2014_task1_noheader/SICK_train.txt f4d128aad59deb5f"
  "SICK/semeval2014_task1_noheader/SICK_trial.txt 5e24b7fb1639e20a"
  "SICK/semeval2014_task1_noheader/SICK_test_annotated.txt a7b22f10009c0094"
  "NLI/SNLI_senteval/s1.dev 28a398b5478b10b4"
  "NLI/SNLI_senteval/s2.dev a8c59709630b64ba"
  "NLI/SNLI_senteval/labels.dev d164d72435c3289f"
  "NLI/SNLI_senteval/s1.test 62cb8107dc3c56a4"
  "NLI/SNLI_senteval/s2.test 1174f3ad30a3c30f"
  "NLI/SNLI_senteval/labels.test e25c363e5cc70d54"
)
verify() {  # file expected-prefix
  local got; got=$(sha256sum "$1" | cut -c1-16)
  [ "$got" = "$2" ] || { echo "fetch.sh: $1: checksum $got, expected $2 (corrupt or different release)" >&2; return 1; }
}

all_present=1
for entry in "${files[@]}"; do
  set -- $entry
  [ -f "$out/$1" ] || all_present=0
done
((all_present)) && exit 0

mkdir -p "$out"
tmp=$(mktemp -d "$out/.fetch.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
if [ -n "$from" ]; then
  for entry in "${files[@]}"; do
    set -- $entry
    [ -f "$from/$1" ] || { echo "fetch.sh: $from/$1: missing in the mirror" >&2; exit 1; }
    mkdir -p "$tmp/$(dirname "$1")"; cp "$from/$1" "$tmp/$1"; verify "$tmp/$1" "$2"
  done
else
  command -v curl >/dev/null || { echo "fetch.sh: curl is needed to download (or use --from DIR)" >&2; exit 1; }
  curl -fsSL https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz -o "$tmp/sts.tgz"
  curl -fsSL https://zenodo.org/records/2787612/files/SICK.zip -o "$tmp/sick.zip"
  curl -fsSL https://nlp.stanford.edu/projects/snli/snli_1.0.zip -o "$tmp/snli.zip"
  mkdir -p "$tmp/STS" "$tmp/SICK/semeval2014_task1_noheader"
  tar -xzf "$tmp/sts.tgz" -C "$tmp/STS" && mv "$tmp/STS/stsbenchmark" "$tmp/STS/STSBenchmark"
  (cd "$tmp/SICK" && python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extract('SICK.txt')" "$tmp/sick.zip")
  for entry in "${files[@]:0:4}"; do set -- $entry; verify "$tmp/$1" "$2"; done
  # SemEval splits: pair_ID, sentence_A, sentence_B, relatedness_score, entailment_label by SemEval_set.
  python3 - "$tmp/SICK" <<'PY'
import sys, pathlib
root = pathlib.Path(sys.argv[1])
rows = [l.split('\t') for l in root.joinpath('SICK.txt').read_text(encoding='utf-8').splitlines()[1:]]
for split, name in [('TRAIN', 'SICK_train.txt'), ('TRIAL', 'SICK_trial.txt'), ('TEST', 'SICK_test_annotated.txt')]:
    lines = ['\t'.join([r[0], r[1], r[2], r[4], r[3]]) for r in rows if r[11].strip() == split]
    root.joinpath('semeval2014_task1_noheader', name).write_text('\n'.join(lines) + '\n', encoding='utf-8')
PY
  # SNLI dev/test in SentEval's layout (untokenized here; SentEval's copies are PTB-tokenized).
  python3 - "$tmp" <<'PY'
import json, pathlib, sys, zipfile
root = pathlib.Path(sys.argv[1]); out = root / 'NLI/SNLI_senteval'; out.mkdir(parents=True)
with zipfile.ZipFile(root / 'snli.zip') as z:
    for split in ('dev', 'test'):
        rows = [json.loads(l) for l in z.read(f'snli_1.0/snli_1.0_{split}.jsonl').decode().splitlines()]
        rows = [r for r in rows if r['gold_label'] != '-']
        for name, key in (('s1', 'sentence1'), ('s2', 'sentence2'), ('labels', 'gold_label')):
            (out / f'{name}.{split}').write_text(''.join(r[key] + '\n' for r in rows), encoding='utf-8')
PY
fi
for entry in "${files[@]}"; do
  set -- $entry
  mkdir -p "$out/$(dirname "$1")"; mv "$tmp/$1" "$out/$1"
done
echo "[setup] STS-B, SICK and SNLI -> $out/" >&2
