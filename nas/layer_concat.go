package nas

import "hwnas/accel"

// concat: two or more [C,H,W] inputs of equal H and W joined on channels.
// Plan op OpConcat, ONNX Concat (axis 1).
func init() {
	registerLayer(&layerType{
		names: []string{TypeConcat},
		infer: func(c *inferCtx) error {
			if len(c.in) < 2 {
				return c.fail("needs at least two inputs, has %d", len(c.in))
			}
			in, ch := c.in[0], 0
			for k, s := range c.in {
				if len(s) != 3 || s[1] != in[1] || s[2] != in[2] || len(in) != 3 {
					return c.fail("shape mismatch: input %d %v does not match input 0 %v (concat joins [C,H,W] maps of equal H and W)", k, s, in)
				}
				ch += s[0]
			}
			return c.out(ch, in[1], in[2])
		},
		forward: func(p *pass) error {
			off, size := 0, p.outShape(0).Size()
			for j := range p.nd.In {
				part := p.inShape(j).Size()
				copyChannels(p.x(j), p.y(0), p.batch(), part, size, off)
				off += part
			}
			return nil
		},
		backward: func(p *pass) error {
			off, size := 0, p.outShape(0).Size()
			for j := range p.nd.In {
				part := p.inShape(j).Size()
				if dx, done := p.dx(j); dx != nil {
					copyChannelsOut(p.dy(0), dx, p.batch(), size, part, off)
					done()
				}
				off += part
			}
			return nil
		},
		lower: func(l *lowering, n *Node) error {
			l.emitSimple(n, accel.OpConcat)
			return nil
		},
		op: accel.OpConcat,
		onnx: func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
			b.Node("Concat", name, in, out[:1], IntAttr("axis", 1))
			return nil
		},
		channels: func(*Node) ChannelRule { return ChannelsConcat },
		sample: []Layer{
			{Name: "a", Type: TypeConv, Out: 3, Kernel: 3, Pad: 1},
			{Name: "cat", Type: TypeConcat, Inputs: []string{InputName, "a", InputName}},
		},
	})
}

// copyChannels writes each sample's src block (size floats) into dst at
// float offset off of a sample of dstSize floats.
func copyChannels(src, dst []float32, n, size, dstSize, off int) {
	for s := 0; s < n; s++ {
		copy(dst[s*dstSize+off:s*dstSize+off+size], src[s*size:(s+1)*size])
	}
}

// copyChannelsOut is the inverse: it reads each sample's block of size
// floats at offset off of src (samples of srcSize floats) into dst.
func copyChannelsOut(src, dst []float32, n, srcSize, size, off int) {
	for s := 0; s < n; s++ {
		copy(dst[s*size:(s+1)*size], src[s*srcSize+off:s*srcSize+off+size])
	}
}
