//go:build cgo

package nas

import (
	"math"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
	"hwnas/cpu"
)

// TestCPUKernelsMatchReference runs one training step's forward and
// backward on the cpu backend's kernels and on the reference kernels and
// compares the logits and every gradient.
func TestCPUKernelsMatchReference(t *testing.T) {
	archs := blockArchs(t)
	archs["lenet5"], _ = BuiltinArch("lenet5")
	for name, a := range archs {
		t.Run(name, func(t *testing.T) {
			const n = 5
			r := rand.New(rand.NewPCG(4, 4))
			var logits [2][]float32
			var grads [2][][]float32
			for i, k := range []accel.Kernels{accelRef(), cpu.NewKernels(2)} {
				m, err := NewModel(a, 11)
				if err != nil {
					t.Fatal(err)
				}
				m.Kernels = k
				r = rand.New(rand.NewPCG(4, 4))
				x := randInput(r, n*m.Graph.Tensors[0].Size())
				labels := make([]int32, n)
				for j := range labels {
					labels[j] = int32(r.IntN(a.Classes))
				}
				_, dl := trainLoss(t, m, x, labels)
				logits[i] = append([]float32(nil), m.ws[n].acts[m.Graph.Output]...)
				if err := m.backward(m.ws[n], dl); err != nil {
					t.Fatal(err)
				}
				for _, p := range m.Params {
					grads[i] = append(grads[i], append([]float32(nil), p.Grad...))
				}
			}
			if d := maxRelDiff(logits[1], logits[0]); d > 1e-4 {
				t.Errorf("logits differ by %.3g relative", d)
			}
			// Training-mode batch norm backward subtracts nearly equal
			// terms (cnt·dy − Σdy − x̂·Σdy·x̂), which magnifies float32
			// rounding: gradients behind one are compared more loosely.
			// Both kernel sets pass the finite-difference checks.
			tol := 1e-3
			for _, l := range a.Layers {
				if l.Type == TypeBatchNorm {
					tol = 3e-2
				}
			}
			// Some gradients are zero in exact arithmetic (a batch norm's γ
			// and β whose effect the next batch norm normalises away, as in
			// the shuffle blocks) and come out as float32 rounding noise near
			// 1e-8, different on each kernel set and CPU. Each gradient's
			// difference is therefore relative to its own largest entry or
			// to 1e-4 of the model's largest gradient, whichever is larger.
			var gmax float64
			for _, g := range grads[0] {
				for _, v := range g {
					gmax = max(gmax, math.Abs(float64(v)))
				}
			}
			for j := range grads[0] {
				if d := maxRelDiffFloor(grads[1][j], grads[0][j], max(1e-4*gmax, 1e-6)); d > tol {
					t.Errorf("gradient %d differs by %.3g relative", j, d)
				}
			}
		})
	}
}

// BenchmarkTrainStepLeNet5 measures one SGD step (forward, backward,
// update) of LeNet-5 on a batch of 64 with the cpu kernels on all cores;
// images/s is what `hwnas train` reaches per epoch, less data handling.
func BenchmarkTrainStepLeNet5(b *testing.B) {
	a, _ := BuiltinArch("lenet5")
	m, _ := NewModel(a, 1)
	m.Kernels = cpu.NewKernels(0)
	const n = 64
	r := rand.New(rand.NewPCG(1, 1))
	x := randInput(r, n*784)
	labels := make([]int32, n)
	probs, dl := make([]float32, n*10), make([]float32, n*10)
	opt := &SGD{Momentum: 0.9, WeightDecay: 5e-4}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ws, err := m.forward(x, n, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Kernels.SoftmaxCrossEntropy(n, 10, ws.acts[m.Graph.Output], labels, probs, dl); err != nil {
			b.Fatal(err)
		}
		if err := m.backward(ws, dl); err != nil {
			b.Fatal(err)
		}
		opt.Step(m.Params, 0.01)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
}

func accelRef() accel.Kernels { return ref.Kernels{} }
