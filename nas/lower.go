package nas

import (
	"fmt"
	"math"

	"hwnas/accel"
)

// Lower compiles m into a device-neutral inference Plan (evaluation mode):
//
//   - Batch-norm folding: a batch norm whose input is produced by a conv or
//     linear op with no activation, and read by nothing else, is merged
//     into it: with s = γ/√(var+ε), W'[k,…] = s[k]·W[k,…] and
//     B'[k] = s[k]·(B[k] − mean[k]) + β[k]. Other batch norms become
//     OpBatchNorm with Scale = s and Shift = β − s·mean. Layers with int8
//     weights (m.Quant) are not folded (their scales stay as quantized).
//   - Activation fusion: an activation layer whose input is produced by a
//     conv, linear, batch-norm or add op without an activation, and read
//     by nothing else, becomes that op's Act.
//   - Compressed forms: m.Quant[layer] and m.Sparse[layer] are attached to
//     the layer's op (Sparse rows are scaled by a folded batch norm too).
//   - Input normalisation (Arch.Normalize) becomes a first OpBatchNorm
//     named InputNormOp, or, when the input's only reader is a float conv
//     without padding or a float linear layer, is folded into it exactly:
//     with x' = s[c]·x + t[c], W'[·,c,…] = s[c]·W[·,c,…] and
//     B' = B + Σ W·t (padding would make the border differ, so padded convs
//     keep the op).
//
// Weights are copied: later training does not change the plan.
func Lower(m *Model) (*accel.Plan, error) {
	g := m.Graph
	p := &accel.Plan{Name: m.Arch.Name, Tensors: []accel.Shape{g.Tensors[0]}}
	pt := make([]int, len(g.Tensors)) // graph tensor → plan tensor
	producer := map[int]int{}         // plan tensor → op index
	newTensor := func(gt int) int {
		p.Tensors = append(p.Tensors, append(accel.Shape(nil), g.Tensors[gt]...))
		pt[gt] = len(p.Tensors) - 1
		return pt[gt]
	}
	emit := func(op accel.Op) {
		p.Ops = append(p.Ops, op)
		for _, t := range op.Out {
			producer[t] = len(p.Ops) - 1
		}
	}
	// fusable returns the op that produced graph tensor gt when the node
	// reading it is its only reader and it is not the network output.
	fusable := func(gt int, kinds ...accel.OpKind) *accel.Op {
		if gt == 0 || gt == g.Output || len(g.Consumers[gt]) != 1 {
			return nil
		}
		i, ok := producer[pt[gt]]
		if !ok {
			return nil
		}
		op := &p.Ops[i]
		if op.Act != accel.ActNone || len(op.Out) != 1 {
			return nil
		}
		for _, k := range kinds {
			if op.Kind == k {
				return op
			}
		}
		return nil
	}
	normFold := m.normFoldNode()
	if nz := m.Arch.Normalize; nz != nil && normFold < 0 {
		scale, shift := nz.ScaleShift()
		if c := g.Tensors[0][0]; len(g.Tensors[0]) == 1 && c != len(scale) { // a flat input: one value for every feature
			scale, shift = repeat(scale[0], c), repeat(shift[0], c)
		}
		emit(accel.Op{Name: InputNormOp, Kind: accel.OpBatchNorm, In: []int{0}, Out: []int{newTensor(0)}, Scale: scale, Shift: shift})
	}
	for i, nd := range g.Nodes {
		lp := &m.layers[i]
		ins := make([]int, len(nd.In))
		for k, t := range nd.In {
			ins[k] = pt[t]
		}
		name := nd.Layer.Name
		switch nd.Kind {
		case TypeConv, TypeLinear:
			op := accel.Op{Name: name, Kind: accel.OpConv, In: ins, Act: nd.Act,
				W: append([]float32(nil), lp.w.Data...), Quant: m.Quant[name], Sparse: copySparse(m.Sparse[name])}
			if lp.b != nil {
				op.B = append([]float32(nil), lp.b.Data...)
			}
			if nd.Kind == TypeLinear {
				op.Kind = accel.OpLinear
			} else {
				op.Conv = nd.Conv
				op.Conv.N = 0
			}
			if i == normFold {
				m.foldNormalization(&op, g.OutShape(nd)[0])
			}
			op.Out = []int{newTensor(nd.Out[0])}
			emit(op)
		case TypeBatchNorm:
			c := g.InShape(nd, 0)[0]
			scale, shift := make([]float32, c), make([]float32, c)
			for ch := 0; ch < c; ch++ {
				s := float64(lp.gamma.Data[ch]) / math.Sqrt(float64(lp.vari.Data[ch])+bnEps)
				scale[ch] = float32(s)
				shift[ch] = float32(float64(lp.beta.Data[ch]) - s*float64(lp.mean.Data[ch]))
			}
			if op := fusable(nd.In[0], accel.OpConv, accel.OpLinear); op != nil && op.Quant == nil {
				foldBatchNorm(op, lp, scale)
				op.Act = nd.Act
				pt[nd.Out[0]] = op.Out[0]
				continue
			}
			emit(accel.Op{Name: name, Kind: accel.OpBatchNorm, In: ins, Out: []int{newTensor(nd.Out[0])}, Act: nd.Act, Scale: scale, Shift: shift})
		case TypeAct:
			if op := fusable(nd.In[0], accel.OpConv, accel.OpLinear, accel.OpBatchNorm, accel.OpAdd); op != nil {
				op.Act = nd.Act
				pt[nd.Out[0]] = op.Out[0]
				continue
			}
			emit(accel.Op{Name: name, Kind: accel.OpAct, In: ins, Out: []int{newTensor(nd.Out[0])}, Act: nd.Act})
		case TypeMaxPool, TypeAvgPool:
			op := accel.Op{Name: name, Kind: accel.OpMaxPool, In: ins, Out: []int{newTensor(nd.Out[0])}, Pool: nd.Pool}
			op.Pool.N = 0
			if nd.Kind == TypeAvgPool {
				op.Kind = accel.OpAvgPool
			}
			emit(op)
		case TypeGAP:
			emit(accel.Op{Name: name, Kind: accel.OpGlobalAvgPool, In: ins, Out: []int{newTensor(nd.Out[0])}})
		case TypeFlatten:
			emit(accel.Op{Name: name, Kind: accel.OpFlatten, In: ins, Out: []int{newTensor(nd.Out[0])}})
		case TypeAdd:
			emit(accel.Op{Name: name, Kind: accel.OpAdd, In: ins, Out: []int{newTensor(nd.Out[0])}, Act: nd.Act})
		case TypeConcat:
			emit(accel.Op{Name: name, Kind: accel.OpConcat, In: ins, Out: []int{newTensor(nd.Out[0])}})
		case TypeShuffle:
			emit(accel.Op{Name: name, Kind: accel.OpShuffle, In: ins, Out: []int{newTensor(nd.Out[0])}, Groups: nd.Layer.Groups})
		case TypeSplit:
			op := accel.Op{Name: name, Kind: accel.OpSplit, In: ins}
			for _, t := range nd.Out {
				op.Out = append(op.Out, newTensor(t))
			}
			emit(op)
		default:
			return nil, fmt.Errorf("lower %q: layer %q: unsupported kind %q", m.Arch.Name, name, nd.Kind)
		}
	}
	p.Input, p.Output = 0, pt[g.Output]
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("lower %q: %w", m.Arch.Name, err)
	}
	return p, nil
}

// InputNormOp is the name of the plan op that normalises the input.
const InputNormOp = "input.normalize"

// normFoldNode returns the index of the node the input normalisation can
// be folded into exactly (see Lower), or −1.
func (m *Model) normFoldNode() int {
	g := m.Graph
	if m.Arch.Normalize == nil || len(g.Consumers[0]) != 1 {
		return -1
	}
	i := g.Consumers[0][0]
	nd := g.Nodes[i]
	name := nd.Layer.Name
	if m.Quant[name] != nil || m.Sparse[name] != nil {
		return -1
	}
	switch {
	case nd.Kind == TypeLinear, nd.Kind == TypeConv && nd.Conv.PadH == 0 && nd.Conv.PadW == 0:
		return i
	}
	return -1
}

// foldNormalization folds the input normalisation into op, the conv or
// linear op (outs output channels or features) that alone reads the
// input: W' = s[c]·W and B' = B + Σ W·t for the input channel c each
// weight reads.
func (m *Model) foldNormalization(op *accel.Op, outs int) {
	scale, shift := m.Arch.Normalize.ScaleShift()
	per := len(op.W) / outs // weights per output row
	var channel func(k, j int) int
	if op.Kind == accel.OpLinear {
		plane := per / len(scale)
		channel = func(_, j int) int { return j / plane }
	} else {
		c := op.Conv
		khw, cg, kg := c.KH*c.KW, c.C/c.Groups, c.K/c.Groups
		channel = func(k, j int) int { return (k/kg)*cg + j/khw }
	}
	if op.B == nil {
		op.B = make([]float32, outs)
	}
	for k := 0; k < outs; k++ {
		row := op.W[k*per : (k+1)*per]
		b := float64(op.B[k])
		for j, w := range row {
			ch := channel(k, j)
			b += float64(w) * float64(shift[ch])
			row[j] = w * scale[ch]
		}
		op.B[k] = float32(b)
	}
}

func repeat(v float32, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// foldBatchNorm merges a batch norm (per-output-channel scale s) into the
// conv or linear op that feeds it.
func foldBatchNorm(op *accel.Op, bn *layerParams, scale []float32) {
	k := len(scale)
	per := len(op.W) / k
	for o := 0; o < k; o++ {
		s := scale[o]
		for j := o * per; j < (o+1)*per; j++ {
			op.W[j] *= s
		}
	}
	if op.B == nil {
		op.B = make([]float32, k)
	}
	for o := 0; o < k; o++ {
		s := float64(scale[o])
		op.B[o] = float32(s*(float64(op.B[o])-float64(bn.mean.Data[o])) + float64(bn.beta.Data[o]))
	}
	if sp := op.Sparse; sp != nil {
		for r := 0; r < sp.Rows && r < k; r++ {
			for j := sp.RowPtr[r]; j < sp.RowPtr[r+1]; j++ {
				sp.Val[j] *= scale[r]
			}
		}
	}
}

// copySparse returns a deep copy (folding scales its values).
func copySparse(s *accel.SparseWeights) *accel.SparseWeights {
	if s == nil {
		return nil
	}
	c := *s
	c.RowPtr = append([]int32(nil), s.RowPtr...)
	c.ColIdx = append([]int32(nil), s.ColIdx...)
	c.Val = append([]float32(nil), s.Val...)
	return &c
}
