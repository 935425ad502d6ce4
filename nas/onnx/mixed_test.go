//go:build cgo

package onnx

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
)

// csr builds the CSR form of a rows×cols weight matrix's non-zeros.
func csr(w []float32, rows, cols int) *accel.SparseWeights {
	s := &accel.SparseWeights{Rows: rows, Cols: cols, RowPtr: []int32{0}}
	for r := 0; r < rows; r++ {
		for c, v := range w[r*cols : (r+1)*cols] {
			if v != 0 {
				s.ColIdx = append(s.ColIdx, int32(c))
				s.Val = append(s.Val, v)
			}
		}
		s.RowPtr = append(s.RowPtr, int32(len(s.Val)))
	}
	return s
}

// mixedPlan is LeNet-300-100 with a Deep-Compression-like mix per layer:
// fc1 magnitude-pruned to 8% density (CSR, run by hwnas's sparse kernels),
// fc2 replaced by its rank-24 SVD factors, quantized to 8 bits, and fc3
// quantized to 4 bits.
func mixedPlan(t testing.TB, calib []float32, n int) *accel.Plan {
	t.Helper()
	p := lenet300Plan(2)
	p.Name = "lenet-300-100-mixed"
	fc1 := &p.Ops[0]
	th, err := compress.MagnitudeThreshold([][]float32{fc1.W}, 0.92)
	if err != nil {
		t.Fatal(err)
	}
	compress.ApplyMask(fc1.W, compress.PruneMagnitude(fc1.W, th))
	fc1.Sparse = csr(fc1.W, 300, 784)

	// fc2 (300→100) becomes 300→24 (no bias) then 24→100.
	fc2 := p.Ops[1]
	_, factor, err := compress.SVD(fc2.W, 100, 300)
	if err != nil {
		t.Fatal(err)
	}
	f, err := factor(24)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(p.Tensors)
	p.Tensors = append(p.Tensors, accel.Shape{24})
	v := accel.Op{Name: "fc2_v", Kind: accel.OpLinear, In: fc2.In, Out: []int{mid}, W: f.B}
	u := accel.Op{Name: "fc2_u", Kind: accel.OpLinear, In: []int{mid}, Out: fc2.Out, W: f.A, B: fc2.B, Act: fc2.Act}
	p.Ops = []accel.Op{p.Ops[0], v, u, p.Ops[2]}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return quantize(t, p, map[string]int{"fc2_v": 8, "fc2_u": 8, "fc3": 4}, calib, n)
}

// TestMixedRecipe exports the mixed plan, checks that every compression
// it cannot carry natively is reported (4-bit as int8, Huffman coding given
// by the caller) and that the pruned layer travels as a sparse tensor,
// and compares onnxruntime with hwnas on 1000 MNIST test images.
func TestMixedRecipe(t *testing.T) {
	n := sized(1000, 200)
	cal := calibration(t, 200)
	set := mnist(t, n)
	p := mixedPlan(t, cal.Images, cal.N)
	dir := t.TempDir()
	meta := Metadata{Recipe: "fc1: prune 92%; fc2: svd rank 24, int8; fc3: int4", Uncarried: []string{"Huffman coding of the quantized weights is not carried by ONNX"}}
	path, model, notes := exportFile(t, dir, p, meta)
	fpPath, fp, _ := exportFile(t, dir, lenet300Plan(2), Metadata{})
	checkFiles(t, path, fpPath)

	wantNotes := []string{
		`op "fc1": unstructured sparsity (18816 of 235200 weights non-zero, 8.0%) is stored sparse`,
		`op "fc3": 4-bit weights are stored packed, 2 to a byte`,
		`Huffman coding of the quantized weights is not carried by ONNX`,
	}
	if len(notes) != len(wantNotes) {
		t.Errorf("notes %q, want %d", notes, len(wantNotes))
	}
	for i, w := range wantNotes {
		if i >= len(notes) || !strings.HasPrefix(notes[i], w) {
			t.Errorf("note %d: %q, want prefix %q", i, fmt.Sprint(notes), w)
		}
	}
	// fc1's 8% non-zeros at 5 bytes each (0.4 bytes per weight), fc2's
	// factors and fc3 at a byte per weight: about a tenth of fp32.
	if ratio := float64(len(model)) / float64(len(fp)); ratio > 0.12 {
		t.Errorf("mixed file %d bytes is %.1f%% of fp32's %d, want ≤ 12%%", len(model), 100*ratio, len(fp))
	} else {
		t.Logf("mixed file %d bytes = %.1f%% of fp32 %d", len(model), 100*ratio, len(fp))
	}
	compareQuantized(t, p, model, set.Images, n)
}

// TestPrunedFileShrinks: LeNet-5 with 75% of its channels removed
// (compress.RemoveChannels: a quarter of the filters and hidden units) has
// about 1/15 of the parameters, and its file shrinks with them: file bytes
// per parameter stay within 2% of 4.
func TestPrunedFileShrinks(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []*accel.Plan{builtinPlan(t, "lenet5", 1), prunedLeNet5(t, 1)} {
		_, b, _ := exportFile(t, dir, p, Metadata{})
		params := 0
		for _, op := range p.Ops {
			params += len(op.W) + len(op.B)
		}
		perParam := float64(len(b)) / float64(params)
		t.Logf("%s: %d parameters, %d bytes (%.3f bytes/parameter)", p.Name, params, len(b), perParam)
		if perParam < 4 || perParam > 4.08 {
			t.Errorf("%s: %.3f file bytes per parameter, want 4..4.08", p.Name, perParam)
		}
	}
}

// TestNotes: each form of compression ONNX cannot carry gives its note,
// and nothing else does.
func TestNotes(t *testing.T) {
	op := func(edit func(op *accel.Op)) *accel.Plan {
		p := lenet300Plan(2)
		edit(&p.Ops[1]) // fc2: 300×100
		return p
	}
	quant := func(bits int) func(op *accel.Op) {
		return func(op *accel.Op) {
			op.Quant = &accel.QuantWeights{Bits: bits, Q: make([]int8, len(op.W)), Scale: make([]float32, 100), InScale: 1}
			for i := range op.Quant.Q {
				op.Quant.Q[i] = int8(i%7 - 3)
			}
		}
	}
	cases := []struct {
		name string
		plan *accel.Plan
		want string // note prefix; "" for none
	}{
		{"fp32", op(func(*accel.Op) {}), ""},
		{"int8", op(quant(8)), ""},
		{"int4", op(quant(4)), `op "fc2": 4-bit weights are stored packed, 2 to a byte`},
		{"int4 out of range", op(func(op *accel.Op) {
			quant(4)(op)
			op.Quant.Q[7] = 100
		}), `op "fc2": 4-bit weights are stored as int8`},
		{"shared", op(func(op *accel.Op) {
			for i := range op.W {
				op.W[i] = float32(i%16) / 16
			}
		}), `op "fc2": the 30000 weights take only 16 distinct values`},
		{"half pruned float, CSR", op(func(op *accel.Op) {
			for i := 0; i < len(op.W); i += 2 {
				op.W[i] = 0
			}
			op.Sparse = csr(op.W, 100, 300)
		}), `op "fc2": unstructured sparsity (15000 of 30000 weights non-zero, 50.0%) is stored sparse: 1-byte relative positions and values (75400 bytes instead of 120000)`},
		{"half pruned int8", op(func(op *accel.Op) {
			quant(8)(op)
			for i := range op.Quant.Q {
				op.Quant.Q[i] = int8(i % 2)
			}
		}), `op "fc2": unstructured sparsity (15000 of 30000 weights non-zero, 50.0%) is stored dense`},
		{"90% pruned", op(func(op *accel.Op) {
			for i := range op.W {
				if i%10 != 0 {
					op.W[i] = 0
				}
			}
		}), `op "fc2": unstructured sparsity (3000 of 30000 weights non-zero, 10.0%) is stored sparse`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			notes := Notes(c.plan, Metadata{})
			if c.want == "" {
				if len(notes) != 0 {
					t.Errorf("notes %q, want none", notes)
				}
				return
			}
			if len(notes) != 1 || !strings.HasPrefix(notes[0], c.want) {
				t.Errorf("notes %q, want one starting %q", notes, c.want)
			}
			if _, err := Export(c.plan, Metadata{}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestFloat16Weights: weights stored as fp16 by the compression (every
// value a binary16 value) travel as FLOAT16 initializers cast to float:
// half the bytes, the same outputs.
func TestFloat16Weights(t *testing.T) {
	n := sized(100, 20)
	set := mnist(t, n)
	fp := lenet300Plan(2)
	half := lenet300Plan(2)
	half.Name = "lenet-300-100-fp16"
	for i := range half.Ops {
		if err := compress.FakeQuant(half.Ops[i].W, len(half.Ops[i].B), 16); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	fpPath, fpModel, _ := exportFile(t, dir, fp, Metadata{})
	path, model, notes := exportFile(t, dir, half, Metadata{})
	checkFiles(t, fpPath, path)
	if len(notes) != 0 {
		t.Errorf("notes %q, want none: fp16 is carried", notes)
	}
	if ratio := float64(len(model)) / float64(len(fpModel)); ratio > 0.51 || ratio < 0.49 {
		t.Errorf("fp16 file is %.3f of the fp32 file, want about half", ratio)
	}
	want := hwnasOutputs(t, half, set.Images, n, 20)
	got := ortOutputs(t, model, set.Images, n, 20)
	if d, at := maxAbsDiff(got, want); d > 1e-4 {
		t.Errorf("max |Δ| = %.3g at %d, want ≤ 1e-4", d, at)
	}
}

// TestMixedRecipeApply compresses a trained LeNet-300-100 with a mixed
// recipe through the compression pipeline (compress.Apply, no fine-tuning:
// 90% pruning of fc1, rank-quarter factors of fc2, int8 everywhere but a
// 4-bit fc3, Huffman coding), exports the result, and compares
// onnxruntime with hwnas on the whole MNIST test set.
func TestMixedRecipeApply(t *testing.T) {
	m := trainedModel(t, "lenet300", sized(5000, 1000))
	r, err := compress.ParseRecipe("quant=int8,fc1.prune=0.9,fc1.quant=int8,fc2.lowrank=0.25,fc2.quant=int8,fc3.quant=int4,huffman")
	if err != nil {
		t.Fatal(err)
	}
	train := calibration(t, sized(2000, 400))
	res, err := compress.Apply(context.Background(), m, r, train, mnist(t, sized(1000, 200)), compress.Config{NoFineTune: true, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := nas.Lower(res.Model)
	if err != nil {
		t.Fatal(err)
	}
	p.Name = "lenet300-applied"
	dir := t.TempDir()
	path, model, notes := exportFile(t, dir, p, Metadata{Recipe: r.String(), Uncarried: []string{"Huffman coding is not carried by ONNX"}})
	checkFiles(t, path)
	t.Logf("recipe %s: %d plan ops, compressed %d bytes, ONNX %d bytes, notes %q", r, len(p.Ops), res.Bytes, len(model), notes)
	joined := strings.Join(notes, "\n")
	for _, w := range []string{`op "fc1": unstructured sparsity`, `op "fc3": 4-bit weights are stored packed, 2 to a byte`, "Huffman"} {
		if !strings.Contains(joined, w) {
			t.Errorf("notes %q: none contains %q", notes, w)
		}
	}
	int8Ops := 0
	for _, op := range p.Ops {
		if op.Quant != nil {
			int8Ops++
		}
	}
	if int8Ops != 4 { // fc1, the two fc2 factors, fc3
		t.Errorf("%d int8 ops, want 4", int8Ops)
	}
	// fc1's 10% non-zeros at 2 bytes, fc2's factors and fc3 at one byte per
	// weight: under a twelfth of the fp32 model's 4 bytes per parameter.
	if limit := 4 * 266610 / 12; len(model) > limit {
		t.Errorf("ONNX file of %d bytes, want ≤ %d", len(model), limit)
	}
	set := mnist(t, sized(10000, 1000))
	compareQuantized(t, p, model, set.Images, set.N)
	checkIntegerKernels(t, p, model)
}

// TestPackedWeights: 4-, 2- and 1-bit weights travel packed (8/b to a
// byte) and unpack, when the model loads, to exactly hwnas's integers:
// onnxruntime agrees with hwnas's int8 kernels, and the file shrinks with
// the bit width.
func TestPackedWeights(t *testing.T) {
	n := sized(1000, 200)
	cal := calibration(t, 200)
	set := mnist(t, n)
	dir := t.TempDir()
	var paths []string
	size := map[int]int{}
	for _, bits := range []int{8, 4, 2, 1} {
		p := quantize(t, lenet300Plan(2), map[string]int{"*": bits}, cal.Images, cal.N)
		p.Name = fmt.Sprintf("lenet-300-100-int%d", bits)
		path, model, notes := exportFile(t, dir, p, Metadata{})
		paths = append(paths, path)
		size[bits] = len(model)
		if packed := strings.Count(strings.Join(notes, "\n"), fmt.Sprintf("%d-bit weights are stored packed", bits)); bits < 8 && packed != 3 {
			t.Errorf("%d bits: notes %q, want 3 about packing", bits, notes)
		}
		compareQuantized(t, p, model, set.Images, n)
		checkIntegerKernels(t, p, model)
	}
	checkFiles(t, paths...)
	// 266,200 weights: b/8 bytes each, plus scales, biases and the
	// unpacking nodes (a fixed 20 kB at most).
	for _, bits := range []int{4, 2, 1} {
		wantMax := 266200*bits/8 + 20000
		t.Logf("%d-bit file: %d bytes (int8: %d)", bits, size[bits], size[8])
		if size[bits] > wantMax {
			t.Errorf("%d-bit file of %d bytes, want ≤ %d", bits, size[bits], wantMax)
		}
	}
}
