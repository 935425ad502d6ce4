//go:build cgo

package onnx

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
	"hwnas/nas"
)

// TestEveryLayerTypeRoundTrips exports every registered layer type's
// sample network (nas.LayerSample: the layer table's own test block),
// checks the file with onnx.checker and runs it in onnxruntime against the
// plan on accel's reference interpreter. A new layer type is covered here
// as soon as it is registered.
func TestEveryLayerTypeRoundTrips(t *testing.T) {
	if err := InitRuntime(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for _, name := range nas.LayerTypes() {
		t.Run(name, func(t *testing.T) {
			a, err := nas.LayerSample(name)
			if err != nil {
				t.Fatal(err)
			}
			m, err := nas.NewModel(a, 11)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(11, uint64(len(name))))
			for _, p := range m.Tensors() { // batch-norm statistics and biases away from their initial values
				if !strings.HasSuffix(p.Name, ".w") {
					for i := range p.Data {
						p.Data[i] = float32(0.5 + r.Float64())
					}
				}
			}
			plan, err := nas.Lower(m)
			if err != nil {
				t.Fatal(err)
			}
			plan.Name = name
			path, model, _ := exportFile(t, dir, plan, Metadata{})
			paths = append(paths, path)
			const n = 4
			x := make([]float32, n*plan.Tensors[plan.Input].Size())
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			prog, err := accel.NewHostProgram(ref.Kernels{}, plan, n)
			if err != nil {
				t.Fatal(err)
			}
			want := runAll(t, prog, x, n)
			got := ortOutputs(t, model, x, n, n)
			scale := 0.0
			for _, v := range want {
				scale = max(scale, math.Abs(float64(v)))
			}
			if d, at := maxAbsDiff(got, want); d > 1e-5*max(scale, 1) {
				t.Errorf("onnxruntime differs from the plan by %.3g at %d (largest output %.3g)\n got %v\nwant %v", d, at, scale, got, want)
			}
		})
	}
	checkFiles(t, paths...)
}
