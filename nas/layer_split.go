package nas

import "hwnas/accel"

// split: a [C,H,W] map cut on channels into parts of sizes (two equal
// halves by default), read by later layers as "name:0", "name:1", …
// Plan op OpSplit, ONNX Split (axis 1).
func init() {
	registerLayer(&layerType{
		names:  []string{TypeSplit},
		fields: []string{"sizes"},
		infer:  splitInfer,
		forward: func(p *pass) error {
			off, size := 0, p.inShape(0).Size()
			for j := range p.nd.Out {
				part := p.outShape(j).Size()
				copyChannelsOut(p.x(0), p.y(j), p.batch(), size, part, off)
				off += part
			}
			return nil
		},
		backward: func(p *pass) error {
			dx, done := p.dx(0)
			if dx == nil {
				return nil
			}
			off, size := 0, p.inShape(0).Size()
			for j := range p.nd.Out {
				part := p.outShape(j).Size()
				copyChannels(p.dy(j), dx, p.batch(), part, size, off)
				off += part
			}
			done()
			return nil
		},
		lower: func(l *lowering, n *Node) error {
			op := accel.Op{Name: n.Layer.Name, Kind: accel.OpSplit, In: l.ins(n)}
			for _, t := range n.Out {
				op.Out = append(op.Out, l.newTensor(t))
			}
			l.emit(op)
			return nil
		},
		op: accel.OpSplit,
		onnx: func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
			sizes := make([]int64, len(op.Out))
			for k, t := range op.Out {
				sizes[k] = int64(b.Shape(t)[0])
			}
			split := b.Int64s(name+".split", []int64{int64(len(sizes))}, sizes)
			b.Node("Split", name, []string{in[0], split}, out, IntAttr("axis", 1))
			return nil
		},
		channels: func(*Node) ChannelRule { return ChannelsSplit },
		sample: []Layer{
			{Name: "s", Type: TypeSplit, Sizes: []int{1, 3}},
			{Name: "b", Type: TypeConv, Out: 2, Kernel: 1, Inputs: []string{"s:1"}},
			{Name: "cat", Type: TypeConcat, Inputs: []string{"b", "s:0"}},
		},
	})
}

func splitInfer(c *inferCtx) error {
	if err := c.one(true); err != nil {
		return err
	}
	in, sizes := c.in[0], c.l.Sizes
	if len(sizes) == 0 {
		if in[0]%2 != 0 {
			return c.fail("cannot split %d channels into two equal halves: give sizes", in[0])
		}
		sizes = []int{in[0] / 2, in[0] / 2}
	}
	if len(sizes) < 2 || len(sizes) > 64 {
		return c.fail("sizes must have 2 to 64 entries")
	}
	sum := 0
	for _, s := range sizes {
		if s <= 0 || s > maxDim {
			return c.fail("sizes %v must be positive", sizes)
		}
		sum += s
	}
	if sum != in[0] {
		return c.fail("shape mismatch: sizes %v add up to %d, input has %d channels", sizes, sum, in[0])
	}
	for _, s := range sizes {
		if err := c.out(s, in[1], in[2]); err != nil {
			return err
		}
	}
	return nil
}
