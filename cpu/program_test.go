package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
	"hwnas/accel/accetest"
)

// The blocked program's register tiles run a row as tiles of near-equal
// width (linear layers: whole tiles of samples and one narrower one),
// each width its own unrolled instantiation: output rows of 1 to 25
// pixels (and linear batches of 1 to 25 samples) reach every width of
// every level, for one output block and for pairs, on plain and blocked
// inputs.
func TestProgramTileWidths(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 4))
	vec := func(n int) []float32 { return kRand(r, n) }
	// input gives the same n samples on every call (Check draws the
	// reference's input and the program's separately).
	input := func(size int) func(n int) []float32 {
		seed := r.Uint64()
		return func(n int) []float32 { return kRand(rand.New(rand.NewPCG(seed, 1)), n*size) }
	}
	conv := func(name string, in accel.Shape, cp accel.ConvParams, act accel.Act) accetest.Case {
		cp.StrideH, cp.StrideW = max(cp.StrideH, 1), max(cp.StrideW, 1)
		cp.DilH, cp.DilW = max(cp.DilH, 1), max(cp.DilW, 1)
		full := cp
		full.N, full.C, full.H, full.W = 1, in[0], in[1], in[2]
		_, nw, _ := full.Sizes()
		p := &accel.Plan{Name: name, Tensors: []accel.Shape{in, {cp.K, full.OutH(), full.OutW()}}, Input: 0, Output: 1,
			Ops: []accel.Op{{Name: "conv", Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Conv: cp, W: vec(nw),
				B: vec(cp.K), Act: act}}}
		return accetest.Case{Name: name, Plan: p, Input: input(in.Size())}
	}
	type tileCase struct {
		c     accetest.Case
		batch int
	}
	var cases []tileCase
	for w := 1; w <= 25; w++ {
		// 6 output channels: a full and a partial block at B = 4, one
		// partial block at B = 8 or 16.
		d := conv(fmt.Sprintf("conv3x3_w%d", w), accel.Shape{3, 2, w},
			accel.ConvParams{K: 6, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 1}, accel.ActReLU)
		dw := conv(fmt.Sprintf("dw3x3_w%d", w), accel.Shape{6, 2, w},
			accel.ConvParams{K: 6, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 6}, accel.ActNone)
		lin := accetest.Case{Name: fmt.Sprintf("linear_n%d", w), Input: input(7),
			Plan: &accel.Plan{Name: "linear", Tensors: []accel.Shape{{7}, {9}}, Input: 0, Output: 1,
				Ops: []accel.Op{{Name: "fc", Kind: accel.OpLinear, In: []int{0}, Out: []int{1}, W: vec(7 * 9),
					B: vec(9), Act: accel.ActReLU6}}}}
		// 20 output channels: pairs of blocks and a lone one at every
		// level; a plain 2-channel input's 5-wide kernel rows, and a
		// 10-channel input (blocked at B = 4 and 8).
		d5 := conv(fmt.Sprintf("conv5x5_c2_w%d", w), accel.Shape{2, 2, w},
			accel.ConvParams{K: 20, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 1}, accel.ActNone)
		db := conv(fmt.Sprintf("conv3x3_c10_w%d", w), accel.Shape{10, 1, w},
			accel.ConvParams{K: 20, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 1}, accel.ActReLU)
		// One output channel from a one-channel image (the pixel-vector
		// kernel, hw_nc_conv_px): every tail of a vector of pixels.
		px := conv(fmt.Sprintf("px3x3_s2_w%d", w), accel.Shape{1, 3, w},
			accel.ConvParams{K: 1, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 1}, accel.ActReLU)
		cases = append(cases, tileCase{d, 2}, tileCase{dw, 2}, tileCase{lin, w}, tileCase{d5, 1}, tileCase{db, 1}, tileCase{px, 2})
	}
	// Strides 2 (the pixel steps the kernel makes constants) and a dilated
	// plain input (one tap per kernel value, not per kernel row), 7-wide
	// kernel rows (not unrolled).
	for _, sc := range []struct {
		name string
		in   accel.Shape
		cp   accel.ConvParams
	}{
		{"plain_s2", accel.Shape{3, 9, 13}, accel.ConvParams{K: 20, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 1}},
		{"plain_d2", accel.Shape{3, 9, 13}, accel.ConvParams{K: 20, KH: 3, KW: 3, DilH: 2, DilW: 2, PadH: 2, PadW: 2, Groups: 1}},
		{"plain_7x7_s2", accel.Shape{1, 15, 15}, accel.ConvParams{K: 12, KH: 7, KW: 7, StrideH: 2, StrideW: 2, PadH: 3, PadW: 3, Groups: 1}},
		{"blocked_s2", accel.Shape{24, 9, 13}, accel.ConvParams{K: 20, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 1}},
		// Few output channels (hw_nc_conv_px where K·4 ≤ B): stride 3
		// with dilation, 5×5 stride 2 (two phases), 4×3 kernels with
		// padding on one side only, rows of 2–12 vectors of pixels.
		{"px_c2k2_5x5_s2", accel.Shape{2, 11, 23}, accel.ConvParams{K: 2, KH: 5, KW: 5, StrideH: 2, StrideW: 2, PadH: 2, PadW: 2, Groups: 1}},
		{"px_c3k1_d2_s3", accel.Shape{3, 12, 40}, accel.ConvParams{K: 1, KH: 3, KW: 3, StrideH: 3, StrideW: 3, DilH: 2, DilW: 2, PadH: 1, PadW: 2, Groups: 1}},
		{"px_c1k4_4x3_padw", accel.Shape{1, 7, 19}, accel.ConvParams{K: 4, KH: 4, KW: 3, PadW: 1, Groups: 1}},
		{"px_c1k1_wide", accel.Shape{1, 4, 97}, accel.ConvParams{K: 1, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 1}},
		{"px_c1k1_70", accel.Shape{1, 3, 70}, accel.ConvParams{K: 1, KH: 1, KW: 1, Groups: 1}},
	} {
		cases = append(cases, tileCase{conv(sc.name, sc.in, sc.cp, accel.ActReLU), 2})
	}
	// Depthwise convolutions handle their padding in the kernel: windows
	// crossing the border at either side and at the top and bottom,
	// strides and dilations that leave a few or no interior pixels, a
	// padding as wide as the kernel (pixels whose windows see nothing but
	// padding), each side's padding alone, and none.
	for _, sc := range []struct {
		name string
		in   accel.Shape
		cp   accel.ConvParams
	}{
		{"dw_c12_14_s2", accel.Shape{12, 14, 14}, accel.ConvParams{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"dw_5x5_s2", accel.Shape{12, 9, 13}, accel.ConvParams{KH: 5, KW: 5, StrideH: 2, StrideW: 2, PadH: 2, PadW: 2}},
		{"dw_7x7_s3", accel.Shape{20, 11, 17}, accel.ConvParams{KH: 7, KW: 7, StrideH: 3, StrideW: 3, PadH: 3, PadW: 3}},
		{"dw_d2", accel.Shape{10, 9, 13}, accel.ConvParams{KH: 3, KW: 3, DilH: 2, DilW: 2, PadH: 2, PadW: 2}},
		{"dw_kernel_wider", accel.Shape{6, 2, 3}, accel.ConvParams{KH: 5, KW: 5, PadH: 2, PadW: 2}},
		{"dw_pad_3", accel.Shape{6, 3, 4}, accel.ConvParams{KH: 3, KW: 3, PadH: 3, PadW: 3}},
		{"dw_pad_w", accel.Shape{9, 5, 30}, accel.ConvParams{KH: 3, KW: 3, PadW: 1}},
		{"dw_pad_h", accel.Shape{9, 5, 30}, accel.ConvParams{KH: 3, KW: 3, StrideW: 2, PadH: 1}},
		{"dw_3x1", accel.Shape{8, 6, 9}, accel.ConvParams{KH: 3, KW: 1, PadH: 1}},
		{"dw_s2_nopad", accel.Shape{12, 15, 15}, accel.ConvParams{KH: 3, KW: 3, StrideH: 2, StrideW: 2}},
		// A one-channel image's depthwise convolution is a 1 → 1 one.
		{"dw_c1_28_s2", accel.Shape{1, 28, 28}, accel.ConvParams{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
	} {
		sc.cp.K, sc.cp.Groups = sc.in[0], sc.in[0]
		cases = append(cases, tileCase{conv(sc.name, sc.in, sc.cp, accel.ActReLU6), 3})
	}
	eachLevel(t, func(t *testing.T, k *Kernels) {
		b := &Backend{kernels: k}
		for _, tc := range cases {
			nmse, err := accetest.Check(b, tc.c, tc.batch)
			if err != nil || nmse > accetest.MaxNMSE {
				t.Errorf("%s batch %d: NMSE %.3g, err %v", tc.c.Name, tc.batch, nmse, err)
			}
		}
	})
}
