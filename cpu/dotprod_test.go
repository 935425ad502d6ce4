package cpu

import (
	"strings"
	"testing"
)

func TestSetDotProd(t *testing.T) {
	prevISA, prev, prevVNNI := ISA(), useDotProd.Load(), useVNNI.Load()
	defer func() {
		SetISA(prevISA)
		useDotProd.Store(prev)
		useVNNI.Store(prevVNNI)
	}()
	if err := SetDotProd(false); err != nil {
		t.Fatal(err)
	}
	if err := SetDotProd(true); (err == nil) != HasDotProd() {
		t.Errorf("SetDotProd(true) = %v with HasDotProd() = %v", err, HasDotProd())
	}
	// QISA names the int8 path: arm64+dotprod only at the arm64 level with
	// sdot on, the plain level otherwise.
	for _, l := range SupportedISAs() {
		if err := SetISA(l); err != nil {
			t.Fatal(err)
		}
		SetVNNI(false)
		SetDotProd(false)
		if got := QISA(); got != l {
			t.Errorf("QISA() at %s without dot products = %q", l, got)
		}
		if l == ISAARM64 && HasDotProd() {
			SetDotProd(true)
			if got := QISA(); got != "arm64+dotprod" {
				t.Errorf("QISA() at arm64 with sdot = %q, want arm64+dotprod", got)
			}
		}
	}
	if HasDotProd() && !strings.Contains(strings.Join(SupportedISAs(), ","), ISAARM64) {
		t.Errorf("dot product reported off arm64 (levels %v)", SupportedISAs())
	}
}
