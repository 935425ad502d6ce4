//go:build openblas

package cpu

// The OpenBLAS peer is linked only into benchmark builds (go build -tags
// openblas, `make bench`); hwnas's own kernels never call it.

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// PeerBuiltIn reports whether the OpenBLAS peer is linked into this binary.
const PeerBuiltIn = true

// PeerName describes the peer library and the kernel it picked for this
// CPU, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... (core Cooperlake)".
// OpenBLAS picks its core from the CPU unless OPENBLAS_CORETYPE overrides it.
func PeerName() string {
	cfg := C.GoString(C.openblas_get_config())
	core := C.GoString(C.openblas_get_corename())
	return fmt.Sprintf("%s (core %s)", cfg, core)
}

// PeerSgemm computes the same product as Sgemm with OpenBLAS's cblas_sgemm
// on threads threads (<= 0: runtime.NumCPU()); the arguments are checked as
// Sgemm checks them. OpenBLAS's thread count is process-wide: it is set on
// every call.
func PeerSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, threads int) error {
	if err := checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	C.openblas_set_num_threads(C.int(threads))
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	// OpenBLAS wants ld >= 1 even for empty operands and may not read them.
	var dummy [1]float32
	ap, bp := unsafe.Pointer(&dummy[0]), unsafe.Pointer(&dummy[0])
	if len(a) > 0 {
		ap = unsafe.Pointer(&a[0])
	}
	if len(b) > 0 {
		bp = unsafe.Pointer(&b[0])
	}
	C.cblas_sgemm(C.CblasRowMajor, C.enum_CBLAS_TRANSPOSE(ta), C.enum_CBLAS_TRANSPOSE(tb), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(ap), C.blasint(max(lda, 1)), (*C.float)(bp), C.blasint(max(ldb, 1)),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(max(ldc, 1)))
	return nil
}
