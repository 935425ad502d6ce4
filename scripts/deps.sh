#!/usr/bin/env bash
# Installs what the tests and benchmarks need beyond Go modules, idempotently:
# Debian packages (OpenBLAS for the peer benchmark, python3-onnx for the ONNX
# checker, qemu-user for make test-avx2 and make test-arm64, postgresql for
# the PostgreSQL store's tests: they initdb a throwaway cluster of their own,
# the package's own cluster is not used; dataset-fashion-mnist for
# Fashion-MNIST under /usr/share/datasets/fashion-mnist; on x86-64 the arm64
# cross compiler and C/C++ runtimes for make arm64 / test-arm64) and
# onnxruntime's shared libraries from the npm package onnxruntime-node (into
# .cache/onnxruntime, no install scripts run; it carries the linux/x64 and
# linux/arm64 builds).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(libopenblas-dev python3-onnx qemu-user postgresql dataset-fashion-mnist)
# make arm64 / test-arm64 on an x86-64 machine: cross compiler, the arm64 C
# and C++ runtimes (onnxruntime needs libstdc++) and qemu-user's binfmt
# registration (scripts/qemu-arm64.sh).
[ "$(uname -m)" = x86_64 ] && pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross libstdc++6-arm64-cross qemu-user-binfmt)
need=()
for pkg in "${pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v npm >/dev/null 2>&1 || need+=(npm) # installs onnxruntime-node below
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# onnxruntime's shared library, loaded in-process by nas/onnx (through
# github.com/yalue/onnxruntime_go v1.27.0, which asks for ORT C API 24, so
# onnxruntime ≥ 1.24; 1.30 is the version the design's peer figures used).
ORT_VERSION=1.30.0
ORT_DIR=.cache/onnxruntime
ORT_LIB=$ORT_DIR/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
if [ ! -f "$ORT_LIB" ] || ! grep -q "\"version\": \"$ORT_VERSION\"" "$ORT_DIR/node_modules/onnxruntime-node/package.json" 2>/dev/null; then
  echo "deps: installing onnxruntime-node@$ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  (cd "$ORT_DIR" && npm install --ignore-scripts --no-audit --no-fund --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  [ -f "$ORT_LIB" ] || { echo "deps: $ORT_LIB missing after npm install" >&2; exit 1; }
fi
