//go:build cgo

package onnx

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
)

// quantize returns a copy of p whose Conv and Linear ops named in bits
// (all of them when bits has the key "*") carry int8 weights quantized per
// output channel by compress.QuantizePerChannel and an input quantization
// calibrated (compress.ActRange) on the calibration images, as the
// compression pipeline produces them.
func quantize(t testing.TB, p *accel.Plan, bits map[string]int, calib []float32, n int) *accel.Plan {
	t.Helper()
	q := *p
	q.Name = p.Name + "-int8"
	q.Ops = append([]accel.Op(nil), p.Ops...)
	for i := range q.Ops {
		op := &q.Ops[i]
		if op.Kind != accel.OpConv && op.Kind != accel.OpLinear {
			continue
		}
		nb, ok := bits[op.Name]
		if !ok {
			if nb, ok = bits["*"]; !ok {
				continue
			}
		}
		// The op's input on the calibration images, from the float plan
		// truncated before the op.
		x := calib
		if op.In[0] != p.Input {
			head := *p
			head.Ops, head.Output = p.Ops[:i], op.In[0]
			x = hwnasOutputs(t, &head, calib, n, n)
		}
		var r compress.ActRange
		r.Observe(x)
		inScale, inZero := r.Params()
		rows := q.Tensors[op.Out[0]].Size()
		if op.Kind == accel.OpConv {
			rows = op.Conv.K
		}
		qw, scale, err := compress.QuantizePerChannel(op.W, rows, nb)
		if err != nil {
			t.Fatal(err)
		}
		op.Quant = &accel.QuantWeights{Bits: nb, Q: qw, Scale: scale, InScale: inScale, InZero: inZero}
	}
	return &q
}

// TestInt8MatchesHwnas exports int8 models in QDQ form and checks, on the
// MNIST test set, that
//   - onnxruntime, both evaluating the QDQ graph as written (no graph
//     optimisations, float arithmetic) and with its own integer kernels
//     (all optimisations: QDQ fused into integer Gemm/Conv with int32 bias
//     and requantization), gives the same argmax as hwnas's int8 kernels on
//     ≥ 99.5% of the images and every logit within one quantization step
//     (OutputSteps). Exact equality is not expected: float32 sums that land
//     within rounding error of a code boundary requantize one code apart;
//     over the whole test set a few do.
//   - the file is at most 30% of the fp32 file's size.
func TestInt8MatchesHwnas(t *testing.T) {
	cases := []struct {
		plan *accel.Plan
		n    int // test images compared
	}{
		{trainedPlan(t, "lenet300", sized(5000, 1000)), sized(10000, 1000)},
		{trainedPlan(t, "lenet5", sized(3000, 600)), sized(10000, 1000)},
	}
	cal := calibration(t, 200)
	dir := t.TempDir()
	var paths []string
	for _, c := range cases {
		t.Run(c.plan.Name, func(t *testing.T) {
			set := mnist(t, c.n)
			fpPath, fp, _ := exportFile(t, dir, c.plan, Metadata{})
			qp := quantize(t, c.plan, map[string]int{"*": 8}, cal.Images, cal.N)
			qPath, model, notes := exportFile(t, dir, qp, Metadata{})
			paths = append(paths, fpPath, qPath)
			if len(notes) != 0 {
				t.Errorf("8-bit plan: unexpected notes %q", notes)
			}
			if ratio := float64(len(model)) / float64(len(fp)); ratio > 0.30 {
				t.Errorf("int8 file %d bytes is %.1f%% of the fp32 file's %d, want ≤ 30%%", len(model), 100*ratio, len(fp))
			} else {
				t.Logf("int8 file %d bytes = %.1f%% of fp32 %d", len(model), 100*ratio, len(fp))
			}
			compareQuantized(t, qp, model, set.Images, c.n)
			checkIntegerKernels(t, qp, model)
		})
	}
	checkFiles(t, paths...)
}

// compareQuantized runs model in onnxruntime both as written (no graph
// optimisations) and with its integer kernels, and checks the outputs
// against hwnas's program for qp (Compare) as TestInt8MatchesHwnas
// describes.
func compareQuantized(t *testing.T, qp *accel.Plan, model []byte, images []float32, n int) {
	t.Helper()
	b, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	prog, err := b.Compile(qp, min(n, 100))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	for _, mode := range []struct {
		name string
		opt  SessionOptions
	}{
		{"QDQ as written", SessionOptions{Threads: 1, Unoptimized: true}},
		{"int8 kernels", SessionOptions{Threads: 1}},
	} {
		a, err := Compare(prog, qp, model, images, nil, n, mode.opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, %d images: argmax agrees on %.2f%%, max |Δ| %.3g = %.3g steps", mode.name, n, 100*a.ArgmaxAgree, a.MaxAbsDiff, a.MaxSteps)
		if a.ArgmaxAgree < 0.995 {
			t.Errorf("%s: argmax agrees on %.2f%% of %d images, want ≥ 99.5%%", mode.name, 100*a.ArgmaxAgree, n)
		}
		if a.MaxSteps > 1 {
			t.Errorf("%s: worst logit difference is %.3g quantization steps, want ≤ 1", mode.name, a.MaxSteps)
		}
	}
}

// checkIntegerKernels profiles the int8 model in onnxruntime and checks
// that every int8 op but the classifier (whose float output leaves
// onnxruntime nothing to requantize) runs on an integer kernel
// (QLinearConv, QGemm, ...), i.e. that the QDQ form is one onnxruntime
// fuses rather than evaluates in float.
func checkIntegerKernels(t *testing.T, p *accel.Plan, model []byte) {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "profile")
	s, err := NewSession(model, 1, SessionOptions{Threads: 1, ProfilePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	in, out := make([]float32, s.InputSize()), make([]float32, s.OutputSize())
	if err := s.Run(in, out); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	nodes, err := ReadProfile(prefix)
	if err != nil {
		t.Fatal(err)
	}
	kernels := map[int][]string{}
	for _, n := range nodes {
		if i := n.PlanOp(p); i >= 0 {
			kernels[i] = append(kernels[i], n.OpType)
		}
	}
	for i := range p.Ops[:len(p.Ops)-1] {
		if p.Ops[i].Quant == nil {
			continue
		}
		integer := false
		for _, k := range kernels[i] {
			integer = integer || strings.HasPrefix(k, "QLinear") || strings.HasPrefix(k, "QGemm") || strings.Contains(k, "Integer")
		}
		t.Logf("op %d %s: onnxruntime kernels %v", i, p.Ops[i].Name, kernels[i])
		if !integer {
			t.Errorf("op %d %s runs on %v in onnxruntime, want an integer kernel", i, p.Ops[i].Name, kernels[i])
		}
	}
}

// TestInt8FoldedBatchNorm exports a network of the search's kind (strided
// 3×3 convs, a depthwise-separable block, each followed by a batch norm)
// with int8 weights: the batch norms fold into the int8 ops' per-channel
// scales (one channel's batch norm scale made negative, the function kept,
// so its integer row is negated), and onnxruntime computes what hwnas's
// int8 program computes, as TestInt8MatchesHwnas asks.
func TestInt8FoldedBatchNorm(t *testing.T) {
	a, err := nas.ParseArch([]byte(`{"version":1,"name":"convbn","input":[1,28,28],"classes":10,"layers":[
		{"name":"c1","type":"conv","out":16,"kernel":3,"stride":2,"pad":1,"bias":false},{"name":"bn1","type":"batchnorm","act":"relu"},
		{"name":"c2","type":"conv","out":24,"kernel":3,"stride":2,"pad":1,"bias":false},{"name":"bn2","type":"batchnorm","act":"relu"},
		{"name":"dw","type":"dwconv","kernel":3,"stride":2,"pad":1,"bias":false},{"name":"bn3","type":"batchnorm","act":"relu"},
		{"name":"pw","type":"conv","out":32,"kernel":1,"bias":false},{"name":"bn4","type":"batchnorm","act":"relu"},
		{"name":"flat","type":"flatten"},{"name":"fc","type":"linear","out":10}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m := trainedArch(t, a, 3000) // also under -short: a weakly trained network has near-ties that any rounding difference flips
	// Channel 5 of c2: W, γ and the running mean negated — the same
	// function, with a negative batch-norm scale.
	w, per := m.Param("c2.w").Data, 16*9
	for j := 5 * per; j < 6*per; j++ {
		w[j] = -w[j]
	}
	m.Param("bn2.gamma").Data[5] *= -1
	m.Param("bn2.mean").Data[5] *= -1
	r, err := compress.ParseRecipe("quant=int8")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compress.Apply(context.Background(), m, r, calibration(t, 200), mnist(t, sized(1000, 200)), compress.Config{NoFineTune: true, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := nas.Lower(res.Model)
	if err != nil {
		t.Fatal(err)
	}
	int8Ops := 0
	for _, op := range p.Ops {
		if op.Kind == accel.OpBatchNorm {
			t.Errorf("batch norm %q left unfolded after an int8 op", op.Name)
		}
		if op.Quant != nil {
			int8Ops++
		}
	}
	if int8Ops != 5 {
		t.Errorf("%d int8 ops, want 5 (four convs and the classifier)", int8Ops)
	}
	if q, mq := p.Ops[1].Quant, res.Model.Quant["c2"]; q == nil || mq == nil {
		t.Error("c2 has no int8 form in the model or the plan")
	} else {
		for j := 5 * per; j < 6*per; j++ {
			if q.Q[j] != -mq.Q[j] || q.Q[j+per] != mq.Q[j+per] {
				t.Fatalf("c2 weight %d: plan %d/%d, model %d/%d: want channel 5 (negative batch-norm scale) negated, channel 6 not", j, q.Q[j], q.Q[j+per], mq.Q[j], mq.Q[j+per])
			}
		}
	}
	path, model, _ := exportFile(t, t.TempDir(), p, Metadata{Recipe: r.String()})
	checkFiles(t, path)
	set := mnist(t, sized(10000, 1000))
	compareQuantized(t, p, model, set.Images, set.N)
	checkIntegerKernels(t, p, model)
}
