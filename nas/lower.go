package nas

import (
	"fmt"

	"hwnas/accel"
)

// Lower compiles m into a device-neutral inference Plan (evaluation mode),
// each node by its layer type (layer_*.go):
//
//   - Batch-norm folding: a batch norm whose input is produced by a conv or
//     linear op with no activation, and read by nothing else, is merged
//     into it: with s = γ/√(var+ε), W'[k,…] = s[k]·W[k,…] and
//     B'[k] = s[k]·(B[k] − mean[k]) + β[k]. Other batch norms become
//     OpBatchNorm with Scale = s and Shift = β − s·mean. Layers with int8
//     weights (m.Quant) keep their integers: s goes into their per-channel
//     scales (|s|, the row negated where s < 0; see foldQuant).
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
	l := &lowering{m: m, g: g, plan: &accel.Plan{Name: m.Arch.Name, Tensors: []accel.Shape{g.Tensors[0]}},
		pt: make([]int, len(g.Tensors)), producer: map[int]int{}, normFold: m.normFoldNode()}
	if nz := m.Arch.Normalize; nz != nil && l.normFold < 0 {
		scale, shift := nz.ScaleShift()
		if c := g.Tensors[0][0]; len(g.Tensors[0]) == 1 && c != len(scale) { // a flat input: one value for every feature
			scale, shift = repeat(scale[0], c), repeat(shift[0], c)
		}
		l.emit(accel.Op{Name: InputNormOp, Kind: accel.OpBatchNorm, In: []int{0}, Out: []int{l.newTensor(0)}, Scale: scale, Shift: shift})
	}
	for _, nd := range g.Nodes {
		if err := nd.typ.lower(l, nd); err != nil {
			return nil, fmt.Errorf("lower %q: layer %q: %w", m.Arch.Name, nd.Layer.Name, err)
		}
	}
	p := l.plan
	pt := l.pt
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
