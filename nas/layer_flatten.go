package nas

import "hwnas/accel"

// flatten: [C,H,W] → [C·H·W], the same memory. Plan op OpFlatten, ONNX
// Reshape (onnxruntime carries quantization through Reshape, not
// Flatten).
func init() {
	registerLayer(&layerType{
		names: []string{TypeFlatten},
		infer: func(c *inferCtx) error {
			if err := c.one(false); err != nil {
				return err
			}
			return c.out(c.in[0].Size())
		},
		forward: func(p *pass) error {
			copy(p.y(0), p.x(0))
			return nil
		},
		backward: func(p *pass) error {
			p.passGrad(0, p.dy(0))
			return nil
		},
		lower: func(l *lowering, n *Node) error {
			l.emitSimple(n, accel.OpFlatten)
			return nil
		},
		op: accel.OpFlatten,
		onnx: func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
			b.Node("Reshape", name, []string{in[0], b.ShapeOf(b.Shape(op.Out[0]))}, out[:1])
			return nil
		},
		channels: func(*Node) ChannelRule { return ChannelsFlatten },
		sample:   []Layer{{Name: "flat", Type: TypeFlatten}},
	})
}
