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
)

// isaNames is indexed by the C level (HW_ISA_GENERIC, HW_ISA_AVX2, HW_ISA_AVX512).
var isaNames = [...]string{ISAGeneric, ISAAVX2, ISAAVX512}

// EnvISA is the environment variable that forces a level at start-up.
const EnvISA = "HWNAS_ISA"

var (
	isaLevel  atomic.Int32 // current level, a C HW_ISA_* value
	bestLevel int32        // the highest level this CPU supports
	envISAErr error        // why HWNAS_ISA was not honoured, if it was not
)

func init() {
	bestLevel = detectLevel()
	isaLevel.Store(bestLevel)
	if v := os.Getenv(EnvISA); v != "" {
		if err := SetISA(v); err != nil {
			envISAErr = fmt.Errorf("%s=%s: %w; using %s", EnvISA, v, err, isaNames[bestLevel])
			// Reported once, at start-up: the process goes on at the best level.
			fmt.Fprintln(os.Stderr, "hwnas:", envISAErr)
		}
	}
}

// detectLevel finds the highest level the CPU and OS support (x/sys/cpu
// reports AVX and AVX-512 only when the OS saves their registers).
func detectLevel() int32 {
	if C.HW_X86 == 0 {
		return C.HW_ISA_GENERIC
	}
	x := xcpu.X86
	switch {
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX2 && x.HasFMA:
		return C.HW_ISA_AVX512
	case x.HasAVX2 && x.HasFMA:
		return C.HW_ISA_AVX2
	}
	return C.HW_ISA_GENERIC
}

// ISA returns the level the kernels use now: "generic", "avx2" or "avx512".
func ISA() string { return isaNames[isaLevel.Load()] }

// SupportedISAs lists the levels this CPU can run, portable first.
func SupportedISAs() []string {
	return append([]string(nil), isaNames[:bestLevel+1]...)
}

// SetISA makes the kernels use level from now on, for every goroutine. It
// returns an error, and changes nothing, when the level is unknown or this
// CPU lacks it. Tests use it to cover each level on one machine.
func SetISA(level string) error {
	for i, n := range isaNames {
		if n != level {
			continue
		}
		if int32(i) > bestLevel {
			return fmt.Errorf("ISA level %q is not supported by this CPU (supported: %s)", level, strings.Join(SupportedISAs(), ", "))
		}
		isaLevel.Store(int32(i))
		return nil
	}
	return fmt.Errorf("unknown ISA level %q (known: %s)", level, strings.Join(isaNames[:], ", "))
}

// EnvISAError says why the HWNAS_ISA environment variable was not honoured
// at start-up, or returns nil when it was unset or honoured.
func EnvISAError() error { return envISAErr }

// cISA is the current level as the C kernels take it.
func cISA() C.int { return C.int(isaLevel.Load()) }
