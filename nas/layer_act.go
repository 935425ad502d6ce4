package nas

import "hwnas/accel"

// relu, relu6, hardswish, and act (with act set): an element-wise
// activation, kind "act". In the plan it becomes the activation of the
// conv, linear, batch-norm or add op before it when that op has none and
// its output is read only here; otherwise OpAct. ONNX Relu, Clip(0, 6) or
// HardSwish.
func init() {
	registerLayer(&layerType{
		names:  []string{TypeAct, TypeReLU, TypeReLU6, TypeHardSwish},
		fields: []string{"act"},
		infer: func(c *inferCtx) error {
			if c.l.Type != TypeAct {
				c.n.Act, _ = accel.ParseAct(c.l.Type)
			} else if c.n.Act == accel.ActNone {
				return c.fail("needs act (relu, relu6 or hardswish)")
			}
			if err := c.one(false); err != nil {
				return err
			}
			return c.out(c.in[0]...)
		},
		defaults: func(l *Layer) {
			if l.Type != TypeAct {
				l.Act, l.Type = l.Type, TypeAct
			}
		},
		forward: func(p *pass) error {
			return p.k.BiasAct(p.batch(), 1, p.inShape(0).Size(), p.x(0), nil, p.nd.Act, p.y(0))
		},
		backward: func(p *pass) error {
			if dx, done := p.dx(0); dx != nil {
				if err := p.k.ActBackward(p.nd.Act, p.x(0), p.y(0), p.dy(0), dx); err != nil {
					return err
				}
				done()
			}
			return nil
		},
		lower: func(l *lowering, n *Node) error {
			if op := l.fusable(n.In[0], accel.OpConv, accel.OpLinear, accel.OpBatchNorm, accel.OpAdd); op != nil {
				op.Act = n.Act
				l.merged(n.Out[0], op)
				return nil
			}
			l.emitSimple(n, accel.OpAct)
			return nil
		},
		op: accel.OpAct,
		onnx: func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
			return b.Act(op.Act, name, b.Reshape(in[0], b.Shape(op.In[0]), b.Shape(op.Out[0]), name+"_in"), out[0])
		},
		channels: func(*Node) ChannelRule { return ChannelsPass },
		sample: []Layer{
			{Name: "c", Type: TypeConv, Out: 4, Kernel: 1},
			{Name: "r", Type: TypeReLU}, // fused into c
			{Name: "r6", Type: TypeReLU6},
			{Name: "p", Type: TypeMaxPool, Size: 2},
			{Name: "h", Type: TypeHardSwish},
			{Name: "a", Type: TypeAct, Act: "relu6"},
		},
	})
}
