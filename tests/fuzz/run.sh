#!/usr/bin/env bash
# Fuzzes every reader of untrusted bytes with libFuzzer (clang + ASan + UBSan), each target for a
# given time, and prints per target the executions per second, the coverage reached and what it
# found. Corpora persist in build-fuzz/corpus/ (a later run goes on from them); this run's crashes,
# hangs and OOMs are saved in build-fuzz/crashes/TARGET/ (copy each into
# tests/fuzz/regressions/TARGET/ once fixed: the test fuzz_regressions replays them).
#   tests/fuzz/run.sh [--seconds N (600)] [--jobs J (nproc)] [TARGET ...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=600
jobs=$(OMP_NUM_THREADS= nproc)
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
launch/setup.sh                                    # the normal build (seeds need build/angle), models, data
launch/apt-install.sh clang libfuzzer-14-dev
out=build-fuzz
if [ ! -f $out/CMakeCache.txt ]; then
  CC=clang CXX=clang++ cmake -S . -B $out -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANGLE_FUZZ=ON \
    -DPython3_EXECUTABLE="$(command -v python3)" >&2
fi
all=$(sed -n 's/^ANGLE_FUZZ_TARGET(\([a-z_0-9]*\)).*/\1/p' tests/fuzz/fuzz_*.cpp)
[ ${#targets[@]} -gt 0 ] || targets=($all)
cmake --build $out -j"$jobs" --target "${targets[@]/#/fuzz_}" >&2
tiny=build/test-work/tiny-cased
[ -f $tiny/model.safetensors ] || python3 tests/oracle/make_tiny_model.py --data-dir data --out $tiny >&2
python3 tests/fuzz/seeds.py --angle build/angle --model models/all-MiniLM-L6-v2 --tiny $tiny --data-dir data \
  --out $out/seeds >&2
mkdir -p $out/logs
echo "fuzzing ${#targets[@]} targets for $seconds s each, $jobs at a time ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))" >&2
run_one() {
  local t=$1
  rm -rf "$out/crashes/$t"  # this run's findings only (keep the fixed ones in tests/fuzz/regressions/)
  mkdir -p "$out/corpus/$t" "$out/crashes/$t"
  # fork mode: a crash, timeout or OOM is saved and fuzzing goes on for the whole time
  ANGLE_FUZZ_MODEL=models/all-MiniLM-L6-v2 "$out/tests/fuzz/fuzz_$t" "$out/corpus/$t" "$out/seeds/$t" \
    tests/fuzz/regressions/"$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 -max_len=65536 \
    -artifact_prefix="$out/crashes/$t/" > "$out/logs/$t.log" 2>&1 || true
}
export -f run_one
export out seconds
mkdir -p tests/fuzz/regressions
for t in "${targets[@]}"; do mkdir -p "tests/fuzz/regressions/$t"; done
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
printf '%-20s %10s %8s %8s %8s  %s\n' target runs exec/s cov ft findings
for t in "${targets[@]}"; do
  # the last status line (fork mode): "#RUNS: cov: C ft: F corp: N exec/s E oom/timeout/crash: a/b/c time: Ts ..."
  status=$(grep -E '^#[0-9]+: cov: ' "$out/logs/$t.log" | tail -1) || true
  runs=$(sed -E 's/^#([0-9]+):.*/\1/' <<< "$status") || true
  time_s=$(grep -oE ' time: [0-9]+' <<< "$status" | head -1 | grep -oE '[0-9]+') || true
  rate=$([ -n "$runs" ] && [ "${time_s:-0}" -gt 0 ] && echo $((runs / time_s))) || true  # average, runs / time
  cov=$(grep -oE 'cov: [0-9]+' <<< "$status" | cut -d' ' -f2) || true
  ft=$(grep -oE 'ft: [0-9]+' <<< "$status" | cut -d' ' -f2) || true
  found=$(find "$out/crashes/$t" -type f 2>/dev/null | wc -l) || true
  printf '%-20s %10s %8s %8s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "$([ "$found" = 0 ] && echo none || echo "$found in $out/crashes/$t")"
done
