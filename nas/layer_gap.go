package nas

import "hwnas/accel"

// gap: global average pooling, [C,H,W] → [C]. Plan op OpGlobalAvgPool,
// ONNX GlobalAveragePool (then a Reshape to [N, C]).
func init() {
	registerLayer(&layerType{
		names: []string{TypeGAP},
		infer: func(c *inferCtx) error {
			if err := c.one(true); err != nil {
				return err
			}
			return c.out(c.in[0][0])
		},
		forward: func(p *pass) error {
			s := p.inShape(0)
			return p.k.GlobalAvgPool(p.batch(), s[0], s[1]*s[2], p.x(0), p.y(0))
		},
		backward: func(p *pass) error {
			if dx, done := p.dx(0); dx != nil {
				s := p.inShape(0)
				if err := p.k.GlobalAvgPoolBackward(p.batch(), s[0], s[1]*s[2], p.dy(0), dx); err != nil {
					return err
				}
				done()
			}
			return nil
		},
		lower: func(l *lowering, n *Node) error {
			l.emitSimple(n, accel.OpGlobalAvgPool)
			return nil
		},
		op: accel.OpGlobalAvgPool,
		onnx: func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
			outShape := b.Shape(op.Out[0])
			if len(outShape) == 3 && outShape[1] == 1 && outShape[2] == 1 {
				b.Node("GlobalAveragePool", name, in[:1], out[:1])
				return nil
			}
			pooled := name + "_pooled"
			b.Node("GlobalAveragePool", name, in[:1], []string{pooled})
			b.Node("Reshape", name+"_reshape", []string{pooled, b.ShapeOf(outShape)}, out[:1])
			return nil
		},
		channels: func(*Node) ChannelRule { return ChannelsPass },
		sample:   []Layer{{Name: "gap", Type: TypeGAP}},
	})
}
