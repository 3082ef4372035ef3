#!/usr/bin/env bash
# Runs a command on this machine as the lent GPU machine would see it without the bundle: in a
# private mount namespace (root) where the packages launch/gpu-bundle.sh carries and a bare image
# lacks (Open MPI, PMIx, HDF5, Boost, nlohmann-json, ICU, OpenSSL's headers, and the libraries
# only they load) are hidden: their directories under empty tmpfs mounts, their other files under
# /dev/null. The C/C++ runtime, Python with PyTorch, the CUDA toolkit and what a normal image has
# (libssl3, libcurl4, Kerberos, GnuTLS) stay.
#   tests/gpu/bare_machine.sh BUNDLE COMMAND...   e.g.
#   tests/gpu/bare_machine.sh .gpu-bundle launch/gpu-check.sh --bundle .gpu-bundle --force --steps prefix,mpi,build
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
bundle=$1; shift
[ -f "$bundle/packages.txt" ] || { echo "bare_machine.sh: $bundle/packages.txt missing (run launch/gpu-bundle.sh)" >&2; exit 2; }
hidden=$(cut -d' ' -f1 "$bundle/packages.txt" |
         grep -E 'openmpi|hdf5|boost|nlohmann|icu|pmix|hwloc|libevent|fabric|ucx|libsz|libaec|psm|ibverbs|rdmacm|munge|libnl-|numa|libssl-dev')
dirs="/usr/include/boost /usr/include/hdf5 /usr/include/nlohmann /usr/include/unicode /usr/include/openssl
  /usr/include/x86_64-linux-gnu/openssl /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/hdf5
  /usr/lib/x86_64-linux-gnu/pmix2 /usr/share/openmpi /usr/share/pmix /usr/share/hwloc /usr/lib/x86_64-linux-gnu/ucx
  /usr/lib/x86_64-linux-gnu/libfabric $(ls -d /usr/lib/x86_64-linux-gnu/cmake/Boost* /usr/lib/x86_64-linux-gnu/cmake/boost_* \
  /usr/share/cmake/nlohmann_json 2>/dev/null)"
files=$(for p in $hidden; do dpkg -L "$p"; done | sort -u | while read -r f; do
          [ -f "$f" ] && [ ! -L "$f" ] || continue  # symlinks: their targets are hidden, or belong to a package that stays
          for d in $dirs; do case $f in "$d"/*) continue 2 ;; esac; done
          echo "$f"
        done)
script='set -e
for d in '"$(echo $dirs)"'; do [ -d "$d" ] && mount -t tmpfs none "$d"; done
while read -r f; do mount --bind /dev/null "$f"; done <<FILES
'"$files"'
FILES
echo "bare_machine.sh: hid '"$(echo "$hidden" | wc -l)"' packages ('"$(echo "$files" | wc -l)"' files, and directories) from this shell" >&2
exec "$@"'
exec unshare --mount --propagation private bash -c "$script" bare "$@"
