#!/usr/bin/env bash
# Installs what the tests and benchmarks need beyond Go modules, idempotently:
# Debian packages (OpenBLAS for the peer benchmark, python3-onnx for the ONNX
# checker) and onnxruntime's shared library from the npm package
# onnxruntime-node (into .cache/onnxruntime, no install scripts run).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libopenblas-dev python3-onnx; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
