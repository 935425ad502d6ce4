package nas

import (
	"fmt"

	"hwnas/accel"
)

// linear: y = x·Wᵀ + b with a fused activation; any input shape is read
// as a flat vector. Weights [Out, In] He-initialised, bias [Out] zero.
// Plan op OpLinear, ONNX Gemm (transB) after a Reshape to [N, In].
func init() {
	registerLayer(&layerType{
		names:    []string{TypeLinear},
		fields:   []string{"out", "act", "bias"},
		infer:    linearInfer,
		defaults: explicitBias,
		params: func(g *Graph, n *Node) []paramSpec {
			in, out := g.InShape(n, 0).Size(), g.OutShape(n)[0]
			ps := []paramSpec{{kind: "w", shape: []int{out, in}, init: initHe, fanIn: in, trainable: true}}
			if n.Layer.HasBias() {
				ps = append(ps, paramSpec{kind: "b", shape: []int{out}, trainable: true})
			}
			return ps
		},
		weighted: true,
		macs:     func(g *Graph, n *Node) int64 { return int64(g.InShape(n, 0).Size()) * int64(g.OutShape(n)[0]) },
		forward:  linearForward,
		backward: linearBackward,
		lower:    lowerWeighted,
		op:       accel.OpLinear,
		onnx:     linearONNX,
		channels: func(*Node) ChannelRule { return ChannelsAbsorb },
		sample: []Layer{
			{Name: "fc", Type: TypeLinear, Out: 5, Act: "relu6"},
			{Name: "fc2", Type: TypeLinear, Out: 4, Bias: new(bool)},
		},
	})
}

// explicitBias writes a conv or linear layer's bias (default true).
func explicitBias(l *Layer) {
	b := l.HasBias()
	l.Bias = &b
}

func linearInfer(c *inferCtx) error {
	if err := c.one(false); err != nil {
		return err
	}
	if c.l.Out == 0 {
		return c.fail("needs out (output features)")
	}
	if w := float64(c.in[0].Size()) * float64(c.l.Out); w > maxWeights {
		return c.fail("%d×%d weights are too many (at most %d per layer)", c.l.Out, c.in[0].Size(), maxWeights)
	}
	return c.out(c.l.Out)
}

func linearForward(p *pass) error {
	n, in, out := p.batch(), p.inShape(0).Size(), p.outShape(0)[0]
	y := p.y(0)
	if err := p.k.Sgemm(false, true, n, out, in, 1, p.x(0), in, p.weights("w"), in, 0, y, out); err != nil {
		return err
	}
	if err := p.k.BiasAct(n, out, 1, y, p.weights("b"), p.fusedAct(), y); err != nil {
		return err
	}
	return p.finishAct(out, 1)
}

// linearBackward: dW = dyᵀ·x, db = Σ dy, dx = dy·W.
func linearBackward(p *pass) error {
	if err := p.deactivate(); err != nil {
		return err
	}
	n, in, out := p.batch(), p.inShape(0).Size(), p.outShape(0)[0]
	dy := p.dy(0)
	if err := p.k.Sgemm(true, false, out, in, n, 1, dy, out, p.x(0), in, 0, p.grad("w"), in); err != nil {
		return err
	}
	if db := p.grad("b"); db != nil {
		if err := p.k.BiasBackward(n, out, 1, dy, db); err != nil {
			return err
		}
	}
	if dx, done := p.dx(0); dx != nil {
		if err := p.k.Sgemm(false, false, n, in, out, 1, dy, out, p.weights("w"), in, 0, dx, in); err != nil {
			return err
		}
		done()
	}
	return nil
}

func linearONNX(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
	inShape, outShape := b.Shape(op.In[0]), b.Shape(op.Out[0])
	nin, nout := inShape.Size(), outShape.Size()
	if len(outShape) != 1 {
		return fmt.Errorf("output shape %v, want a vector", outShape)
	}
	x, err := b.Input(op, name, b.Reshape(in[0], inShape, accel.Shape{nin}, name+"_in"))
	if err != nil {
		return err
	}
	w, err := b.Weights(op, name, []int64{int64(nout), int64(nin)})
	if err != nil {
		return err
	}
	args := []string{x, w}
	if op.B != nil {
		args = append(args, b.Floats(name+".bias", []int64{int64(nout)}, op.B))
	}
	pre, finish := b.WithAct(op.Act, name, out[0])
	b.Node("Gemm", name, args, []string{pre}, IntAttr("transB", 1))
	return finish()
}
