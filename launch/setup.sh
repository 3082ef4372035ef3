#!/usr/bin/env bash
# Installs what is missing (Debian packages, pinned Python packages), lays out models/ and data/,
# and builds into build/. Idempotent: a second run installs nothing and rebuilds incrementally.
#   launch/setup.sh                 everything
#   ANGLE_DATA_MIRROR=DIR           where datasets/fetch.sh copies STS-B/SICK from
#                                   (default ../shared/data when present, else the same next to
#                                   the checkout this one was cloned from, else download)
#   ANGLE_BUILD_DIR=DIR             build directory (default build)
#   ANGLE_CMAKE_ARGS="..."          extra arguments for its first configuration (e.g. -DANGLE_SANITIZE=ON)
#   ANGLE_BUILD_TARGETS="a b"       build only these targets (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUILD_DIR=${ANGLE_BUILD_DIR:-build}
say() { printf '[setup] %s\n' "$*" >&2; }

launch/apt-install.sh cmake g++ make libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libboost-program-options-dev \
  libboost-test-dev nlohmann-json3-dev libicu-dev libssl-dev time gnuplot-nox ccache \
  slurm-wlm munge iproute2  # gnuplot: angle report's plots; Slurm and ip: the slurm and hosts tests

# Only the pins that are not satisfied go to pip (a no-op run costs well under a second).
need_pip=$("$PYTHON" - launch/requirements.txt <<'PY'
import sys, importlib.metadata as md
need = []
for line in open(sys.argv[1]):
    line = line.split('#')[0].strip()
    if not line: continue
    name, version = line.split('==')
    try:
        if md.version(name) != version: need.append(line)
    except md.PackageNotFoundError:
        need.append(line)
print(' '.join(need))
PY
)
if [ -n "$need_pip" ]; then
  say "installing Python packages: $need_pip"
  "$PYTHON" -m pip install -q $need_pip >&2
fi

"$PYTHON" launch/setup-models.py --out models >&2
mirror=${ANGLE_DATA_MIRROR:-}
if [ -z "$mirror" ] && [ -d ../shared/data ]; then mirror=../shared/data; fi
# A clone of a local checkout (e.g. in a temporary directory) finds the mirror next to its origin.
origin=$(git config --get remote.origin.url 2>/dev/null || true)
if [ -z "$mirror" ] && [ -n "$origin" ] && [ -d "$origin/../shared/data" ]; then mirror="$origin/../shared/data"; fi
datasets/fetch.sh ${mirror:+--from "$mirror"} --out data >&2

# ccache: a rebuild of the same sources (another clone of the checkout, CI after a session, a
# build directory removed) reuses the objects compiled before. Paths below the checkout are
# hashed relative to it (CCACHE_BASEDIR), so clones in other folders share the cache.
launcher=()
if command -v ccache > /dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  say "configuring $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$(command -v "$PYTHON")" \
    "${launcher[@]}" ${ANGLE_CMAKE_ARGS:-} >&2
fi
say "building (first build takes a few minutes on 2 cores)"
targets=()
for t in ${ANGLE_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}" >&2
say "ready: $BUILD_DIR/angle"
