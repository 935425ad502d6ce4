package cuda

import (
	"math"
	"strings"
	"testing"

	"hwnas/accel"
)

// lenet5 is the LeNet-5 of DESIGN.md as a plan: conv 20@5×5, max pool 2,
// conv 50@5×5, max pool 2, flatten, fc 500 (ReLU), fc 10.
func lenet5() *accel.Plan {
	w := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(math.Sin(float64(i)))
		}
		return v
	}
	pool := accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2}
	return &accel.Plan{
		Name:    "lenet5",
		Tensors: []accel.Shape{{1, 28, 28}, {20, 24, 24}, {20, 12, 12}, {50, 8, 8}, {50, 4, 4}, {800}, {500}, {10}},
		Input:   0, Output: 7,
		Ops: []accel.Op{
			{Name: "conv1", Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Conv: accel.ConvParams{K: 20, KH: 5, KW: 5}, W: w(500), B: w(20)},
			{Name: "pool1", Kind: accel.OpMaxPool, In: []int{1}, Out: []int{2}, Pool: pool},
			{Name: "conv2", Kind: accel.OpConv, In: []int{2}, Out: []int{3}, Conv: accel.ConvParams{K: 50, KH: 5, KW: 5}, W: w(25000), B: w(50)},
			{Name: "pool2", Kind: accel.OpMaxPool, In: []int{3}, Out: []int{4}, Pool: pool},
			{Name: "flat", Kind: accel.OpFlatten, In: []int{4}, Out: []int{5}},
			{Name: "fc1", Kind: accel.OpLinear, In: []int{5}, Out: []int{6}, Act: accel.ActReLU, W: w(400000), B: w(500)},
			{Name: "fc2", Kind: accel.OpLinear, In: []int{6}, Out: []int{7}, W: w(5000), B: w(10)},
		},
	}
}

var h100 = deviceLimits{SMs: 132}

func kernels(lp *launchPlan) string {
	var k []string
	for _, l := range lp.Launches {
		k = append(k, l.Kernel)
	}
	return strings.Join(k, " ")
}

func TestChooseTile(t *testing.T) {
	for _, tc := range []struct {
		m, n, groups, sms int
		want              string
	}{
		{4096, 4096, 1, 132, "128x128"}, // 1024 blocks
		{1024, 1024, 1, 132, "128x64"},  // 128x128 gives 64 blocks < 99, 128x64 gives 128
		{512, 512, 1, 132, "32x32"},     // 64 blocks at 64x64, 256 at 32x32
		{20, 576, 1, 132, "32x32"},      // LeNet conv1 at batch 1: 18 blocks, the most there are
		{20, 147456, 1, 132, "32x32"},   // conv1 at batch 256: 128 rows would be 84% padding
		{50, 16384, 1, 132, "64x64"},    // conv2 at batch 256: 78% useful
		{64, 64, 1, 1, "64x64"},         // one SM: one block is a full wave, no padding
		{100, 70, 1, 1, "32x32"},        // ragged: at most 57% useful in any tile, so the smallest
		{32, 1024, 8, 132, "32x32"},     // narrow groups
		{256, 500, 1, 132, "32x32"},     // LeNet fc1 at batch 256: 128 blocks
		{1 << 14, 1 << 14, 1, 132, "128x128"},
	} {
		if got := chooseTile(tc.m, tc.n, tc.groups, tc.sms).String(); got != tc.want {
			t.Errorf("chooseTile(%d, %d, %d, %d) = %s, want %s", tc.m, tc.n, tc.groups, tc.sms, got, tc.want)
		}
	}
}

func TestPlanLeNet(t *testing.T) {
	for _, tc := range []struct {
		batch   int
		kernels string
	}{
		// conv2 at small batches: 4 or 32 tiles would idle most of 132
		// SMs, so a warp per output; fc2 at 256: 8 tiles, so warps too.
		{1, "conv_32x32 pool conv_warp pool linear_small linear_small"},
		{8, "conv_32x32 pool conv_warp pool linear_small linear_small"},
		{256, "conv_32x32 pool conv_64x64 pool linear_32x32 linear_small"},
	} {
		lp, err := planLaunches(lenet5(), tc.batch, h100)
		if err != nil {
			t.Fatal(err)
		}
		if got := kernels(lp); got != tc.kernels {
			t.Errorf("batch %d: kernels %q, want %q", tc.batch, got, tc.kernels)
		}
		if lp.Root[5] != 4 {
			t.Errorf("batch %d: flatten output's root is %d, want 4 (same memory)", tc.batch, lp.Root[5])
		}
		if got, want := lp.Bytes[1], int64(4*20*24*24*tc.batch); got != want {
			t.Errorf("batch %d: conv1 output %d bytes, want %d", tc.batch, got, want)
		}
		// conv1's launch: grid over N·OH·OW columns and K rows.
		c1 := lp.Launches[0]
		tile := chooseTile(20, tc.batch*576, 1, 132)
		if c1.Grid != [3]int{ceilDiv(tc.batch*576, tile.BN), ceilDiv(20, tile.BM), 1} {
			t.Errorf("batch %d: conv1 grid %v", tc.batch, c1.Grid)
		}
		var ints []int64
		for _, a := range c1.Args[4:] {
			ints = append(ints, a.V)
		}
		wantInts := []int64{int64(tc.batch), 1, 28, 28, 20, 5, 5, 1, 1, 0, 0, 1, 1, 1, 24, 24, int64(accel.ActNone)}
		if len(ints) != len(wantInts) {
			t.Fatalf("conv1 has %d scalar args, want %d", len(ints), len(wantInts))
		}
		for i := range ints {
			if ints[i] != wantInts[i] {
				t.Errorf("batch %d: conv1 scalar arg %d = %d, want %d", tc.batch, i, ints[i], wantInts[i])
			}
		}
		if tc.batch < 256 {
			if g, want := lp.Launches[2].Grid, [3]int{ceilDiv(50*64*tc.batch, 8), 1, 1}; g != want {
				t.Errorf("batch %d: conv_warp grid %v, want %v (8 outputs per block)", tc.batch, g, want)
			}
		} else if g := lp.Launches[5].Grid; g != [3]int{2, 32, 1} {
			t.Errorf("batch 256: fc2 grid %v, want [2 32 1] (10 features, 256 rows, 8 of each per block)", g)
		}
		// fc1 reads the flatten output (tensor 5) and fuses ReLU.
		fc1 := lp.Launches[4]
		if fc1.Args[0] != tensorArg(5) || fc1.Args[len(fc1.Args)-1] != iarg(int(accel.ActReLU)) {
			t.Errorf("batch %d: fc1 args %v", tc.batch, fc1.Args)
		}
		// Weights and biases of the four layers, uploaded once.
		if len(lp.Consts) != 8 || lp.Consts[4].Name != "op5.bias" || len(lp.Consts[5].F32) != 400000 {
			t.Errorf("batch %d: consts %d, [4] %s", tc.batch, len(lp.Consts), lp.Consts[4].Name)
		}
	}
}

// block is a plan with every other op kind: batch norm, depthwise and
// grouped conv, shuffle, split, concat, add, avg and global pooling.
func blockPlan(quant bool) *accel.Plan {
	w := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%7) - 3
		}
		return v
	}
	q := func(n, rows int) *accel.QuantWeights {
		if !quant {
			return nil
		}
		qq := &accel.QuantWeights{Bits: 8, Q: make([]int8, n), Scale: make([]float32, rows), InScale: 0.05, InZero: 10}
		for i := range qq.Q {
			qq.Q[i] = int8(i%11 - 5)
		}
		for i := range qq.Scale {
			qq.Scale[i] = 0.01 * float32(i+1)
		}
		return qq
	}
	return &accel.Plan{
		Name: "block",
		Tensors: []accel.Shape{
			{8, 6, 6},            // 0 input
			{8, 6, 6},            // 1 bn
			{8, 6, 6},            // 2 depthwise
			{8, 6, 6},            // 3 grouped conv (2 groups)
			{8, 6, 6},            // 4 shuffle
			{3, 6, 6}, {5, 6, 6}, // 5, 6 split
			{8, 6, 6}, // 7 concat(6, 5)
			{8, 6, 6}, // 8 add(7, 1)
			{8, 3, 3}, // 9 avg pool
			{8},       // 10 global avg pool
			{4},       // 11 linear
		},
		Input: 0, Output: 11,
		Ops: []accel.Op{
			{Name: "bn", Kind: accel.OpBatchNorm, In: []int{0}, Out: []int{1}, Act: accel.ActReLU6, Scale: w(8), Shift: w(8)},
			{Name: "dw", Kind: accel.OpConv, In: []int{1}, Out: []int{2}, Conv: accel.ConvParams{K: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 8}, W: w(72), Quant: q(72, 8)},
			{Name: "gc", Kind: accel.OpConv, In: []int{2}, Out: []int{3}, Conv: accel.ConvParams{K: 8, KH: 1, KW: 1, Groups: 2}, W: w(32), B: w(8), Act: accel.ActHardSwish},
			{Name: "shuf", Kind: accel.OpShuffle, In: []int{3}, Out: []int{4}, Groups: 2},
			{Name: "split", Kind: accel.OpSplit, In: []int{4}, Out: []int{5, 6}},
			{Name: "cat", Kind: accel.OpConcat, In: []int{6, 5}, Out: []int{7}},
			{Name: "add", Kind: accel.OpAdd, In: []int{7, 1}, Out: []int{8}, Act: accel.ActReLU},
			{Name: "avg", Kind: accel.OpAvgPool, In: []int{8}, Out: []int{9}, Pool: accel.PoolParams{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
			{Name: "gap", Kind: accel.OpGlobalAvgPool, In: []int{9}, Out: []int{10}},
			{Name: "fc", Kind: accel.OpLinear, In: []int{10}, Out: []int{11}, W: w(32), B: w(4), Quant: q(32, 4)},
		},
	}
}

func TestPlanEveryOpKind(t *testing.T) {
	lp, err := planLaunches(blockPlan(false), 2, h100)
	if err != nil {
		t.Fatal(err)
	}
	want := "scale_shift depthwise conv_32x32 shuffle copy_channels copy_channels copy_channels copy_channels add_act pool global_avgpool linear_small"
	if got := kernels(lp); got != want {
		t.Errorf("kernels\n got %s\nwant %s", got, want)
	}
	// split copies channels [0,3) and [3,8) of tensor 4 to tensors 5, 6;
	// concat puts 6 at channel 0 and 5 at channel 5 of tensor 7.
	for i, want := range [][]arg{
		{tensorArg(4), tensorArg(5), iarg(2), iarg(3), iarg(36), iarg(8), iarg(0), iarg(3), iarg(0)},
		{tensorArg(4), tensorArg(6), iarg(2), iarg(5), iarg(36), iarg(8), iarg(3), iarg(5), iarg(0)},
		{tensorArg(6), tensorArg(7), iarg(2), iarg(5), iarg(36), iarg(5), iarg(0), iarg(8), iarg(0)},
		{tensorArg(5), tensorArg(7), iarg(2), iarg(3), iarg(36), iarg(3), iarg(0), iarg(8), iarg(5)},
	} {
		got := lp.Launches[4+i].Args
		if len(got) != len(want) {
			t.Fatalf("copy %d: %d args", i, len(got))
		}
		for j := range want {
			if got[j] != want[j] {
				t.Errorf("copy %d arg %d = %v, want %v", i, j, got[j], want[j])
			}
		}
	}
	// The grouped conv runs 2 groups of 4 output channels over 2·36 pixels.
	if g := lp.Launches[2].Grid; g != [3]int{ceilDiv(72, 32), 1, 2} {
		t.Errorf("grouped conv grid %v", g)
	}
	// Depthwise has no bias: a null pointer.
	if a := lp.Launches[1].Args[2]; a.Kind != argNull {
		t.Errorf("depthwise bias arg %v, want null", a)
	}
	if lp.Scratch != 0 {
		t.Errorf("float plan needs %d scratch bytes, want 0", lp.Scratch)
	}
	// RunOpTimed and the graph capture walk launches in op order, each
	// op's launches together; every op but flatten launches something.
	per := map[int]int{}
	for i, l := range lp.Launches {
		if i > 0 && l.Op < lp.Launches[i-1].Op {
			t.Errorf("launch %d (op %d) after op %d", i, l.Op, lp.Launches[i-1].Op)
		}
		per[l.Op]++
		if l.Block != [3]int{256, 1, 1} || l.Grid[0] < 1 || l.Grid[1] < 1 || l.Grid[2] < 1 {
			t.Errorf("launch %d %s: grid %v block %v", i, l.Kernel, l.Grid, l.Block)
		}
	}
	for op := range blockPlan(false).Ops {
		if want := map[int]int{4: 2, 5: 2}[op]; per[op] != max(want, 1) {
			t.Errorf("op %d has %d launches, want %d", op, per[op], max(want, 1))
		}
	}
}

func TestPlanInt8(t *testing.T) {
	lp, err := planLaunches(blockPlan(true), 3, h100)
	if err != nil {
		t.Fatal(err)
	}
	got := kernels(lp)
	// Depthwise int8 runs on fake-quantized input with dequantized
	// weights; the linear layer takes the dp4a path.
	if !strings.HasPrefix(got, "scale_shift fake_quant depthwise ") || !strings.HasSuffix(got, " quant_im2col igemm") {
		t.Errorf("int8 kernels %q", got)
	}
	// Scratch: the fake-quantized input (3·8·36 floats) or the linear
	// layer's packed input (3 rows of ⌈8/4⌉ words), whichever is larger.
	if want := int64(4 * 3 * 8 * 36); lp.Scratch != want {
		t.Errorf("scratch %d bytes, want %d", lp.Scratch, want)
	}
	dw := lp.Launches[2]
	wconst := lp.Consts[dw.Args[1].V].F32
	if wconst[0] != 0.01*float32(-5) || wconst[9] != 0.02*float32(9%11-5) {
		t.Errorf("dequantized depthwise weights start %v", wconst[:10])
	}
	ig := lp.Launches[len(lp.Launches)-1]
	// igemm(wq, col, rowScale, rowCorr, bias, y, M, J, words, ohw, act)
	for i, want := range map[int]int64{6: 4, 7: 3, 8: 2, 9: 1} {
		if ig.Args[i].V != want {
			t.Errorf("igemm arg %d = %d, want %d", i, ig.Args[i].V, want)
		}
	}
	if ig.Grid != [3]int{1, 1, 1} {
		t.Errorf("igemm grid %v", ig.Grid)
	}
	qi := lp.Launches[len(lp.Launches)-2]
	if s := math.Float32frombits(uint32(qi.Args[17].V)); s != 0.05 || qi.Args[18].V != 10 || qi.Args[16].V != 8 {
		t.Errorf("quant_im2col scale %v zero %d kpad %d", s, qi.Args[18].V, qi.Args[16].V)
	}
}

func TestPackQuant(t *testing.T) {
	q := &accel.QuantWeights{Bits: 8, Q: []int8{1, -2, 3, -128, 127, 5, 0, 0, 0, -1, 2, 4, 8, 16}, Scale: []float32{0.5, 2}, InScale: 0.25, InZero: 100}
	packed, rs, rc := packQuant(q, 2, 7)
	// Row 0: bytes 01 fe 03 80 | 7f 05 00 (pad 00).
	// Row 1: 00 00 ff 02 | 04 08 10 (pad 00).
	want := []uint32{0x8003fe01, 0x0000057f, 0x02ff0000, 0x00100804}
	for i := range want {
		if uint32(packed[i]) != want[i] {
			t.Errorf("word %d = %#x, want %#x", i, uint32(packed[i]), want[i])
		}
	}
	if rs[0] != 0.125 || rs[1] != 0.5 {
		t.Errorf("row scales %v, want [0.125 0.5]", rs)
	}
	// ΣQ: row 0 = 1−2+3−128+127+5+0 = 6, row 1 = 0−1+2+4+8+16 = 29.
	if rc[0] != 28*6 || rc[1] != 28*29 {
		t.Errorf("row corrections %v, want [%d %d]", rc, 28*6, 28*29)
	}
}

func TestPlanErrors(t *testing.T) {
	badQuant := blockPlan(true)
	badQuant.Ops[9].Quant.Scale = badQuant.Ops[9].Quant.Scale[:3]
	zeroScale := blockPlan(true)
	zeroScale.Ops[1].Quant.InScale = 0
	badZero := blockPlan(true)
	badZero.Ops[9].Quant.InZero = 300
	shortQ := blockPlan(true)
	shortQ.Ops[1].Quant.Q = shortQ.Ops[1].Quant.Q[:5]
	bits := blockPlan(true)
	bits.Ops[9].Quant.Bits = 9
	invalid := lenet5()
	invalid.Ops[2].W = invalid.Ops[2].W[:7]
	for _, tc := range []struct {
		name  string
		plan  *accel.Plan
		batch int
		want  string
	}{
		{"nil", nil, 1, "nil plan"},
		{"batch 0", lenet5(), 0, "batch 0"},
		{"invalid", invalid, 1, "weights"},
		{"scales", badQuant, 1, `op 9 "fc" (linear): int8 weights: 3 scales`},
		{"zero scale", zeroScale, 1, "input scale 0"},
		{"zero point", badZero, 1, "zero point 300"},
		{"short q", shortQ, 1, "5 values, want 72"},
		{"bits", bits, 1, "9 bits"},
	} {
		if _, err := planLaunches(tc.plan, tc.batch, h100); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestSgemmLaunch(t *testing.T) {
	l := sgemmLaunch(1024, 1024, 1024, h100)
	if l.Kernel != "sgemm_nn_128x64" || l.Grid != [3]int{16, 8, 1} || l.Block != [3]int{256, 1, 1} {
		t.Errorf("sgemm 1024³: %s grid %v block %v", l.Kernel, l.Grid, l.Block)
	}
	l = sgemmLaunch(100, 70, 5, deviceLimits{SMs: 1})
	if l.Kernel != "sgemm_nn_32x32" || l.Grid != [3]int{3, 4, 1} {
		t.Errorf("sgemm 100×70 on 1 SM: %s grid %v", l.Kernel, l.Grid)
	}
}

func TestElementwiseGrid(t *testing.T) {
	for _, tc := range []struct{ total, sms, want int }{
		{1, 132, 1}, {256, 132, 1}, {257, 132, 2}, {1 << 30, 132, 1056}, {0, 132, 1}, {10000, 0, 8},
	} {
		if got := elementwiseGrid(tc.total, tc.sms)[0]; got != tc.want {
			t.Errorf("elementwiseGrid(%d, %d) = %d, want %d", tc.total, tc.sms, got, tc.want)
		}
	}
}
