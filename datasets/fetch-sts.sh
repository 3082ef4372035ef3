#!/usr/bin/env bash
# STS-B and SICK into data/ (idempotent). Each file is verified against the checksum of the
# public release before it is accepted.
#   datasets/fetch-sts.sh [--from DIR] [--out DIR]
#   --from DIR   offline mirror laid out as the public releases unpack (STS/STSBenchmark/*.csv,
#                SICK/SICK.txt, SICK/semeval2014_task1_noheader/*.txt); compute nodes rarely
#                have internet. Without --from the public archives are downloaded.
# Public locations:
#   STS-B  https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz
#   SICK   https://zenodo.org/records/2787612/files/SICK.zip   (SICK.txt, with SemEval_set column)
# The SemEval-2014 split files (SICK_train/trial/test_annotated.txt) are not part of SICK.zip;
# with a download they are derived from SICK.txt's SemEval_set column instead.
set -euo pipefail
from=""; out="data"
while (($#)); do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "fetch-sts.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
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
)
verify() {  # file expected-prefix
  local got; got=$(sha256sum "$1" | cut -c1-16)
  [ "$got" = "$2" ] || { echo "fetch-sts.sh: $1: checksum $got, expected $2 (corrupt or different release)" >&2; return 1; }
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
    [ -f "$from/$1" ] || { echo "fetch-sts.sh: $from/$1: missing in the mirror" >&2; exit 1; }
    mkdir -p "$tmp/$(dirname "$1")"; cp "$from/$1" "$tmp/$1"; verify "$tmp/$1" "$2"
  done
else
  command -v curl >/dev/null || { echo "fetch-sts.sh: curl is needed to download (or use --from DIR)" >&2; exit 1; }
  curl -fsSL https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz -o "$tmp/sts.tgz"
  curl -fsSL https://zenodo.org/records/2787612/files/SICK.zip -o "$tmp/sick.zip"
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
fi
for entry in "${files[@]}"; do
  set -- $entry
  mkdir -p "$out/$(dirname "$1")"; mv "$tmp/$1" "$out/$1"
done
echo "[setup] STS-B and SICK -> $out/" >&2
