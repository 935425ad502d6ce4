package accetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// hostBackend runs plans with NewHostProgram on any Kernels.
type hostBackend struct {
	name string
	k    accel.Kernels
	deny accel.OpKind
}

func (h hostBackend) Name() string           { return h.name }
func (h hostBackend) Device() accel.Device   { return accel.Device{Backend: h.name} }
func (h hostBackend) Close() error           { return nil }
func (h hostBackend) Kernels() accel.Kernels { return h.k }
func (h hostBackend) Compile(p *accel.Plan, batch int) (accel.Program, error) {
	return accel.NewHostProgram(h.k, p, batch)
}
func (h hostBackend) Supports(op *accel.Op) error {
	if op.Kind == h.deny {
		return fmt.Errorf("no %s", op.Kind)
	}
	return nil
}

// floatOnly hides the int8 and sparse methods of the kernels it wraps.
type floatOnly struct{ accel.Kernels }

// offByOne shifts every convolution output, as an indexing bug would.
type offByOne struct{ ref.Kernels }

func (o offByOne) Conv2D(p accel.ConvParams, x, w, b []float32, act accel.Act, y []float32) error {
	if err := o.Kernels.Conv2D(p, x, w, b, act, y); err != nil {
		return err
	}
	copy(y[1:], y[:len(y)-1])
	return nil
}

func TestReferenceBackendConforms(t *testing.T) {
	RunConformance(t, hostBackend{name: "ref", k: ref.Kernels{}})
}

func TestCasesValidateAndCoverEveryOp(t *testing.T) {
	seen := map[accel.OpKind]bool{}
	quant, sparse := false, false
	for _, c := range Cases() {
		if err := c.Plan.Validate(); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
		for _, op := range c.Plan.Ops {
			seen[op.Kind] = true
			quant = quant || op.Quant != nil
			sparse = sparse || op.Sparse != nil
		}
	}
	for _, k := range []accel.OpKind{accel.OpConv, accel.OpLinear, accel.OpBatchNorm, accel.OpAct, accel.OpMaxPool,
		accel.OpAvgPool, accel.OpGlobalAvgPool, accel.OpAdd, accel.OpConcat, accel.OpShuffle, accel.OpSplit, accel.OpFlatten} {
		if !seen[k] {
			t.Errorf("no case uses %s", k)
		}
	}
	if !quant || !sparse {
		t.Errorf("int8 cases %v, sparse cases %v: want both", quant, sparse)
	}
}

// The int8 and sparse cases are built so that a backend without those
// kernels (float W) gives the same answer as one with them.
func TestCompressedCasesAgreeWithFloatPath(t *testing.T) {
	fb := hostBackend{name: "float-only", k: floatOnly{ref.Kernels{}}}
	for _, c := range Cases() {
		if !strings.HasPrefix(c.Name, "int8") && !strings.HasPrefix(c.Name, "sparse") {
			continue
		}
		nmse, err := Check(fb, c, 2)
		if err != nil || nmse > 1e-12 {
			t.Errorf("%s: NMSE %.3g err %v", c.Name, nmse, err)
		}
	}
}

func TestCheckCatchesWrongKernels(t *testing.T) {
	bad := hostBackend{name: "off-by-one", k: offByOne{}}
	for _, c := range Cases() {
		if c.Name != "conv3x3_pad1" && c.Name != "lenet_like" {
			continue
		}
		nmse, err := Check(bad, c, 3)
		if err != nil {
			t.Fatal(err)
		}
		if nmse < 1e-3 {
			t.Errorf("%s: shifted output gives NMSE %.3g, want it caught (> 1e-3)", c.Name, nmse)
		}
	}
	deny := hostBackend{name: "no-pool", k: ref.Kernels{}, deny: accel.OpMaxPool}
	_, err := Check(deny, Cases()[0], 1)
	if err != nil {
		t.Errorf("conv case on a backend without pools: %v", err)
	}
	for _, c := range Cases() {
		if c.Name == "maxpool2x2_odd" {
			if _, err := Check(deny, c, 1); !errors.Is(err, Unsupported) {
				t.Errorf("declined op: err %v, want Unsupported", err)
			}
		}
	}
}

func TestNMSE(t *testing.T) {
	for _, c := range []struct {
		got, want []float32
		nmse      float64
	}{
		{[]float32{1, 2}, []float32{1, 2}, 0},
		{[]float32{1, 3}, []float32{1, 2}, 1.0 / 5},
		{[]float32{1, 1}, []float32{0, 0}, 1},
	} {
		if got := NMSE(c.got, c.want); got != c.nmse {
			t.Errorf("NMSE(%v, %v) = %v, want %v", c.got, c.want, got, c.nmse)
		}
	}
	if NMSE([]float32{1}, []float32{1, 2}) < 1e300 {
		t.Error("length mismatch must be +Inf")
	}
}
