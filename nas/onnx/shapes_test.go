//go:build cgo

package onnx

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"hwnas/nas"
)

// TestBuiltinsOfAnyShapeMatchHwnas exports the built-ins built for colour
// and non-square inputs, normalising their input (the normalisation is a
// first BatchNormalization node, or folded into LeNet-5's unpadded first
// conv), checks the files with the ONNX checker, and compares onnxruntime
// with hwnas's cpu backend on the same raw [0, 1] pixels: max |Δ| ≤ 1e-4
// relative to the largest logit, and the same predicted class.
func TestBuiltinsOfAnyShapeMatchHwnas(t *testing.T) {
	norm3 := nas.NewNormalization([]float32{0.49, 0.48, 0.45}, []float32{0.25, 0.24, 0.26})
	cases := []struct {
		arch  string
		input []int
	}{
		{"resnet20", []int{3, 32, 32}},
		{"resnet20", []int{3, 24, 40}},
		{"vgg16", []int{3, 32, 32}},
		{"mobilenetv2:0.5", []int{3, 32, 32}},
		{"lenet5", []int{3, 32, 32}},
	}
	dir := t.TempDir()
	var paths []string
	for i, tc := range cases {
		a, err := nas.BuiltinArchFor(tc.arch, nas.DataShape{Input: tc.input, Classes: 10, Normalize: norm3})
		if err != nil {
			t.Fatal(err)
		}
		p := lowered(t, a, uint64(i+1))
		p.Name = fmt.Sprintf("%s-%dx%dx%d", a.Name, tc.input[0], tc.input[1], tc.input[2])
		t.Run(p.Name, func(t *testing.T) {
			if folded := p.Ops[0].Name != nas.InputNormOp; folded != (tc.arch == "lenet5") {
				t.Errorf("normalisation folded %v, want %v", folded, tc.arch == "lenet5")
			}
			path, model, _ := exportFile(t, dir, p, Metadata{Arch: string(a.JSON())})
			paths = append(paths, path)
			const n = 8
			r := rand.New(rand.NewPCG(uint64(i), 7))
			in := make([]float32, n*p.Tensors[p.Input].Size())
			for k := range in {
				in[k] = float32(r.Float64()) // raw pixels in [0, 1]
			}
			want := hwnasOutputs(t, p, in, n, 4)
			got := ortOutputs(t, model, in, n, 4)
			scale := 0.0
			for _, v := range want {
				scale = max(scale, float64(abs32(v)))
			}
			d, at := maxAbsDiff(got, want)
			if d > 1e-4*max(scale, 1) {
				t.Errorf("max |Δ| = %.3g at %d (onnxruntime %v, hwnas %v; largest logit %.3g)", d, at, got[at], want[at], scale)
			}
			for s := 0; s < n; s++ {
				if g, w := argmax(got[s*10:(s+1)*10]), argmax(want[s*10:(s+1)*10]); g != w {
					t.Errorf("sample %d: onnxruntime predicts %d, hwnas %d", s, g, w)
				}
			}
		})
	}
	checkFiles(t, paths...)
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
