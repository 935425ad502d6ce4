// Package cpu is the accel backend that runs C kernels through cgo, with the
// instruction set (AVX-512, AVX2+FMA, arm64 NEON, portable C) picked once at
// start-up.
package cpu
