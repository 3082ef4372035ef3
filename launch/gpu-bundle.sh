#!/usr/bin/env bash
# Prepares what launch/gpu-check.sh needs on a bare GPU machine (one with its own PyTorch, CUDA and
# compiler, but no Open MPI, HDF5, Boost, nlohmann-json, ICU or OpenSSL headers, and no package
# registry): the Debian packages of those, as .deb files that gpu-check.sh unpacks with `dpkg -x`
# into a prefix, with the shared libraries they load (their closure by ldd, less the C/C++ runtime
# every Linux has); the tokenizer files of all-MiniLM-L6-v2 (its weights are 88 MB: gpu-check.sh
# makes random models there with that machine's transformers); STS-B train. Into .gpu-bundle/
# (git-ignored), carried with the working tree (64 MiB in all, checked here).
#   launch/gpu-bundle.sh [--out DIR]       then: launch/gpu-check.sh --bundle DIR [--dry-run]
# Needs apt-get's download (Debian bookworm, glibc 2.36: its binaries load on newer glibc) and the
# packages installed here (launch/setup.sh), whose libraries the closure is read from.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu-bundle
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-bundle.sh: unknown argument $1 (--out DIR)" >&2; exit 2 ;;
  esac
done
limit=$((64 * 1024 * 1024))
# Headers and CMake files the build needs, and the programs and libraries the runs load.
dev_packages="libopenmpi-dev libhdf5-dev libboost1.74-dev libboost-program-options1.74-dev libboost-test1.74-dev
  nlohmann-json3-dev libicu-dev libssl-dev"
run_packages="libopenmpi3 openmpi-bin openmpi-common libpmix2 libhdf5-103-1 libboost-program-options1.74.0
  libboost-test1.74.0 libicu72 libssl3"
# Every Linux with a compiler has these; carrying them would shadow the machine's own.
base="libc6 libgcc-s1 libstdc++6 zlib1g libcom-err2 libkeyutils1 libudev1 libzstd1 liblzma5 libselinux1 libpcre2-8-0"

for p in $dev_packages $run_packages; do
  dpkg -s "$p" >/dev/null 2>&1 || { echo "gpu-bundle.sh: package $p is not installed here (run launch/setup.sh)" >&2; exit 1; }
done
# The closure: the packages that own the shared libraries the carried libraries, plug-ins and
# programs load (ldd), repeated until nothing new appears.
closure=$(for p in $run_packages; do echo "$p"; done | sort -u)
while :; do
  # (A file that is no ELF object, or a library no package owns, adds nothing: `|| true`.)
  libs=$(for p in $closure; do dpkg -L "$p"; done | grep -E '\.so(\.[0-9]+)*$|/bin/[^/]+$' | sort -u |
         while read -r f; do [ -f "$f" ] && ldd "$f" 2>/dev/null | awk '$3 ~ /^\// {print $3}' || true; done | sort -u)
  owners=$(for f in $libs; do dpkg -S "$(readlink -f "$f")" 2>/dev/null || dpkg -S "$f" 2>/dev/null || true; done |
           cut -d: -f1 | sed 's/,.*//' | sort -u)
  next=$(printf '%s\n' $closure $owners | sort -u | grep -vxF -f <(printf '%s\n' $base))
  [ "$next" = "$closure" ] && break
  closure=$next
done
packages=$(printf '%s\n' $dev_packages $closure | sort -u)

rm -rf "$out.tmp" && mkdir -p "$out.tmp/debs" "$out.tmp/models/minilm-tokenizer" "$out.tmp/data/STS/STSBenchmark"
(cd "$out.tmp/debs" && for p in $packages; do
   v=$(dpkg-query -W -f='${Version}' "$p")
   apt-get download -q -o APT::Sandbox::User=root "$p=$v" >/dev/null 2>&1 ||
     apt-get download -q -o APT::Sandbox::User=root "$p" >/dev/null
 done)
for f in vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
  cp models/all-MiniLM-L6-v2/$f "$out.tmp/models/minilm-tokenizer/"
done
cp data/STS/STSBenchmark/sts-train.csv "$out.tmp/data/STS/STSBenchmark/"
for p in $packages; do dpkg-query -W -f='${Package} ${Version}\n' "$p"; done > "$out.tmp/packages.txt"
rm -rf "$out" && mv "$out.tmp" "$out"

tree_bytes=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
bundle_bytes=$(du -sb "$out" | cut -f1)
total=$((tree_bytes + bundle_bytes))
printf 'bundle %s: %d packages, %.1f MiB (.deb files %.1f MiB); working tree %.1f MiB; carried in all %.1f MiB of 64\n' \
  "$out" "$(wc -l < "$out/packages.txt")" "$(echo "$bundle_bytes / 1048576" | bc -l)" \
  "$(du -sb "$out/debs" | cut -f1 | awk '{print $1 / 1048576}')" "$(echo "$tree_bytes / 1048576" | bc -l)" \
  "$(echo "$total / 1048576" | bc -l)"
[ "$total" -le "$limit" ] || { echo "gpu-bundle.sh: $total bytes exceed the 64 MiB a device call carries" >&2; exit 1; }
