#!/usr/bin/env bash
# Checks ONNX files (e.g. from `hwnas export`) with the onnx package's full
# checker (onnx.checker.check_model with full_check: schema, types and shape
# inference), as the nas/onnx tests do. Uses $HWNAS_PYTHON, else the first
# of python3 and Debian's /usr/bin/python3 (python3-onnx, installed by
# scripts/deps.sh) that imports onnx. Exit status 1 when a file fails.
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 MODEL.onnx..." >&2
  exit 2
fi
py=""
for cand in "${HWNAS_PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$cand" ] && "$cand" -c 'import onnx' >/dev/null 2>&1; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  echo "onnx-check: no python3 with the onnx package (run scripts/deps.sh)" >&2
  exit 2
fi
exec "$py" - "$@" <<'PY'
import sys, onnx
bad = 0
for path in sys.argv[1:]:
    try:
        m = onnx.load(path)
        onnx.checker.check_model(m, full_check=True)
        print("%s: ok (IR %d, opset %d, %d nodes)" % (path, m.ir_version, m.opset_import[0].version, len(m.graph.node)))
    except Exception as e:
        bad += 1
        print("%s: %s" % (path, e))
sys.exit(1 if bad else 0)
PY
