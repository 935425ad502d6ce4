#!/usr/bin/env bash
# The C and CUDA sources keep one style: four-space indentation (no tabs
# anywhere) and no trailing whitespace. Run by `make vet` (so by `make
# test` and CI); prints each offending line and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(ls cpu/*.c cpu/*.h cuda/*.cu cuda/*.h 2>/dev/null || true)
bad=0
if grep -n $'\t' $files; then
    echo "check-c-style: tabs in the lines above (indent with four spaces: expand -i -t 4 FILE)" >&2
    bad=1
fi
if grep -n -E '[[:space:]]+$' $files; then
    echo "check-c-style: trailing whitespace in the lines above" >&2
    bad=1
fi
exit $bad
