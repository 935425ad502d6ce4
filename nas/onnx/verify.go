//go:build cgo

package onnx

import (
	"fmt"
	"math"

	"hwnas/accel"
)

// Agreement is how an exported model, run in onnxruntime, agrees with
// hwnas's own compiled program on the same images.
type Agreement struct {
	Images int `json:"images"`
	// ArgmaxAgree is the fraction of images whose top class is the same.
	ArgmaxAgree float64 `json:"argmax_agreement"`
	// MaxAbsDiff is the largest |Δ| over every logit of every image.
	MaxAbsDiff float64 `json:"max_abs_diff"`
	// MaxSteps is the largest |Δ| of a logit divided by its output
	// quantization step (OutputSteps) when the plan's last op is int8, and
	// 0 otherwise.
	MaxSteps float64 `json:"max_diff_steps,omitempty"`
	// HwnasAccuracy and OrtAccuracy are the fractions of images each
	// runtime classifies as labelled (0 without labels).
	HwnasAccuracy float64 `json:"hwnas_accuracy,omitempty"`
	OrtAccuracy   float64 `json:"onnxruntime_accuracy,omitempty"`
}

// OutputSteps returns, per logit o of p's last op when that op is int8,
// the step of its input quantization carried to the output,
// InScale·Scale[o]·Σ_i |Q[o,i]|: how far y[o] moves when every input code
// of the layer moves by one. An integer runtime that requantizes (and
// rounds the bias to int32) lands each code within one step of hwnas's,
// so its logits stay within this bound. It returns nil when the last op
// is not int8.
func OutputSteps(p *accel.Plan) []float64 {
	op := &p.Ops[len(p.Ops)-1]
	q := op.Quant
	if q == nil || len(q.Scale) == 0 {
		return nil
	}
	rows := len(q.Scale)
	cols := len(q.Q) / rows
	steps := make([]float64, rows)
	for o := range steps {
		sum := 0.0
		for _, v := range q.Q[o*cols : (o+1)*cols] {
			sum += math.Abs(float64(v))
		}
		steps[o] = float64(q.InScale) * float64(q.Scale[o]) * sum
	}
	return steps
}

// Compare runs the first n samples of images through prog (hwnas) and
// through model in an onnxruntime session with opts at prog's batch size,
// and returns how the outputs agree (labels, when not nil, give each
// runtime's accuracy). plan is prog's plan (for OutputSteps). A last
// partial batch is padded with zeros.
func Compare(prog accel.Program, plan *accel.Plan, model []byte, images []float32, labels []int32, n int, opts SessionOptions) (Agreement, error) {
	is, k, b := prog.InputSize(), prog.OutputSize(), prog.Batch()
	if n <= 0 || len(images) < n*is {
		return Agreement{}, fmt.Errorf("compare: %d images of %d values, have %d values", n, is, len(images))
	}
	if labels != nil && len(labels) < n {
		return Agreement{}, fmt.Errorf("compare: %d labels for %d images", len(labels), n)
	}
	sess, err := NewSession(model, b, opts)
	if err != nil {
		return Agreement{}, err
	}
	defer sess.Close()
	if sess.InputSize() != is || sess.OutputSize() != k {
		return Agreement{}, fmt.Errorf("compare: hwnas program (%d→%d) and onnxruntime session (%d→%d) disagree on sizes", is, k, sess.InputSize(), sess.OutputSize())
	}
	step := OutputSteps(plan)
	if step != nil && len(step) != k {
		step = nil
	}
	in := make([]float32, b*is)
	hw, rt := make([]float32, b*k), make([]float32, b*k)
	a := Agreement{Images: n}
	same, hwOK, rtOK := 0, 0, 0
	for i := 0; i < n; i += b {
		m := min(b, n-i)
		clear(in)
		copy(in, images[i*is:(i+m)*is])
		if err := prog.Run(in, hw); err != nil {
			return a, fmt.Errorf("hwnas: %w", err)
		}
		if err := sess.Run(in, rt); err != nil {
			return a, fmt.Errorf("onnxruntime: %w", err)
		}
		for j := 0; j < m; j++ {
			h, r := hw[j*k:(j+1)*k], rt[j*k:(j+1)*k]
			ah, ar := argmax(h), argmax(r)
			if ah == ar {
				same++
			}
			if labels != nil {
				if int32(ah) == labels[i+j] {
					hwOK++
				}
				if int32(ar) == labels[i+j] {
					rtOK++
				}
			}
			for o := range h {
				d := math.Abs(float64(h[o]) - float64(r[o]))
				a.MaxAbsDiff = max(a.MaxAbsDiff, d)
				if step != nil && step[o] > 0 {
					a.MaxSteps = max(a.MaxSteps, d/step[o])
				}
			}
		}
	}
	a.ArgmaxAgree = float64(same) / float64(n)
	if labels != nil {
		a.HwnasAccuracy, a.OrtAccuracy = float64(hwOK)/float64(n), float64(rtOK)/float64(n)
	}
	return a, nil
}

// argmax returns the index of the largest value (the first on ties).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
