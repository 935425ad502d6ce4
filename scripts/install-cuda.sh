#!/usr/bin/env bash
# Installs the CUDA toolkit that `make cuda` needs (nvcc, cuda.h, libcuda.so
# for linking), idempotently, from Debian's non-free archive: Debian's
# nvidia-cuda-toolkit (CUDA 11.8 on bookworm, nvcc supports sm_90).
#
# The machine's apt sources usually list only `main`; this adds a deb822 source
# with `contrib non-free` for the same archive and suites as the existing
# debian.sources (so a snapshot mirror stays a snapshot mirror), updates, and
# installs. About 3 GB and a few minutes on a fresh machine.
#
# Nothing here is needed at run time on the GPU machine: a binary built with
# `-tags cuda` links only libcuda.so.1, which the NVIDIA driver provides.
set -euo pipefail

if command -v nvcc >/dev/null 2>&1 && [ -f /usr/include/cuda.h ]; then
  echo "install-cuda: nvcc present ($(nvcc --version | tail -1))"
  exit 0
fi

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
src=/etc/apt/sources.list.d/debian-nonfree.sources
if [ ! -f "$src" ]; then
  uris=http://deb.debian.org/debian
  suites="$(. /etc/os-release && echo "$VERSION_CODENAME $VERSION_CODENAME-updates")"
  # Reuse the URIs and suites of the main Debian source when it is deb822.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    first=$(awk 'BEGIN{RS=""} /debian-archive-keyring/ && !/debian-security/ {print; exit}' \
      /etc/apt/sources.list.d/debian.sources)
    u=$(printf '%s\n' "$first" | sed -n 's/^URIs:[[:space:]]*//p' | head -1)
    s=$(printf '%s\n' "$first" | sed -n 's/^Suites:[[:space:]]*//p' | head -1)
    [ -n "$u" ] && uris=$u
    [ -n "$s" ] && suites=$s
  fi
  echo "install-cuda: adding $src ($uris $suites, contrib non-free)"
  $SUDO tee "$src" >/dev/null <<SRC
Types: deb
URIs: $uris
Suites: $suites
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
  --no-install-recommends nvidia-cuda-toolkit >/dev/null
echo "install-cuda: $(nvcc --version | tail -1)"
