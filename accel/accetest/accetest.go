// Package accetest is the conformance suite every accel backend runs: one
// table of small plans (Cases), each compiled by the backend at batch 1 and
// 3 and compared with the reference host program (accel.NewHostProgram on
// ref.Kernels) by normalised mean squared error.
//
// A new backend is tested by calling RunConformance from its tests; a new op
// or shape by adding a row to Cases.
package accetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// MaxNMSE is the tolerance of RunConformance: Σ(got−want)²/Σwant² over a
// plan's whole output. fp32 kernels that differ from the float64 reference
// only by summation order land around 1e-14; a wrong index or a missing
// bias is far above 1e-3.
const MaxNMSE = 1e-9

// Batches are the batch sizes every case is compiled for.
var Batches = []int{1, 3}

// NMSE returns Σ(got−want)²/Σwant², or the plain mean squared error when
// want is all zeros, and +Inf when got has a NaN or the lengths differ.
func NMSE(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.Inf(1)
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	if den == 0 {
		return num / float64(max(len(want), 1))
	}
	return num / den
}

// Unsupported is returned by Check when the backend's OpSupporter declines
// an op of the case.
var Unsupported = errors.New("op not supported by the backend")

// Check compiles c for b at batch, runs it on the case's input and returns
// the NMSE against the reference. Besides the outputs it checks the
// program's sizes, that a second Run gives the same output, that
// RunOpTimed (when implemented) agrees, and that a wrong input length is an
// error. Errors wrap Unsupported when b declines an op.
func Check(b accel.Backend, c Case, batch int) (float64, error) {
	if s, ok := b.(accel.OpSupporter); ok {
		for i := range c.Plan.Ops {
			if err := s.Supports(&c.Plan.Ops[i]); err != nil {
				return 0, fmt.Errorf("op %d %q: %w: %v", i, c.Plan.Ops[i].Name, Unsupported, err)
			}
		}
	}
	want, err := runProgram(func() (accel.Program, error) { return accel.NewHostProgram(ref.Kernels{}, c.Plan, batch) }, c, batch)
	if err != nil {
		return 0, fmt.Errorf("reference: %w", err)
	}
	prog, err := b.Compile(c.Plan, batch)
	if err != nil {
		return 0, fmt.Errorf("compile: %w", err)
	}
	defer prog.Close()
	in := c.Input(batch)
	if prog.Batch() != batch || prog.InputSize()*batch != len(in) || prog.OutputSize()*batch != len(want) {
		return 0, fmt.Errorf("program sizes batch %d in %d out %d, want %d, %d, %d",
			prog.Batch(), prog.InputSize(), prog.OutputSize(), batch, len(in)/batch, len(want)/batch)
	}
	got := make([]float32, len(want))
	if err := prog.Run(in, got); err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	nmse := NMSE(got, want)
	// The second run's output starts as NaN: every value must be written.
	again := make([]float32, len(want))
	for i := range again {
		again[i] = float32(math.NaN())
	}
	if err := prog.Run(in, again); err != nil {
		return nmse, fmt.Errorf("second run: %w", err)
	}
	if d := NMSE(again, got); !(d <= MaxNMSE) {
		return nmse, fmt.Errorf("second run, into an output of NaNs, differs from the first (NMSE %.3g)", d)
	}
	if fresh := c.Input(batch); !slices.Equal(in, fresh) {
		return nmse, fmt.Errorf("Run changed its input")
	}
	if len(in) == len(want) {
		// One slice as both input and output.
		both := slices.Clone(in)
		if err := prog.Run(both, both); err != nil {
			return nmse, fmt.Errorf("run in place: %w", err)
		}
		if d := NMSE(both, got); !(d <= MaxNMSE) {
			return nmse, fmt.Errorf("run with one slice as input and output differs (NMSE %.3g)", d)
		}
	}
	if ot, ok := prog.(accel.OpTimedProgram); ok {
		per := make([]time.Duration, len(c.Plan.Ops))
		if err := ot.RunOpTimed(in, again, per); err != nil {
			return nmse, fmt.Errorf("run op-timed: %w", err)
		}
		if d := NMSE(again, got); d > MaxNMSE {
			return nmse, fmt.Errorf("op-timed run differs from Run (NMSE %.3g)", d)
		}
	}
	if err := prog.Run(in[:len(in)-1], got); err == nil {
		return nmse, fmt.Errorf("run with %d input floats (want %d) did not fail", len(in)-1, len(in))
	}
	return nmse, nil
}

func runProgram(compile func() (accel.Program, error), c Case, batch int) ([]float32, error) {
	prog, err := compile()
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	out := make([]float32, batch*prog.OutputSize())
	return out, prog.Run(c.Input(batch), out)
}

// RunConformance runs every case of Cases on b at every batch of Batches
// as subtests and fails those whose NMSE exceeds MaxNMSE. Cases with an op
// the backend declines through accel.OpSupporter are skipped with the
// reason.
func RunConformance(t *testing.T, b accel.Backend) {
	t.Helper()
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			for _, batch := range Batches {
				nmse, err := Check(b, c, batch)
				if errors.Is(err, Unsupported) {
					t.Skipf("%s: %v", b.Name(), err)
				}
				if err != nil {
					t.Fatalf("%s batch %d: %v", b.Name(), batch, err)
				}
				if nmse > MaxNMSE {
					t.Errorf("%s batch %d: NMSE %.3g > %.0e", b.Name(), batch, nmse, MaxNMSE)
				}
			}
		})
	}
}
