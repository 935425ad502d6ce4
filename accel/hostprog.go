package accel

import (
	"errors"
	"fmt"
	"time"
)

// hostProgram runs a Plan on host Kernels: every tensor is a preallocated
// batch×size float32 buffer, and each op is one step calling the kernels.
type hostProgram struct {
	k      Kernels
	plan   *Plan
	batch  int
	bufs   [][]float32 // per tensor; a Flatten output shares its input's buffer
	steps  []func() error
	closed bool
}

// NewHostProgram compiles p for batch samples per Run on the host kernels k.
// It validates the plan (Plan.Validate, plus the int8/sparse weight forms and
// that no op other than Act, Add, BatchNorm and Flatten writes a tensor it
// reads), allocates every tensor for the batch once, and binds each op to
// kernel calls:
//
//   - Conv: k.Conv2D with fused bias and activation;
//   - Linear: k.Sgemm(x·Wᵀ) then k.BiasAct;
//   - BatchNorm: y = x·Scale[c] (Go loop) then k.BiasAct(Shift, Act);
//   - Act: k.BiasAct without bias; Add: a+b (Go loop) then k.BiasAct;
//   - MaxPool, AvgPool, GlobalAvgPool: the matching kernel;
//   - Concat, Split, Shuffle: channel copies; Flatten: the output aliases
//     the input's memory, nothing is copied.
//
// Conv and Linear ops that carry Quant run on k's Int8Kernels methods when k
// implements them, and ops that carry Sparse (and no Quant) on its
// SparseKernels methods; otherwise the float W is used.
//
// The program implements OpTimedProgram. Run is not safe for concurrent use
// (the buffers are shared); compile one program per goroutine.
func NewHostProgram(k Kernels, p *Plan, batch int) (Program, error) {
	if k == nil || p == nil {
		return nil, errors.New("host program: nil kernels or plan")
	}
	if batch <= 0 {
		return nil, fmt.Errorf("plan %q: batch %d must be positive", p.Name, batch)
	}
	if err := CheckHostPlan(p); err != nil {
		return nil, err
	}
	hp := &hostProgram{k: k, plan: p, batch: batch, bufs: make([][]float32, len(p.Tensors))}
	hp.bufs[p.Input] = make([]float32, batch*p.Tensors[p.Input].Size())
	for i := range p.Ops {
		op := &p.Ops[i]
		if op.Kind == OpFlatten {
			hp.bufs[op.Out[0]] = hp.bufs[op.In[0]]
			continue
		}
		for _, t := range op.Out {
			if hp.bufs[t] == nil {
				hp.bufs[t] = make([]float32, batch*p.Tensors[t].Size())
			}
		}
	}
	for i := range p.Ops {
		hp.steps = append(hp.steps, hp.bind(&p.Ops[i]))
	}
	return hp, nil
}

// CheckHostPlan checks a plan for a host program: Plan.Validate, the
// int8/sparse weight forms, and that no op other than Act, Add, BatchNorm
// and Flatten writes a tensor it reads. Backends that compile plans for the
// host their own way (package cpu) check plans with it too.
func CheckHostPlan(p *Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	for i := range p.Ops {
		if err := checkHostOp(p, i); err != nil {
			return err
		}
	}
	return nil
}

// checkHostOp checks what Plan.Validate leaves to backends: compressed
// weight forms and in-place use of ops that cannot run in place.
func checkHostOp(p *Plan, i int) error {
	op := &p.Ops[i]
	errf := func(format string, a ...any) error {
		return fmt.Errorf("plan %q: op %d %q (%s): %s", p.Name, i, op.Name, op.Kind, fmt.Sprintf(format, a...))
	}
	switch op.Kind {
	case OpAct, OpAdd, OpBatchNorm, OpFlatten:
	default:
		for _, o := range op.Out {
			for _, in := range op.In {
				if o == in {
					return errf("writes tensor %d that it reads; only element-wise ops run in place", o)
				}
			}
		}
	}
	if op.Kind != OpConv && op.Kind != OpLinear {
		return nil
	}
	rows := p.Tensors[op.Out[0]].Size()
	if op.Kind == OpConv {
		rows = op.Conv.K
	}
	if rows <= 0 {
		return errf("no output features")
	}
	cols := len(op.W) / rows
	if q := op.Quant; q != nil {
		if len(q.Q) != len(op.W) || len(q.Scale) != rows {
			return errf("int8 weights: %d values and %d scales, want %d and %d", len(q.Q), len(q.Scale), len(op.W), rows)
		}
		if q.Bits < 1 || q.Bits > 8 || !(q.InScale > 0) || q.InZero < 0 || q.InZero > 255 {
			return errf("int8 weights: bits %d, input scale %v, zero point %d (want 1..8, > 0, 0..255)", q.Bits, q.InScale, q.InZero)
		}
	}
	if s := op.Sparse; s != nil {
		if s.Rows != rows || s.Cols != cols || len(s.RowPtr) != rows+1 || len(s.ColIdx) != len(s.Val) ||
			s.RowPtr[0] != 0 || int(s.RowPtr[rows]) != len(s.Val) {
			return errf("sparse weights %d×%d with %d row pointers and %d/%d indices/values do not form a %d×%d CSR matrix",
				s.Rows, s.Cols, len(s.RowPtr), len(s.ColIdx), len(s.Val), rows, cols)
		}
	}
	return nil
}

// chw splits a per-sample shape into channels and plane size ([F] is F
// channels of one element).
func chw(s Shape) (c, hw int) {
	if len(s) == 3 {
		return s[0], s[1] * s[2]
	}
	return s.Size(), 1
}

// bind returns the step that runs op on the program's buffers.
func (hp *hostProgram) bind(op *Op) func() error {
	p, n, k := hp.plan, hp.batch, hp.k
	in, out := hp.bufs[op.In[0]], hp.bufs[op.Out[0]]
	is, os := p.Tensors[op.In[0]], p.Tensors[op.Out[0]]
	switch op.Kind {
	case OpConv:
		c := op.Conv
		c.N, c.C, c.H, c.W = n, is[0], is[1], is[2]
		if ik, ok := k.(Int8Kernels); ok && op.Quant != nil {
			return func() error { return ik.QConv2D(c, in, op.Quant, op.B, op.Act, out) }
		}
		if sk, ok := k.(SparseKernels); ok && op.Sparse != nil {
			return func() error { return sk.SpConv2D(c, in, op.Sparse, op.B, op.Act, out) }
		}
		return func() error { return k.Conv2D(c, in, op.W, op.B, op.Act, out) }
	case OpLinear:
		fi, fo := is.Size(), os.Size()
		if ik, ok := k.(Int8Kernels); ok && op.Quant != nil {
			return func() error { return ik.QLinear(n, fi, fo, in, op.Quant, op.B, op.Act, out) }
		}
		if sk, ok := k.(SparseKernels); ok && op.Sparse != nil {
			return func() error { return sk.SpLinear(n, fi, fo, in, op.Sparse, op.B, op.Act, out) }
		}
		return func() error {
			if err := k.Sgemm(false, true, n, fo, fi, 1, in, fi, op.W, fi, 0, out, fo); err != nil {
				return err
			}
			if op.B == nil && op.Act == ActNone {
				return nil
			}
			return k.BiasAct(n, fo, 1, out, op.B, op.Act, out)
		}
	case OpBatchNorm:
		c, hw := chw(is)
		return func() error {
			for i := range in {
				out[i] = in[i] * op.Scale[(i/hw)%c]
			}
			return k.BiasAct(n, c, hw, out, op.Shift, op.Act, out)
		}
	case OpAct:
		return func() error { return k.BiasAct(n, 1, is.Size(), in, nil, op.Act, out) }
	case OpAdd:
		b := hp.bufs[op.In[1]]
		return func() error {
			for i := range out {
				out[i] = in[i] + b[i]
			}
			if op.Act == ActNone {
				return nil
			}
			return k.BiasAct(n, 1, len(out)/n, out, nil, op.Act, out)
		}
	case OpMaxPool, OpAvgPool:
		q := op.Pool
		q.N, q.C, q.H, q.W = n, is[0], is[1], is[2]
		if op.Kind == OpMaxPool {
			return func() error { return k.MaxPool2D(q, in, out, nil) }
		}
		return func() error { return k.AvgPool2D(q, in, out) }
	case OpGlobalAvgPool:
		return func() error { return k.GlobalAvgPool(n, is[0], is[1]*is[2], in, out) }
	case OpConcat, OpSplit:
		parts, whole := op.In, out
		if op.Kind == OpSplit {
			parts, whole = op.Out, in
		}
		bufs := make([][]float32, len(parts))
		for j, t := range parts {
			bufs[j] = hp.bufs[t]
		}
		per := len(whole) / n
		concat := op.Kind == OpConcat
		return func() error {
			for s := 0; s < n; s++ {
				off := s * per
				for _, b := range bufs {
					m := len(b) / n
					if concat {
						copy(whole[off:off+m], b[s*m:(s+1)*m])
					} else {
						copy(b[s*m:(s+1)*m], whole[off:off+m])
					}
					off += m
				}
			}
			return nil
		}
	case OpShuffle:
		g := op.Groups
		c, hw := chw(is)
		cg := c / g
		return func() error {
			// Channels viewed as g×cg are transposed to cg×g:
			// out channel j·g+i = in channel i·cg+j.
			for s := 0; s < n; s++ {
				base := s * c * hw
				for i := 0; i < g; i++ {
					for j := 0; j < cg; j++ {
						src := base + (i*cg+j)*hw
						dst := base + (j*g+i)*hw
						copy(out[dst:dst+hw], in[src:src+hw])
					}
				}
			}
			return nil
		}
	case OpFlatten:
		return func() error { return nil }
	}
	// Unreachable: Validate rejects unknown kinds.
	return func() error { return fmt.Errorf("op kind %q has no host implementation", op.Kind) }
}

func (hp *hostProgram) Batch() int      { return hp.batch }
func (hp *hostProgram) InputSize() int  { return hp.plan.Tensors[hp.plan.Input].Size() }
func (hp *hostProgram) OutputSize() int { return hp.plan.Tensors[hp.plan.Output].Size() }

// Run copies in to the input tensor, runs every op and copies the output
// tensor to out.
func (hp *hostProgram) Run(in, out []float32) error {
	return hp.run(in, out, nil)
}

// RunOpTimed is Run with the host time of each op stored in perOp.
func (hp *hostProgram) RunOpTimed(in, out []float32, perOp []time.Duration) error {
	if len(perOp) != len(hp.steps) {
		return fmt.Errorf("plan %q: %d per-op timings for %d ops", hp.plan.Name, len(perOp), len(hp.steps))
	}
	return hp.run(in, out, perOp)
}

func (hp *hostProgram) run(in, out []float32, perOp []time.Duration) error {
	if err := CheckRun(hp.plan, hp.batch, hp.closed, in, out); err != nil {
		return err
	}
	copy(hp.bufs[hp.plan.Input], in)
	for i, step := range hp.steps {
		var t0 time.Time
		if perOp != nil {
			t0 = time.Now()
		}
		if err := step(); err != nil {
			op := &hp.plan.Ops[i]
			return fmt.Errorf("plan %q: op %d %q (%s): %w", hp.plan.Name, i, op.Name, op.Kind, err)
		}
		if perOp != nil {
			perOp[i] = time.Since(t0)
		}
	}
	copy(out, hp.bufs[hp.plan.Output])
	return nil
}

// CheckRun checks a Run of a program compiled from p for batch samples:
// the program is open and in and out hold batch samples of p's input and
// output. Backends' programs call it before running.
func CheckRun(p *Plan, batch int, closed bool, in, out []float32) error {
	if closed {
		return fmt.Errorf("plan %q: program is closed", p.Name)
	}
	is, os := p.Tensors[p.Input].Size(), p.Tensors[p.Output].Size()
	if want := batch * is; len(in) != want {
		return fmt.Errorf("plan %q: input has %d floats, want %d (batch %d × %d)", p.Name, len(in), want, batch, is)
	}
	if want := batch * os; len(out) != want {
		return fmt.Errorf("plan %q: output has %d floats, want %d (batch %d × %d)", p.Name, len(out), want, batch, os)
	}
	return nil
}

// Close releases the buffers; Run fails afterwards.
func (hp *hostProgram) Close() error {
	hp.closed = true
	hp.bufs, hp.steps = nil, nil
	return nil
}
