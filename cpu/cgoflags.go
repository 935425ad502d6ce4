package cpu

// The package's C flags live here, once, for every C file in package cpu.
//
// Convention for instruction-set-specific C code: there is NO global -mavx*
// flag, so the package builds and runs on any x86-64 (and non-x86) machine.
// Each ISA-specific C file instead starts with, inside an x86 guard,
//
//	#if defined(__x86_64__) || defined(__i386__)
//	#pragma GCC target("avx2,fma")                                  // AVX2 level
//	#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")    // AVX-512 level
//	#include <immintrin.h>
//	...
//	#endif
//
// (or marks single functions with __attribute__((target("...")))), and its
// functions are only called when the run-time level (isa.go, passed to C as
// an int from isa.h) says the CPU has those instructions. C kernels take that
// level as an argument; there is no global C state.
//
// -O3 vectorises the portable C. CGO_CFLAGS from the environment (the
// Makefile's -O2) come before these, so -O3 wins. The go command refuses
// -fno-math-errno in #cgo lines (security allow-list); a C file that wants
// sqrtf inlined writes `#pragma GCC optimize("no-math-errno")` itself.

// #cgo CFLAGS: -O3 -std=gnu11 -Wall
// #cgo LDFLAGS: -lm -lpthread
import "C"
