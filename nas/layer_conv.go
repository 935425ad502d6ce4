package nas

import (
	"strings"

	"hwnas/accel"
)

// conv and dwconv: a 2-D convolution with optional groups, bias and fused
// activation; dwconv is the depthwise case (groups = out = input channels).
// Weights [K, C/G, KH, KW] He-initialised, bias [K] zero. Plan op OpConv,
// ONNX Conv (int8 weights through DequantizeLinear, an int8 input through
// QuantizeLinear/DequantizeLinear).
func init() {
	registerLayer(&layerType{
		names:  []string{TypeConv, TypeDWConv},
		fields: []string{"out", "kernel", "stride", "pad", "dilation", "groups", "act", "bias"},
		infer:  convInfer,
		defaults: func(l *Layer) {
			l.Stride, l.Dilation, l.Groups = one(l.Stride), one(l.Dilation), one(l.Groups)
			explicitBias(l)
		},
		params: func(_ *Graph, n *Node) []paramSpec {
			c := n.Conv
			cg := c.C / c.Groups
			ps := []paramSpec{{kind: "w", shape: []int{c.K, cg, c.KH, c.KW}, init: initHe, fanIn: cg * c.KH * c.KW, trainable: true}}
			if n.Layer.HasBias() {
				ps = append(ps, paramSpec{kind: "b", shape: []int{c.K}, trainable: true})
			}
			return ps
		},
		weighted: true,
		macs:     func(_ *Graph, n *Node) int64 { return n.Conv.MACs() },
		forward:  convForward,
		backward: convBackward,
		lower:    lowerWeighted,
		op:       accel.OpConv,
		onnx:     convONNX,
		channels: func(n *Node) ChannelRule {
			switch c := n.Conv; {
			case c.Groups == c.C && c.K == c.C && c.Groups > 1:
				return ChannelsDepthwise
			case c.Groups > 1:
				return ChannelsRefuse
			}
			return ChannelsAbsorb
		},
		sample: []Layer{
			{Name: "c", Type: TypeConv, Out: 6, Kernel: 3, Pad: 1, Act: "relu"},
			{Name: "g", Type: TypeConv, Out: 4, Kernel: 3, Groups: 2, Dilation: 2, Bias: new(bool)},
			{Name: "d", Type: TypeDWConv, Kernel: 3, Pad: 1, Stride: 2, Act: "hardswish"},
		},
	})
}

func convInfer(c *inferCtx) error {
	l, in := c.l, c.in[0]
	if err := c.one(true); err != nil {
		return err
	}
	groups, k := one(l.Groups), l.Out
	if l.Type == TypeDWConv {
		if l.Groups != 0 && l.Groups != in[0] {
			return c.fail("dwconv groups %d must equal the %d input channels", l.Groups, in[0])
		}
		groups = in[0]
		if k == 0 {
			k = in[0]
		}
	}
	if k == 0 {
		return c.fail("needs out (output channels)")
	}
	if l.Kernel == 0 {
		return c.fail("needs kernel")
	}
	p := accel.ConvParams{N: 1, C: in[0], H: in[1], W: in[2], K: k, KH: l.Kernel, KW: l.Kernel,
		StrideH: one(l.Stride), StrideW: one(l.Stride), PadH: l.Pad, PadW: l.Pad,
		DilH: one(l.Dilation), DilW: one(l.Dilation), Groups: groups}
	if err := p.Validate(); err != nil {
		return c.fail("shape mismatch for input %v: %v", in, strings.TrimPrefix(err.Error(), "conv: "))
	}
	if w := float64(k) * float64(in[0]/groups) * float64(l.Kernel) * float64(l.Kernel); w > maxWeights {
		return c.fail("%.0f weights are too many (at most %d per layer)", w, maxWeights)
	}
	c.n.Conv = p
	return c.out(k, p.OutH(), p.OutW())
}

func convForward(p *pass) error {
	c := p.nd.Conv
	c.N = p.batch()
	if err := p.k.Conv2D(c, p.x(0), p.weights("w"), p.weights("b"), p.fusedAct(), p.y(0)); err != nil {
		return err
	}
	return p.finishAct(c.K, c.OutH()*c.OutW())
}

func convBackward(p *pass) error {
	if err := p.deactivate(); err != nil {
		return err
	}
	c := p.nd.Conv
	c.N = p.batch()
	if err := p.k.Conv2DBackwardFilter(c, p.x(0), p.dy(0), p.grad("w"), p.grad("b")); err != nil {
		return err
	}
	if dx, done := p.dx(0); dx != nil {
		if err := p.k.Conv2DBackwardData(c, p.weights("w"), p.dy(0), dx); err != nil {
			return err
		}
		done()
	}
	return nil
}

// lowerWeighted lowers a conv or linear node: its float weights (copied),
// its compressed forms (Model.Quant, Model.Sparse), and the input
// normalisation folded in when it is the node Lower chose for that.
func lowerWeighted(l *lowering, n *Node) error {
	name, m := n.Layer.Name, l.m
	op := accel.Op{Name: name, Kind: n.typ.op, In: l.ins(n), Act: n.Act,
		W: append([]float32(nil), m.layers[n.Index]["w"].Data...), Quant: m.Quant[name], Sparse: copySparse(m.Sparse[name])}
	if b := m.layers[n.Index]["b"]; b != nil {
		op.B = append([]float32(nil), b.Data...)
	}
	if op.Kind == accel.OpConv {
		op.Conv = n.Conv
		op.Conv.N = 0
	}
	if n.Index == l.normFold {
		m.foldNormalization(&op, l.g.OutShape(n)[0])
	}
	op.Out = []int{l.newTensor(n.Out[0])}
	l.emit(op)
	return nil
}

func convONNX(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
	c := op.Conv.Norm()
	c.C = b.Shape(op.In[0])[0]
	x, err := b.Input(op, name, in[0])
	if err != nil {
		return err
	}
	w, err := b.Weights(op, name, []int64{int64(c.K), int64(c.C / c.Groups), int64(c.KH), int64(c.KW)})
	if err != nil {
		return err
	}
	args := []string{x, w}
	if op.B != nil {
		args = append(args, b.Floats(name+".bias", []int64{int64(c.K)}, op.B))
	}
	pre, finish := b.WithAct(op.Act, name, out[0])
	b.Node("Conv", name, args, []string{pre},
		IntsAttr("kernel_shape", int64(c.KH), int64(c.KW)),
		IntsAttr("strides", int64(c.StrideH), int64(c.StrideW)),
		IntsAttr("pads", int64(c.PadH), int64(c.PadW), int64(c.PadH), int64(c.PadW)),
		IntsAttr("dilations", int64(c.DilH), int64(c.DilW)),
		IntAttr("group", int64(c.Groups)))
	return finish()
}
