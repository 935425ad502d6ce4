//go:build cgo

package cpu

import (
	"math/rand/v2"
	"testing"

	"hwnas/accel"
)

// BenchmarkQConvSmall times int8 against fp32 convolution at batch 1, one
// thread, on the small shapes of search candidates (8–32 channels, 28×28
// and 14×14 inputs): depthwise 3×3, grouped and 1×1 pointwise, and a
// stem 3×3 conv from one channel. int8 should not be slower than fp32.
func BenchmarkQConvSmall(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	k1 := NewKernels(1)
	for _, s := range []struct {
		name string
		conv accel.ConvParams
	}{
		{"stem3x3-1to16-28", accel.ConvParams{N: 1, C: 1, H: 28, W: 28, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1}},
		{"dw3x3-16-28", accel.ConvParams{N: 1, C: 16, H: 28, W: 28, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 16}},
		{"dw3x3-32-14-s2", accel.ConvParams{N: 1, C: 32, H: 28, W: 28, K: 32, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2, StrideW: 2, Groups: 32}},
		{"pw1x1-16to32-28", accel.ConvParams{N: 1, C: 16, H: 28, W: 28, K: 32, KH: 1, KW: 1}},
		{"pw1x1-8to16-14", accel.ConvParams{N: 1, C: 8, H: 14, W: 14, K: 16, KH: 1, KW: 1}},
		{"g4-1x1-32to32-14", accel.ConvParams{N: 1, C: 32, H: 14, W: 14, K: 32, KH: 1, KW: 1, Groups: 4}},
		{"conv3x3-16to16-14", accel.ConvParams{N: 1, C: 16, H: 14, W: 14, K: 16, KH: 3, KW: 3, PadH: 1, PadW: 1}},
	} {
		nx, nw, ny := s.conv.Sizes()
		x, w, y := randSlice(r, nx), randSlice(r, nw), make([]float32, ny)
		q := randQuant(r, s.conv.K, nw/s.conv.K, 8, 3)
		b.Run("int8/"+s.name, func(b *testing.B) {
			for b.Loop() {
				if err := k1.QConv2D(s.conv, x, q, nil, accel.ActReLU, y); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("fp32/"+s.name, func(b *testing.B) {
			for b.Loop() {
				if err := k1.Conv2D(s.conv, x, w, nil, accel.ActReLU, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, sz := range [][2]int{{392, 10}, {32, 10}} {
		in, out := sz[0], sz[1]
		x, y := randSlice(r, in), make([]float32, out)
		w := randSlice(r, in*out)
		q := randQuant(r, out, in, 8, 3)
		b.Run("int8/linear", func(b *testing.B) {
			for b.Loop() {
				if err := k1.QLinear(1, in, out, x, q, nil, accel.ActNone, y); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("fp32/linear", func(b *testing.B) {
			for b.Loop() {
				if err := k1.Sgemm(false, true, 1, out, in, 1, x, in, w, in, 0, y, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
