# hwnas — see README.md. CGO is required: the kernels are C.
GO      ?= go
BIN     ?= bin/hwnas
DATA    ?= data/mnist
export CGO_ENABLED = 1
# go-nvml's headers warn about deprecated declarations.
export CGO_CFLAGS ?= -O2 -Wno-deprecated-declarations

.PHONY: all build test test-avx2 vet vet-darwin bench data cuda deps run clean results bench-search bench-search-fashion arm64 test-arm64 search-arm64

all: build

build:
	$(GO) build -o $(BIN) ./cmd/hwnas

vet:
	$(GO) vet ./...
	scripts/check-c-style.sh

# The Go side type-checked for macOS: Linux-only process code lives in
# _linux.go files. Left out: package cpu (its kernels are cgo, and
# cross-compiling cgo needs a macOS toolchain) and cmd/hwnas (it refuses to
# build without cgo on purpose, nocgo.go); test files that need cgo carry
# the cgo build tag.
vet-darwin:
	GOOS=darwin CGO_ENABLED=0 $(GO) vet $$($(GO) list ./... | grep -v -e '^hwnas/cpu$$' -e '^hwnas/cmd/hwnas$$')

# The test command of the README: installs what the tests need, then runs
# them, and says which kernel levels (ISA) this CPU let them cover.
test: deps vet
	$(GO) test -count=1 -timeout 20m ./...
	@$(GO) test -count=1 -run '^TestKernelLevels$$' -v ./cpu | grep -E 'kernel level' | sed 's/^ *isa_test.go:[0-9]*: /cpu: /'

# The int8 export's agreement with onnxruntime on an emulated AVX2-only CPU
# (qemu-user), whatever CPU runs it: see scripts/test-avx2.sh.
test-avx2: deps
	@scripts/test-avx2.sh

data: build
	$(BIN) data --out $(DATA)

# docs/RESULTS.md: Deep Compression on LeNet-5 and LeNet-300-100 reproduced
# and beaten (trains the baselines once into .cache/repro; about 10 minutes
# on 2 cores).
results: data
	$(BIN) repro deep-compression --data $(DATA) --out docs/RESULTS.md

# The README's main job: a short real search on MNIST into hwnas.db (a few
# minutes on 2 cores; run it again to resume or extend), then the best models
# found for this CPU.
RUN_STUDY  ?= quickstart
RUN_TRIALS ?= 20
run: data
	$(BIN) search --study $(RUN_STUDY) --trials $(RUN_TRIALS) --subset 2000 --data $(DATA)
	$(BIN) best --device cpu -n 5

# SGEMM beside OpenBLAS in the same run: a separate binary carries the peer
# (-tags openblas, libopenblas-dev from deps), and OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE are unset so OpenBLAS picks its kernel for this CPU.
BENCH_BIN ?= bin/hwnas-bench
bench: deps
	$(GO) build -tags openblas -o $(BENCH_BIN) ./cmd/hwnas
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BENCH_BIN) bench kernels $(BENCH_ARGS)

# rl, random and evolution at an equal trial budget over 3 seeds on MNIST
# (real trials, resumable: the studies live in bench-search.db); writes
# the MNIST section of docs/SEARCH.md. About an hour on 2 cores.
bench-search: data
	$(BIN) bench search --db bench-search.db --data $(DATA) --title MNIST --trials 40 --seeds 3 --subset 1000 --out docs/SEARCH.md $(SEARCH_ARGS)

# The same comparison on Fashion-MNIST (Debian's dataset-fashion-mnist)
# with its size budget (≤ 50 KB); its own section of docs/SEARCH.md. About
# 20 minutes on 2 cores.
FASHION ?= data/fashion
bench-search-fashion: build
	$(BIN) data --set fashion-mnist --out $(FASHION)
	$(BIN) bench search --db bench-search.db --data $(FASHION) --space spaces/fashion-mnist.json --prefix fashion-space \
		--title Fashion-MNIST --trials 30 --seeds 2 --subset 5000 --epochs 2 \
		--latency-target 0.2xlenet5 --max-bytes 50000 --out docs/SEARCH.md $(SEARCH_ARGS)

# The CUDA build (needs nvcc and cuda.h: scripts/install-cuda.sh): kernels.cu
# into one fatbin (SASS for sm_80 and sm_90, PTX for compute_80 that newer GPUs
# JIT), embedded by the cuda package; bin/hwnas-cuda links only libcuda.so.1.
NVCC      ?= nvcc
CUDA_BIN  ?= bin/hwnas-cuda
CUDA_GENCODE ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_80,code=compute_80

cuda/kernels.fatbin: cuda/kernels.cu
	$(NVCC) -O3 -std=c++14 -fatbin $(CUDA_GENCODE) -o $@ $<

cuda: cuda/kernels.fatbin
	$(GO) build -tags cuda -o $(CUDA_BIN) ./cmd/hwnas

# arm64 (Raspberry Pi 4/5, Graviton, Jetson, Apple silicon under Linux):
# cross-built with Debian's gcc-aarch64-linux-gnu (scripts/deps.sh), tested
# under qemu-aarch64 on each CPU model of ARM64_CPUS: max has the Armv8.2
# dot product (the sdot/udot int8 path), cortex-a72 (Pi 4) lacks it.
# scripts/qemu-arm64.sh registers qemu with binfmt_misc (root or sudo) so
# test binaries and the worker processes they start run as on a board.
# -short: the tests that train and evaluate on MNIST use fewer images
# (emulation is 20-50x slower); every test runs. Emulation says nothing
# about speed: docs/ARM64.md.
ARM64_BIN  ?= bin/hwnas-arm64
ARM64_CC   ?= aarch64-linux-gnu-gcc
ARM64_GO    = env GOARCH=arm64 CC=$(ARM64_CC) $(GO)
ARM64_CPUS ?= max cortex-a72
ARM64_PKGS ?= ./cpu/ ./accel/... ./nas/... ./store/

arm64:
	$(ARM64_GO) build -o $(ARM64_BIN) ./cmd/hwnas

test-arm64: deps
	$(ARM64_GO) vet ./...
	for c in $(ARM64_CPUS); do \
	  echo "== arm64 tests under qemu-aarch64 -cpu $$c =="; \
	  scripts/qemu-arm64.sh $$c $(ARM64_GO) test -short -count=1 -timeout 60m $(ARM64_PKGS) || exit 1; \
	  scripts/qemu-arm64.sh $$c $(ARM64_GO) test -count=1 -run '^TestKernelLevels$$' -v ./cpu | \
	    grep -E 'kernel level' | sed "s/^ *isa_test.go:[0-9]*: /cpu ($$c): /"; \
	done

# A 3-trial search with the arm64 binary under qemu, end to end (worker
# processes, training, compression, latency, the predictor's sweep, SQLite):
# a functional check (a sweep of 2 networks: each takes seconds under qemu).
SEARCH_ARM64_DB ?= bin/search-arm64.db
search-arm64: arm64 data
	rm -f $(SEARCH_ARM64_DB)*
	scripts/qemu-arm64.sh max $(ARM64_BIN) search --db $(SEARCH_ARM64_DB) --study arm64 --data $(DATA) \
	  --trials 3 --subset 500 --val-subset 500 --epochs 1 --predictor-sweep 2
	scripts/qemu-arm64.sh max $(ARM64_BIN) best --db $(SEARCH_ARM64_DB) --device cpu -n 3

deps:
	@scripts/deps.sh

clean:
	rm -rf bin
