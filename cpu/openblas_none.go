//go:build !openblas

package cpu

import "errors"

// PeerBuiltIn reports whether the OpenBLAS peer is linked into this binary;
// it is only in builds with the openblas tag (`make bench`).
const PeerBuiltIn = false

// ErrNoPeer is returned by PeerSgemm in builds without the openblas tag.
var ErrNoPeer = errors.New("openblas: not built in; build with -tags openblas (make bench)")

// PeerName is empty: no peer is linked into this build.
func PeerName() string { return "" }

// PeerSgemm returns ErrNoPeer: OpenBLAS is linked only with -tags openblas.
func PeerSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, threads int) error {
	return ErrNoPeer
}
