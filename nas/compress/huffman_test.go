package compress

import (
	"math/rand"
	"slices"
	"testing"
)

func TestHuffmanRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	skewed := make([]uint32, 5000)
	for i := range skewed {
		skewed[i] = uint32(rng.ExpFloat64() * 3) // geometric-like: few symbols dominate
	}
	wide := make([]uint32, 3000)
	for i := range wide {
		wide[i] = rng.Uint32()
	}
	cases := []struct {
		name string
		syms []uint32
	}{
		{"empty", []uint32{}},
		{"one", []uint32{7}},
		{"one symbol repeated", []uint32{3, 3, 3, 3, 3, 3}},
		{"two symbols", []uint32{0, 1, 1, 1, 0, 1}},
		{"max symbol", []uint32{0xffffffff, 0, 0xffffffff}},
		{"skewed", skewed},
		{"wide alphabet", wide},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := HuffmanEncode(c.syms)
			// A trailing stream must not confuse the decoder about where this one ends.
			got, n, err := HuffmanDecode(append(slices.Clone(b), 0xAA, 0x55))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Errorf("decoder consumed %d bytes, encoder wrote %d", n, len(b))
			}
			if !slices.Equal(got, c.syms) {
				t.Fatalf("round trip differs: got %d symbols, want %d", len(got), len(c.syms))
			}
		})
	}
}

func TestHuffmanProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for trial := 0; trial < 200; trial++ {
		n := rng.Intn(400)
		alpha := 1 + rng.Intn(40)
		syms := make([]uint32, n)
		for i := range syms {
			syms[i] = uint32(rng.Intn(alpha)) * uint32(1+rng.Intn(3))
		}
		b := HuffmanEncode(syms)
		got, used, err := HuffmanDecode(b)
		if err != nil || used != len(b) || !slices.Equal(got, syms) {
			t.Fatalf("trial %d (n=%d): err=%v used=%d/%d equal=%v", trial, n, err, used, len(b), slices.Equal(got, syms))
		}
	}
}

func TestHuffmanCompressesSkewedStreams(t *testing.T) {
	// 90% zeros, 10% spread over 15 symbols: entropy ≈ 0.86 bits/symbol,
	// so the payload must be well under the 4 bits of a fixed-width code.
	rng := rand.New(rand.NewSource(3))
	syms := make([]uint32, 10000)
	for i := range syms {
		if rng.Float64() >= 0.9 {
			syms[i] = 1 + uint32(rng.Intn(15))
		}
	}
	bits := HuffmanBits(syms)
	if perSym := float64(bits) / float64(len(syms)); perSym > 1.6 || perSym < 0.86 {
		t.Errorf("%.3f bits per symbol, want between entropy 0.86 and 1.6", perSym)
	}
	if got := len(HuffmanEncode(syms)); got > bits/8+64 {
		t.Errorf("encoded %d bytes for %d payload bits", got, bits)
	}
}

func TestHuffmanDecodeRejectsCorruptInput(t *testing.T) {
	good := HuffmanEncode([]uint32{1, 2, 3, 1, 1, 2, 9, 9, 9, 9})
	cases := map[string][]byte{
		"empty input":      {},
		"truncated header": good[:2],
		"truncated stream": good[:len(good)-2],
	}
	for name, b := range cases {
		if _, _, err := HuffmanDecode(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
