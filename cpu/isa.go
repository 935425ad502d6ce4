package cpu

/*
#include "isa.h"
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	xcpu "golang.org/x/sys/cpu"
)

// Kernel instruction-set levels, from the most portable to the fastest.
const (
	ISAGeneric = "generic" // portable C, compiled for the baseline target
	ISAAVX2    = "avx2"    // AVX2 + FMA
	ISAAVX512  = "avx512"  // AVX-512 F, BW, VL and DQ (+ AVX2, FMA)
	ISAARM64   = "arm64"   // Armv8-A Advanced SIMD (NEON); int8 adds sdot where the CPU has it (QISA)
)

// isaLevel is one kernel level: its name and its C HW_ISA_* value.
type isaLevel struct {
	name string
	c    int32
}

// archLevels lists the levels this architecture's kernels have, portable
// first; each includes the ones before it.
var archLevels = func() []isaLevel {
	switch {
	case C.HW_X86 == 1:
		return []isaLevel{{ISAGeneric, C.HW_ISA_GENERIC}, {ISAAVX2, C.HW_ISA_AVX2}, {ISAAVX512, C.HW_ISA_AVX512}}
	case C.HW_ARM64 == 1:
		return []isaLevel{{ISAGeneric, C.HW_ISA_GENERIC}, {ISAARM64, C.HW_ISA_ARM64}}
	}
	return []isaLevel{{ISAGeneric, C.HW_ISA_GENERIC}}
}()

// isaNames lists every level hwnas knows, on any architecture.
var isaNames = [...]string{ISAGeneric, ISAAVX2, ISAAVX512, ISAARM64}

// EnvISA is the environment variable that forces a level at start-up.
const EnvISA = "HWNAS_ISA"

var (
	curLevel  atomic.Int32 // index into archLevels of the level in use
	bestLevel int32        // index into archLevels of the highest level this CPU supports
	envISAErr error        // why HWNAS_ISA was not honoured, if it was not
)

func init() {
	bestLevel = detectLevel()
	curLevel.Store(bestLevel)
	if v := os.Getenv(EnvISA); v != "" {
		if err := SetISA(v); err != nil {
			envISAErr = fmt.Errorf("%s=%s: %w; using %s", EnvISA, v, err, archLevels[bestLevel].name)
			// Reported once, at start-up: the process goes on at the best level.
			fmt.Fprintln(os.Stderr, "hwnas:", envISAErr)
		}
	}
}

// detectLevel finds the highest level the CPU and OS support (x/sys/cpu
// reports AVX and AVX-512 only when the OS saves their registers; on arm64
// it reads the kernel's hardware capabilities).
func detectLevel() int32 {
	want := ISAGeneric
	switch x, a := xcpu.X86, xcpu.ARM64; {
	case C.HW_X86 == 1 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX2 && x.HasFMA:
		want = ISAAVX512
	case C.HW_X86 == 1 && x.HasAVX2 && x.HasFMA:
		want = ISAAVX2
	case C.HW_ARM64 == 1 && a.HasASIMD:
		want = ISAARM64
	}
	for i, l := range archLevels {
		if l.name == want {
			return int32(i)
		}
	}
	return 0
}

// ISA returns the level the kernels use now: "generic", "avx2", "avx512"
// or "arm64".
func ISA() string { return archLevels[curLevel.Load()].name }

// SupportedISAs lists the levels this CPU can run, portable first.
func SupportedISAs() []string {
	var s []string
	for _, l := range archLevels[:bestLevel+1] {
		s = append(s, l.name)
	}
	return s
}

// SetISA makes the kernels use level from now on, for every goroutine. It
// returns an error, and changes nothing, when the level is unknown or this
// CPU lacks it. Tests use it to cover each level on one machine.
func SetISA(level string) error {
	for i, l := range archLevels[:bestLevel+1] {
		if l.name == level {
			curLevel.Store(int32(i))
			return nil
		}
	}
	for _, n := range isaNames {
		if n == level {
			return fmt.Errorf("ISA level %q is not supported by this CPU (supported: %s)", level, strings.Join(SupportedISAs(), ", "))
		}
	}
	return fmt.Errorf("unknown ISA level %q (known: %s)", level, strings.Join(isaNames[:], ", "))
}

// EnvISAError says why the HWNAS_ISA environment variable was not honoured
// at start-up, or returns nil when it was unset or honoured.
func EnvISAError() error { return envISAErr }

// cISA is the current level as the C kernels take it.
func cISA() C.int { return C.int(archLevels[curLevel.Load()].c) }
