//go:build !openblas

package cpu

import (
	"errors"
	"testing"
)

func TestPeerNotBuiltIn(t *testing.T) {
	buf := make([]float32, 4)
	if err := PeerSgemm(false, false, 2, 2, 1, 1, buf, 1, buf, 2, 0, buf, 2, 1); !errors.Is(err, ErrNoPeer) {
		t.Errorf("PeerSgemm without the openblas tag = %v, want ErrNoPeer", err)
	}
	if PeerBuiltIn || PeerName() != "" {
		t.Errorf("PeerBuiltIn %v PeerName %q, want false and empty", PeerBuiltIn, PeerName())
	}
}
