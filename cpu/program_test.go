package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
	"hwnas/accel/accetest"
)

// The blocked program's register tiles run a row as whole tiles of the
// level's widest width (6 or 12 pixels, or samples for linear layers)
// and one narrower tile, each width its own unrolled instantiation:
// output rows of 1 to 25 pixels (and linear batches of 1 to 25 samples)
// reach every width of every level, with two full tiles before the rest.
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
		cp.StrideH, cp.StrideW, cp.DilH, cp.DilW = 1, 1, 1, 1
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
		cases = append(cases, tileCase{d, 2}, tileCase{dw, 2}, tileCase{lin, w})
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
