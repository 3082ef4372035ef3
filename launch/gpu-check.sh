#!/usr/bin/env bash
# The GPU checks, in one run sized for a lent machine (about 5 minutes with the build), on a bare
# one: its own PyTorch/CUDA/compiler, and the rest from the bundle launch/gpu-bundle.sh made.
#   launch/gpu-check.sh [--bundle DIR] [--out DIR] [--build DIR] [--no-build] [--dry-run]
#                       [--steps NAME,...] [--force]
# --steps runs only those; --force runs them without a GPU too (the set-up steps on a machine that
# emulates a bare one: tests/gpu/bare_machine.sh). ANGLE_GPU_BUILD_TARGETS: what `build` builds.
# Steps (each prints PASS/FAIL with its log's tail, none stops the others; $OUT/gpu-check.json
# sums them up):
#   prefix   the bundle's .deb files unpacked with dpkg -x into a prefix (no root, no registry)
#   mpi      an MPI program built with the prefix's mpicc, run on 2 ranks by its mpirun
#   build    angle and the collective tests against this machine's PyTorch, Ninja, all cores
#   models   made here with this machine's transformers: a tiny BERT and tokenizers (trained on
#            STS-B train), a BERT-base-sized BERT (MiniLM's tokenizer), a ~1B LLaMA in bf16
#   a. collectives_nccl        the collective tests on CUDA tensors over NCCL, 1 rank
#      collectives_staged      the same at 2 ranks sharing the GPU: MPI with host staging
#   b. cpu_vs_cuda             20 steps, fp32 (TF32 off), dropout 0, train.chunk: the CPU against CUDA
#                              at stages 1, 2, 3 (3 with train.deterministic): losses, grad norms,
#                              final parameters within 1e-4
#   c. resume_deterministic    train.deterministic, dropout on: a checkpoint at step 10 resumed on
#                              the GPU: losses of steps 11-20 bitwise equal to the uninterrupted
#                              run; the cost against the same run without train.deterministic
#   d. throughput_bert_base    BERT-base-sized, bf16, 256-token texts, global batch 512 in chunks:
#                              sequences/s, MFU against the card's dense bf16 peak, device peak
#                              memory beside `angle plan`'s
#      throughput_llama_lora   the ~1B LLaMA with LoRA (r 8), bf16: tokens/s, device peak memory
# Each step may take STEP_TIMEOUT seconds (300). A device call runs 600 s at most: where the build
# takes minutes, run `--steps prefix,mpi,build,models` and then, on the still-warm machine,
# `--no-build` with the checks (build-gpu/ and the models stay there between calls).
# Without a GPU (or with --dry-run) every step prints the commands it would run and is reported
# skipped, never passed; the exit status is then 77 (CTest: skipped). Otherwise 0 when every step
# passed, 1 when one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bundle="" out="" build="" no_build=0 dry=0 force=0 steps=""
while [ $# -gt 0 ]; do
  case $1 in
    --bundle) bundle=$(realpath "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-build) no_build=1; shift ;;
    --dry-run) dry=1; shift ;;
    --steps) steps=",$2,"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
gpu=""
if [ $dry = 0 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
elif [ $dry = 0 ] && [ $force = 0 ]; then
  dry=1
fi
out=$(realpath -m "${out:-${OUT:-build/gpu-check}}")
work=${ANGLE_GPU_WORK:-/tmp/angle-gpu-check}
build=$(realpath -m "${build:-build-gpu}")
mkdir -p "$out/logs" "$work"
records=$out/records.tsv
: > "$records"
mode=$([ $dry = 1 ] && echo dry-run || echo gpu)
echo "gpu-check: mode $mode${gpu:+, $gpu}; logs in $out/logs"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} PYTHONUNBUFFERED=1

# x CMD...: runs CMD, or prints it in dry mode (the steps below are the same code in both modes).
x() {
  if [ $dry = 1 ]; then printf '    would run:'; printf ' %q' "$@"; echo; return 0; fi
  "$@"
}
# x_to FILE CMD...: the same, with CMD's output into FILE.
x_to() {
  local file=$1; shift
  if [ $dry = 1 ]; then printf '    would run:'; printf ' %q' "$@"; printf ' > %q\n' "$file"; return 0; fi
  "$@" > "$file"
}
# step NAME FUNCTION: runs FUNCTION with its output in logs/NAME.log; PASS/FAIL (SKIP in dry mode).
step() {
  local name=$1 fn=$2 log=$out/logs/$1.log start=$SECONDS status
  [ -z "$steps" ] || [[ $steps == *",$name,"* ]] || return 0
  echo "== $name"
  if [ $dry = 1 ]; then
    $fn | tee "$log"
    status=skipped
  elif timeout "${STEP_TIMEOUT:-300}" bash -c "$fn" > "$log" 2>&1; then
    status=pass
  else
    status=fail
  fi
  case $status in
    pass) echo "PASS $name ($((SECONDS - start)) s)"; grep -v '^{"figures"' "$log" | tail -3 | sed 's/^/    /' ;;
    fail) echo "FAIL $name ($((SECONDS - start)) s), the end of $log:"; tail -20 "$log" | sed 's/^/    /' ;;
    skipped) echo "SKIP $name (no GPU: dry run)" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" "$log" "$fn" >> "$records"
}

# --- set-up -------------------------------------------------------------------------------------
prefix() {
  if [ -z "$bundle" ]; then echo "no --bundle: using the system's packages"; return 0; fi
  x mkdir -p "$work/prefix"
  for deb in "$bundle"/debs/*.deb; do x dpkg -x "$deb" "$work/prefix"; done
  local p=$work/prefix/usr missing=0
  [ $dry = 1 ] && { echo "    then: mpirun.openmpi, mpi.h, hdf5.h, Boost, nlohmann, ICU and OpenSSL headers from $p"; return 0; }
  for f in bin/mpirun.openmpi lib/x86_64-linux-gnu/openmpi/include/mpi.h include/hdf5/serial/hdf5.h \
           include/boost/program_options.hpp include/nlohmann/json.hpp include/unicode/uchar.h include/openssl/sha.h; do
    [ -e "$p/$f" ] || { echo "missing from the bundle: $f"; missing=1; }
  done
  du -sh "$work/prefix"
  return $missing
}
# The prefix's programs and libraries, for the steps after it (Debian's Open MPI relocated by
# OPAL_PREFIX, PMIx's plug-ins found by their path; the optional transports that need hardware
# libraries stay quiet).
use_prefix() {
  [ -n "$bundle" ] || return 0
  local p=$work/prefix/usr lib=$work/prefix/usr/lib/x86_64-linux-gnu
  mkdir -p "$work/bin"
  for tool in mpirun mpiexec mpicc mpicxx; do [ -e "$p/bin/$tool.openmpi" ] && ln -sf "$p/bin/$tool.openmpi" "$work/bin/$tool"; done
  export PATH=$work/bin:$p/bin:$PATH OPAL_PREFIX=$p PMIX_MCA_mca_base_component_path=$lib/pmix2/lib/pmix
  export LD_LIBRARY_PATH=$lib:$lib/openmpi/lib:$lib/hdf5/serial${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CPATH=$p/include/x86_64-linux-gnu${CPATH:+:$CPATH}  # multiarch headers (opensslconf.h)
  export OMPI_MCA_mca_base_component_show_load_errors=0 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
}
mpi_runtime() {
  local src=$work/mpi-hello.c
  x_to "$src" printf '%s\n' '#include <mpi.h>' '#include <stdio.h>' \
    'int main(int c, char** v) { int r, n; MPI_Init(&c, &v); MPI_Comm_rank(MPI_COMM_WORLD, &r);' \
    '  MPI_Comm_size(MPI_COMM_WORLD, &n); int s = r + 1, t = 0; MPI_Allreduce(&s, &t, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);' \
    '  if (r == 0) printf("%d ranks, sum %d\n", n, t); MPI_Finalize(); return t == n * (n + 1) / 2 ? 0 : 1; }' &&
  x mpicc "$src" -o "$work/mpi-hello" &&
  x mpirun -np 2 --oversubscribe "$work/mpi-hello"
}
build_step() {
  if [ $no_build = 1 ]; then echo "--no-build: using $build"; [ -x "$build/angle" ] || [ $dry = 1 ]; return; fi
  local p=$work/prefix/usr hints=()
  [ -n "$bundle" ] && hints=(-DCMAKE_PREFIX_PATH="$p" -DMPI_C_COMPILER="$work/bin/mpicc" -DMPI_CXX_COMPILER="$work/bin/mpicxx"
                             -DHDF5_ROOT="$p" -DHDF5_INCLUDE_DIRS="$p/include/hdf5/serial"
                             -DHDF5_C_INCLUDE_DIR="$p/include/hdf5/serial"
                             -DHDF5_hdf5_LIBRARY_RELEASE="$p/lib/x86_64-linux-gnu/hdf5/serial/libhdf5.so"
                             -DICU_ROOT="$p" -DOPENSSL_ROOT_DIR="$p" -DBoost_ROOT="$p")
  x cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTORCH_CUDA_ARCH_LIST=9.0 "${hints[@]}" &&
  x cmake --build "$build" --target ${ANGLE_GPU_BUILD_TARGETS:-angle angle_mpi_tests} -j "$(nproc)"
}
models() {
  local m=$work/models data=${bundle:-$root}/data tokenizer=${bundle:+$bundle/models/minilm-tokenizer}
  tokenizer=${tokenizer:-$root/models/all-MiniLM-L6-v2}
  x python3 tests/oracle/make_tiny_model.py --data-dir "$data" --out "$m/tiny" &&
  x python3 tests/oracle/make_bert_base.py --tokenizer-from "$tokenizer" --out "$m/bert-base" &&
  x python3 tests/oracle/make_llm_tokenizers.py --data-dir "$data" --out "$m/tokenizers" &&
  x python3 tests/gpu/gpu_checks.py llama "$m/llama-1b" --tokenizer "$m/tokenizers/sentencepiece-llama2"
}

# --- checks -------------------------------------------------------------------------------------
collectives_nccl() { x env ANGLE_TEST_BACKEND=nccl mpirun -np 1 "$build/tests/angle_mpi_tests"; }
collectives_staged() { x env ANGLE_TEST_BACKEND=mpi-staged mpirun -np 2 --oversubscribe "$build/tests/angle_mpi_tests"; }
train_args() {  # into the caller's `common`: the tiny model on STS-B train, every step logged
  common=(train --job jobs/stsb.ini --model.path "$work/models/tiny" --data.train "stsb:${bundle:-$root}/data/STS/STSBenchmark/sts-train.csv" \
       --data.dev '' --data.test '' --train.log_every 1 --train.max_steps 20 --train.global_batch 16)
}
cpu_vs_cuda() {
  local r=$work/cpu-vs-cuda common
  train_args
  common+=(--model.dropout 0 --train.chunk 4)
  x rm -rf "$r" &&
  x "$build/angle" "${common[@]}" --train.device cpu --train.backend single --run.output_dir "$r/cpu" &&
  for stage in 1 2; do
    x mpirun -np 1 "$build/angle" "${common[@]}" --train.device cuda --shard.stage $stage --run.output_dir "$r/cuda-stage$stage" || return 1
  done &&
  # stage 3 with train.deterministic: its math attention path against the CPU too
  x mpirun -np 1 "$build/angle" "${common[@]}" --train.device cuda --shard.stage 3 --train.deterministic true \
    --run.output_dir "$r/cuda-stage3" &&
  x python3 tests/gpu/gpu_checks.py compare "$r/cpu" "$r/cuda-stage1" "$r/cuda-stage2" "$r/cuda-stage3" --rel 1e-4
}
resume_deterministic() {
  local r=$work/resume common
  train_args
  common+=(--model.dropout 0.1 --train.device cuda --run.checkpoint_every 10 --run.keep_last 2)
  x rm -rf "$r" &&
  x mpirun -np 1 "$build/angle" "${common[@]}" --train.deterministic true --run.output_dir "$r/full" &&
  x mpirun -np 1 "$build/angle" "${common[@]}" --train.deterministic true --run.output_dir "$r/resumed" \
    --run.resume "$r/full/step-10" &&
  x mpirun -np 1 "$build/angle" "${common[@]}" --run.output_dir "$r/default" &&
  x python3 tests/gpu/gpu_checks.py resume "$r/full" "$r/resumed" --baseline "$r/default"
}
peak_tflops() {  # dense bf16, from the vendors' data sheets
  case "$gpu" in
    *H200*|*"H100 SXM"*|*"H100 80GB HBM3"*) echo 989 ;; *"H100 NVL"*) echo 835 ;; *"H100 PCIe"*|*H100*) echo 756 ;;
    *A100*) echo 312 ;; *L40S*) echo 362 ;; *) echo 0 ;;
  esac
}
throughput_bert_base() {
  local r=$work/bert-base long=$work/long-pairs.csv args
  x python3 -c "import sys
rows = [l.split('\t') for l in open(sys.argv[1], encoding='utf-8').read().splitlines()]
with open(sys.argv[2], 'w', encoding='utf-8') as f:  # 256-token texts: 16 sentences joined, per side
    for i in range(0, len(rows) - 16, 16):
        g = rows[i:i + 16]
        f.write('\t'.join(g[0][:5] + [' '.join(r[5] for r in g), ' '.join(r[6] for r in g)]) + '\n')" \
    "${bundle:-$root}/data/STS/STSBenchmark/sts-train.csv" "$long" &&
  args=(--job jobs/stsb.ini --model.path "$work/models/bert-base" --model.pooling mean --data.train "stsb:$long"
        --data.dev '' --data.test '' --model.max_length 256 --model.dtype bf16 --train.global_batch 512 --train.chunk 128
        --train.max_steps 8 --train.log_every 2 --shard.param_dtype bf16 --shard.reduce_dtype bf16) &&
  x rm -rf "$r" && x mkdir -p "$r" &&
  x_to "$r/plan.json" "$build/angle" plan "${args[@]}" --ranks 1 --json &&
  x mpirun -np 1 "$build/angle" train "${args[@]}" --train.device cuda --run.output_dir "$r/run" &&
  x python3 tests/gpu/gpu_checks.py speed "$r/run" --peak-tflops "$(peak_tflops)" --plan "$r/plan.json"
}
throughput_llama_lora() {
  local r=$work/llama-lora args
  args=(--job jobs/stsb.ini --model.path "$work/models/llama-1b" --model.pooling last
        --data.train "stsb:${bundle:-$root}/data/STS/STSBenchmark/sts-train.csv" --data.dev '' --data.test ''
        --model.max_length 64 --model.dtype bf16 --lora.r 8 --train.global_batch 128 --train.max_steps 8
        --train.log_every 2 --shard.param_dtype bf16) &&
  x rm -rf "$r" && x mkdir -p "$r" &&
  x_to "$r/plan.json" "$build/angle" plan "${args[@]}" --ranks 1 --json &&
  x mpirun -np 1 "$build/angle" train "${args[@]}" --train.device cuda --run.output_dir "$r/run" &&
  x python3 tests/gpu/gpu_checks.py speed "$r/run" --peak-tflops "$(peak_tflops)" --plan "$r/plan.json"
}

# Every step runs in a shell of its own (under `timeout`), with these functions and settings.
export -f $(declare -F | awk '{print $3}')
export dry root build bundle work out gpu no_build
step prefix prefix
use_prefix
step mpi mpi_runtime
step build build_step
step models models
for check in collectives_nccl collectives_staged cpu_vs_cuda resume_deterministic throughput_bert_base \
             throughput_llama_lora; do
  step $check $check
done
python3 tests/gpu/gpu_checks.py summary "$records" "$out/gpu-check.json" --mode "$mode" --gpu "$gpu"
[ $dry = 1 ] && exit 77
! grep -q $'\tfail\t' "$records"
