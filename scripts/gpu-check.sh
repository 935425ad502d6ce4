#!/usr/bin/env bash
# GPU check of the CUDA backend (issue 6), in two halves:
#
#   scripts/gpu-check.sh build        on the build machine (Go, nvcc):
#       installs the CUDA toolkit if missing (scripts/install-cuda.sh), runs
#       `make cuda`, and puts stripped binaries and data into bin/gpu/
#       (git-ignored, < 64 MiB): hwnas-cuda, hwnas (CPU build, reaches the GPU
#       through the cuda-worker protocol), cuda.test (`go test -c -tags cuda
#       ./cuda/`), mbv2_small.json (from scripts/torch_peer.py), mnist/.
#
#   scripts/gpu-check.sh run "$OUT"   on the GPU machine (no Go there), as ONE
#       device call that carries bin/gpu, in well under 5 minutes:
#
#         run(command='scripts/gpu-check.sh run "$OUT"', carry=["bin/gpu"], timeout_s=420)
#
#       It writes into $OUT: nvidia-smi.txt, cuda-test.txt (conformance suite
#       and the GPU tests, -test.v), devices-cuda.json, devices-remote.json,
#       bench_<arch>_b<batch>.json (hwnas-cuda bench model, LeNet-5 and
#       mbv2_small at batch 1 and 256), remote_lenet5_b1.json (the same through
#       the CPU binary's worker), sgemm.json (hwnas-cuda bench cuda, 1024³ and
#       4096³), search.json and best.json (a 3-trial study measured on
#       cuda:0), torch_peer.json and summary.txt (PyTorch eager / CUDA graph /
#       cuBLAS beside hwnas, with issue 6's acceptance ratios). Each step's exit
#       status is in steps.txt; a failing step does not stop the others.
set -euo pipefail
cd "$(dirname "$0")/.."
G=bin/gpu

build() {
	scripts/install-cuda.sh
	export CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}"
	make cuda
	mkdir -p "$G"
	go build -tags cuda -ldflags "-s -w" -o "$G/hwnas-cuda" ./cmd/hwnas
	go build -ldflags "-s -w" -o "$G/hwnas" ./cmd/hwnas
	go test -c -tags cuda -ldflags "-s -w" -o "$G/cuda.test" ./cuda/
	python3 scripts/torch_peer.py --emit-arch mbv2_small >"$G/mbv2_small.json"
	if [ ! -d "$G/mnist" ]; then
		"$G/hwnas" data --out "$G/mnist" || echo "gpu-check: no MNIST for the search step" >&2
	fi
	du -sh "$G"
	local kib
	kib=$(du -sk "$G" | cut -f1)
	if [ "$kib" -ge $((64 * 1024)) ]; then
		echo "gpu-check: $G is ${kib} KiB, over the 64 MiB a device call carries" >&2
		exit 1
	fi
	echo "gpu-check: built; now one device call: run(command='scripts/gpu-check.sh run \"\$OUT\"', carry=[\"$G\"], timeout_s=420)"
}

# step NAME LIMIT_S CMD... runs CMD with a time limit, stdout to $OUT/NAME,
# and records its exit status.
step() {
	local name=$1 limit=$2
	shift 2
	local t0=$SECONDS rc=0
	timeout "$limit" "$@" >"$OUT/$name" 2>"$OUT/$name.stderr" || rc=$?
	[ -s "$OUT/$name.stderr" ] || rm -f "$OUT/$name.stderr"
	printf '%-24s rc=%-3s %3ss  %s\n' "$name" "$rc" $((SECONDS - t0)) "$*" | tee -a "$OUT/steps.txt"
}

run() {
	OUT=${1:?usage: scripts/gpu-check.sh run OUTDIR}
	mkdir -p "$OUT"
	: >"$OUT/steps.txt"
	for f in hwnas-cuda hwnas cuda.test mbv2_small.json; do
		[ -e "$G/$f" ] || { echo "gpu-check: $G/$f missing: run scripts/gpu-check.sh build and carry $G" >&2; exit 1; }
	done
	export HWNAS_CUDA_BIN=$PWD/$G/hwnas-cuda
	step nvidia-smi.txt 30 nvidia-smi
	step cuda-test.txt 150 "$G/cuda.test" -test.v -test.count=1 -test.timeout=140s
	step devices-cuda.json 30 "$G/hwnas-cuda" devices --json
	step devices-remote.json 60 "$G/hwnas" devices --json
	for arch in lenet5 mbv2_small; do
		a=$arch
		[ "$arch" = mbv2_small ] && a=$G/mbv2_small.json
		for b in 1 256; do
			step "bench_${arch}_b$b.json" 60 "$G/hwnas-cuda" bench model --arch "$a" --batch "$b" --device cuda:0 --json
		done
	done
	step remote_lenet5_b1.json 60 "$G/hwnas" bench model --arch lenet5 --batch 1 --device cuda:0 --json
	step sgemm.json 60 "$G/hwnas-cuda" bench cuda --sgemm 1024,4096 --json
	if [ -d "$G/mnist" ]; then
		step search.json 150 "$G/hwnas-cuda" search --study gpu-check --db "$OUT/gpu.db" --device cuda:0 \
			--strategy random --trials 3 --epochs 1 --subset 2000 --val-subset 1000 --data "$G/mnist" --json
		step best.json 30 "$G/hwnas-cuda" best --db "$OUT/gpu.db" --device cuda:0 --json
	fi
	step torch_peer.json 180 python3 scripts/torch_peer.py --hwnas "$OUT" --json
	if [ -s "$OUT/torch_peer.json" ]; then
		python3 scripts/torch_peer.py --report "$OUT/torch_peer.json" >"$OUT/summary.txt" 2>&1 || true
	fi
	touch "$OUT/summary.txt"
	grep -E "^(--- FAIL|FAIL|ok|PASS)" "$OUT/cuda-test.txt" | tail -20 || true
	cat "$OUT/summary.txt"
}

case "${1:-}" in
build) build ;;
run) run "${2:-}" ;;
*)
	sed -n '2,28p' "$0"
	exit 2
	;;
esac
