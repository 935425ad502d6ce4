//go:build !cgo

package main

// hwnas runs its kernels in C through cgo; a CGO_ENABLED=0 build stops here
// with this message instead of failing later at run time.
var _ = hwnas_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler
