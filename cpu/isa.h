/* Instruction-set levels of the C kernels, chosen at run time by isa.go and
 * passed to every kernel as an int argument. Higher levels include the lower
 * ones: AVX-512 means AVX-512F/BW/VL/DQ plus AVX2 and FMA. HW_ISA_ARM64 is
 * the Armv8-A Advanced SIMD (NEON) level, on arm64 only (value 3 is
 * qgemm.h's VNNI level). */
#ifndef HWNAS_CPU_ISA_H
#define HWNAS_CPU_ISA_H

enum { HW_ISA_GENERIC = 0, HW_ISA_AVX2 = 1, HW_ISA_AVX512 = 2, HW_ISA_ARM64 = 4 };

/* HW_X86 is 1 when the ISA-specific files can be compiled (x86 with GCC or
 * clang target pragmas); elsewhere they compile to nothing. */
#if defined(__x86_64__) || defined(__i386__)
#define HW_X86 1
#else
#define HW_X86 0
#endif

/* HW_ARM64 is 1 when the NEON files (*_neon.c) can be compiled: AArch64,
 * where Advanced SIMD is part of the base architecture. */
#if defined(__aarch64__)
#define HW_ARM64 1
#else
#define HW_ARM64 0
#endif

#endif
