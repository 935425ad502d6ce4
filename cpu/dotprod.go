package cpu

/*
#include "isa.h"
*/
import "C"

import (
	"fmt"
	"sync/atomic"

	xcpu "golang.org/x/sys/cpu"
)

// At the arm64 level the int8 kernels use the Armv8.2 dot-product
// instruction (sdot) when the CPU has it (ASIMDDP: Cortex-A55/A76 and later,
// Neoverse, Apple M) and it is not switched off with SetDotProd (tests switch
// it off to cover the widening multiply-accumulate path of Armv8.0 cores
// such as the Raspberry Pi 4's Cortex-A72 on a CPU that has it).
var (
	hasDotProd = C.HW_ARM64 == 1 && xcpu.ARM64.HasASIMDDP
	useDotProd atomic.Bool
)

func init() { useDotProd.Store(hasDotProd) }

// HasDotProd reports whether the CPU has the arm64 dot-product instructions.
func HasDotProd() bool { return hasDotProd }

// SetDotProd switches the sdot path of the arm64 int8 kernels on or off;
// switching it on fails when the CPU lacks the instruction.
func SetDotProd(on bool) error {
	if on && !hasDotProd {
		return fmt.Errorf("the arm64 dot-product instructions (ASIMDDP) are not supported by this CPU")
	}
	useDotProd.Store(on)
	return nil
}
