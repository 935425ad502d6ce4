package nas

import (
	"slices"

	"hwnas/accel"
)

// add: the element-wise sum of two inputs of the same shape (a residual
// connection) with a fused activation. Plan op OpAdd, ONNX Add.
func init() {
	registerLayer(&layerType{
		names:  []string{TypeAdd},
		fields: []string{"act"},
		infer: func(c *inferCtx) error {
			if err := c.inputs(2); err != nil {
				return err
			}
			if !slices.Equal(c.in[0], c.in[1]) {
				return c.fail("shape mismatch: adds %v and %v", c.in[0], c.in[1])
			}
			return c.out(c.in[0]...)
		},
		forward: func(p *pass) error {
			a, b, y := p.x(0), p.x(1), p.y(0)
			for j := range y {
				y[j] = a[j] + b[j]
			}
			return p.activate(1, p.outShape(0).Size())
		},
		backward: func(p *pass) error {
			if err := p.deactivate(); err != nil {
				return err
			}
			for j := range p.nd.In {
				p.passGrad(j, p.dy(0))
			}
			return nil
		},
		lower: func(l *lowering, n *Node) error {
			l.emitSimple(n, accel.OpAdd)
			return nil
		},
		op: accel.OpAdd,
		onnx: func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
			outShape := b.Shape(op.Out[0])
			pre, finish := b.WithAct(op.Act, name, out[0])
			b.Node("Add", name, []string{
				b.Reshape(in[0], b.Shape(op.In[0]), outShape, name+"_a"),
				b.Reshape(in[1], b.Shape(op.In[1]), outShape, name+"_b"),
			}, []string{pre})
			return finish()
		},
		channels: func(*Node) ChannelRule { return ChannelsAdd },
		sample: []Layer{
			{Name: "a", Type: TypeConv, Out: 4, Kernel: 3, Pad: 1},
			{Name: "sum", Type: TypeAdd, Inputs: []string{InputName, "a"}, Act: "relu"},
			{Name: "b", Type: TypeConv, Out: 4, Kernel: 1},
			{Name: "sum2", Type: TypeAdd, Inputs: []string{"sum", "b"}},
		},
	})
}
