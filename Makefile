# hwnas — see README.md. CGO is required: the kernels are C.
GO      ?= go
BIN     ?= bin/hwnas
DATA    ?= data/mnist
export CGO_ENABLED = 1
# go-nvml's headers warn about deprecated declarations.
export CGO_CFLAGS ?= -O2 -Wno-deprecated-declarations

.PHONY: all build test vet bench data cuda deps run clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/hwnas

vet:
	$(GO) vet ./...

# The test command of the README: installs what the tests need, then runs them.
test: deps vet
	$(GO) test -count=1 -timeout 20m ./...

data: build
	$(BIN) data --out $(DATA)

# SGEMM beside OpenBLAS in the same run: a separate binary carries the peer
# (-tags openblas, libopenblas-dev from deps), and OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE are unset so OpenBLAS picks its kernel for this CPU.
BENCH_BIN ?= bin/hwnas-bench
bench: deps
	$(GO) build -tags openblas -o $(BENCH_BIN) ./cmd/hwnas
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BENCH_BIN) bench kernels $(BENCH_ARGS)

cuda:
	@echo "make cuda: the CUDA backend is not built yet (see issue 6)"; exit 1

deps:
	@scripts/deps.sh

clean:
	rm -rf bin
