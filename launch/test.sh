#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, run the CTest tests.
#   launch/test.sh [--long] [CTEST ARGS...]    build/, every test but those labelled long (each over a
#                                              minute on 2 cores); --long runs them too (CI does)
#   launch/test.sh --sanitize [--long] [CTEST ARGS...]
#       build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer), the tests labelled sanitize: unit
#       tests, CLI errors, a short training run, the fuzz regressions, the MPI collectives at 2 ranks
#       (about 2 minutes); --long adds formats, chunks and stages 2/3 at 1, 2 and 4 ranks (8 minutes).
#       Any sanitizer report from any process fails the run (the reports are collected under
#       build-asan/sanitizer-reports/ and printed), also one from a process a test expects to fail.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --sanitize ]; then
  select=(-LE '^long$')
  if [ "${1:-}" = --long ]; then select=(); shift; fi
  launch/setup.sh
  exec ctest --test-dir "${ANGLE_BUILD_DIR:-build}" --output-on-failure -j1 "${select[@]}" "$@"
fi
shift
labels='^sanitize$'
if [ "${1:-}" = --long ]; then labels='^sanitize(-long)?$'; shift; fi
export ANGLE_BUILD_DIR=${ANGLE_SANITIZE_BUILD_DIR:-build-asan}
export ANGLE_CMAKE_ARGS="-DANGLE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo"
export ANGLE_BUILD_TARGETS="angle angle_unit_tests angle_mpi_tests angle_fuzz_replay"
launch/setup.sh

reports=$PWD/$ANGLE_BUILD_DIR/sanitizer-reports
supp=$PWD/launch/sanitizer-suppressions
rm -rf "$reports" && mkdir -p "$reports"
# exitcode 86: a sanitized process that reports fails with a status no `angle` error path uses;
# log_path: every process's reports land in files, also those of processes a test expects to fail.
export ASAN_OPTIONS="log_path=$reports/asan:exitcode=86:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:suppressions=$supp/asan.supp"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:exitcode=86:halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
status=0
ctest --test-dir "$ANGLE_BUILD_DIR" -L "$labels" --output-on-failure -j1 "$@" || status=$?
if compgen -G "$reports/*" > /dev/null; then
  echo "sanitizer reports ($(ls "$reports" | wc -l) files in $reports):" >&2
  head -n 60 "$reports"/* >&2
  exit 1
fi
echo "sanitizers: no report from any process" >&2
exit $status
