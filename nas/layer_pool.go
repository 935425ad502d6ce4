package nas

import (
	"strings"

	"hwnas/accel"
)

// maxpool and avgpool: size×size windows (size 2 by default) at stride
// (size by default) with padding; average pooling does not count the
// padding. Plan ops OpMaxPool and OpAvgPool, ONNX MaxPool and AveragePool
// (count_include_pad 0).
func init() {
	for _, k := range []struct {
		name string
		op   accel.OpKind
	}{{TypeMaxPool, accel.OpMaxPool}, {TypeAvgPool, accel.OpAvgPool}} {
		registerLayer(&layerType{
			names:  []string{k.name},
			fields: []string{"size", "stride", "pad"},
			infer:  poolInfer,
			defaults: func(l *Layer) {
				if l.Size == 0 {
					l.Size = 2
				}
				if l.Stride == 0 {
					l.Stride = l.Size
				}
			},
			forward:  poolForward,
			backward: poolBackward,
			lower: func(l *lowering, n *Node) error {
				op := accel.Op{Name: n.Layer.Name, Kind: n.typ.op, In: l.ins(n), Out: []int{l.newTensor(n.Out[0])}, Pool: n.Pool}
				op.Pool.N = 0
				l.emit(op)
				return nil
			},
			op:       k.op,
			onnx:     poolONNX,
			channels: func(*Node) ChannelRule { return ChannelsPass },
			sample: []Layer{
				{Name: "p", Type: k.name},
				{Name: "p3", Type: k.name, Size: 3, Stride: 1, Pad: 1},
			},
		})
	}
}

func poolInfer(c *inferCtx) error {
	if err := c.one(true); err != nil {
		return err
	}
	l, in := c.l, c.in[0]
	size := l.Size
	if size == 0 {
		size = 2
	}
	stride := l.Stride
	if stride == 0 {
		stride = size
	}
	p := accel.PoolParams{N: 1, C: in[0], H: in[1], W: in[2], KH: size, KW: size, StrideH: stride, StrideW: stride, PadH: l.Pad, PadW: l.Pad}
	if err := p.Validate(); err != nil {
		return c.fail("shape mismatch for input %v: %v", in, strings.TrimPrefix(err.Error(), "pool: "))
	}
	c.n.Pool = p
	return c.out(in[0], p.OutH(), p.OutW())
}

func poolForward(p *pass) error {
	q := p.nd.Pool
	q.N = p.batch()
	if p.nd.Kind == TypeAvgPool {
		return p.k.AvgPool2D(q, p.x(0), p.y(0))
	}
	var am []int32
	if p.train() {
		if p.ws.argmax[p.i] == nil {
			p.ws.argmax[p.i] = make([]int32, len(p.y(0)))
		}
		am = p.ws.argmax[p.i]
	}
	return p.k.MaxPool2D(q, p.x(0), p.y(0), am)
}

func poolBackward(p *pass) error {
	dx, done := p.dx(0)
	if dx == nil {
		return nil
	}
	q := p.nd.Pool
	q.N = p.batch()
	var err error
	if p.nd.Kind == TypeMaxPool {
		err = p.k.MaxPool2DBackward(q, p.dy(0), p.ws.argmax[p.i], dx)
	} else {
		err = p.k.AvgPool2DBackward(q, p.dy(0), dx)
	}
	if err != nil {
		return err
	}
	done()
	return nil
}

func poolONNX(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
	q := op.Pool
	attrs := []ONNXAttr{
		IntsAttr("kernel_shape", int64(q.KH), int64(q.KW)),
		IntsAttr("strides", int64(max(q.StrideH, 1)), int64(max(q.StrideW, 1))),
		IntsAttr("pads", int64(q.PadH), int64(q.PadW), int64(q.PadH), int64(q.PadW)),
	}
	typ := "MaxPool"
	if op.Kind == accel.OpAvgPool {
		typ = "AveragePool"
		attrs = append(attrs, IntAttr("count_include_pad", 0))
	}
	b.Node(typ, name, in[:1], out[:1], attrs...)
	return nil
}
