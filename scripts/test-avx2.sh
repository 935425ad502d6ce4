#!/usr/bin/env bash
# Runs the tests whose outcome depends on which integer kernels onnxruntime
# picks for this CPU on an emulated AVX2-only x86-64 CPU (qemu-user's
# EPYC-Rome model: AVX2 + FMA, no AVX-512, no VNNI), so a machine with
# AVX-512 VNNI checks what an AVX2 machine computes: onnxruntime's u8·s8
# kernels there add pairs of products in saturating 16 bits, and the
# exported int8 models must not depend on that. hwnas's own kernels are
# tested at every level natively (HWNAS_ISA / cpu.SetISA), so only
# onnxruntime needs the emulator. Emulation is slow: the tests chosen do
# not train.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-x86_64 >/dev/null || { echo "test-avx2: qemu-x86_64 missing (Debian package qemu-user; scripts/deps.sh installs it)" >&2; exit 1; }
mkdir -p bin
CGO_ENABLED=1 go test -c -o bin/onnx-avx2.test ./nas/onnx
cd nas/onnx
# TCG warns about CPUID bits it does not emulate (rdseed, sha-ni, ...): noise.
qemu-x86_64 -cpu EPYC-Rome ../../bin/onnx-avx2.test -test.v -test.count=1 \
  -test.run '^(TestInt8NoSaturation|TestFileStructure)$' 2> >(grep -v "TCG doesn't support requested feature" >&2) |
  grep -E '^(---|ok|PASS|FAIL)|saturation_test|output steps'
