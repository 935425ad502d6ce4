package nas

import (
	"math"

	"hwnas/accel"
)

// batchnorm: per-channel normalisation of [C,H,W] (or per feature of [F])
// with a fused activation. Trainable γ (ones) and β (zeros), running mean
// (zeros) and variance (ones) as buffers. In training it normalises with
// the batch statistics and updates the running ones; in evaluation and in
// the plan it is y = x·s + t with s = γ/√(var+ε), t = β − s·mean, folded
// into the conv or linear op before it when that op has no activation,
// reads only it and has float weights. Plan op OpBatchNorm, ONNX
// BatchNormalization (mean 0, variance 1, ε 0: exactly x·s + t).
func init() {
	registerLayer(&layerType{
		names:  []string{TypeBatchNorm},
		fields: []string{"act"},
		infer: func(c *inferCtx) error {
			if err := c.one(false); err != nil {
				return err
			}
			return c.out(c.in[0]...)
		},
		params: func(g *Graph, n *Node) []paramSpec {
			c := g.InShape(n, 0)[0]
			return []paramSpec{
				{kind: "gamma", shape: []int{c}, init: initOnes, trainable: true},
				{kind: "beta", shape: []int{c}, trainable: true},
				{kind: "mean", shape: []int{c}},
				{kind: "var", shape: []int{c}, init: initOnes},
			}
		},
		forward: func(p *pass) error {
			s := p.inShape(0)
			c, hw := s[0], s.Size()/s[0]
			batchNorm(p, c, hw, p.x(0), p.y(0))
			return p.activate(c, hw)
		},
		backward: func(p *pass) error {
			if err := p.deactivate(); err != nil {
				return err
			}
			s := p.inShape(0)
			dx, done := p.dx(0)
			batchNormBackward(p, s[0], s.Size()/s[0], p.dy(0), dx)
			if dx != nil {
				done()
			}
			return nil
		},
		lower:    batchNormLower,
		op:       accel.OpBatchNorm,
		onnx:     batchNormONNX,
		channels: func(*Node) ChannelRule { return ChannelsPass },
		sample: []Layer{
			{Name: "c", Type: TypeConv, Out: 5, Kernel: 3, Bias: new(bool)},
			{Name: "bn", Type: TypeBatchNorm, Act: "hardswish"}, // folded into c
			{Name: "bn2", Type: TypeBatchNorm, Act: "relu"},     // an op of its own
		},
	})
}

// batchNorm normalises per channel (c channels of hw elements per sample):
// in training with the batch mean and biased variance (updating the
// running statistics with the unbiased variance), in evaluation with the
// running statistics; then y = γ·x̂ + β.
func batchNorm(p *pass, c, hw int, x, y []float32) {
	ws, i, n := p.ws, p.i, p.batch()
	gamma, beta := p.weights("gamma"), p.weights("beta")
	mean, vari := p.param("mean"), p.param("var")
	if !ws.train {
		for ch := 0; ch < c; ch++ {
			scale := gamma[ch] / float32(math.Sqrt(float64(vari.Data[ch])+bnEps))
			shift := beta[ch] - mean.Data[ch]*scale
			for s := 0; s < n; s++ {
				o := (s*c + ch) * hw
				for j := o; j < o+hw; j++ {
					y[j] = x[j]*scale + shift
				}
			}
		}
		return
	}
	if ws.xhat[i] == nil {
		ws.xhat[i] = make([]float32, len(x))
		ws.invstd[i] = make([]float32, c)
	}
	xhat, inv := ws.xhat[i], ws.invstd[i]
	cnt := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		var sum float64
		for s := 0; s < n; s++ {
			o := (s*c + ch) * hw
			sum += float64(sum32(x[o : o+hw]))
		}
		mu := sum / cnt
		var sq float64
		for s := 0; s < n; s++ {
			o := (s*c + ch) * hw
			sq += float64(sqdiff32(x[o:o+hw], float32(mu)))
		}
		v := sq / cnt
		is := 1 / math.Sqrt(v+bnEps)
		inv[ch] = float32(is)
		g, b := gamma[ch], beta[ch]
		fm, fis := float32(mu), float32(is)
		for s := 0; s < n; s++ {
			o := (s*c + ch) * hw
			for j := o; j < o+hw; j++ {
				h := (x[j] - fm) * fis
				xhat[j] = h
				y[j] = g*h + b
			}
		}
		unbiased := v
		if cnt > 1 {
			unbiased = sq / (cnt - 1)
		}
		mean.Data[ch] = float32((1-bnMomentum)*float64(mean.Data[ch]) + bnMomentum*mu)
		vari.Data[ch] = float32((1-bnMomentum)*float64(vari.Data[ch]) + bnMomentum*unbiased)
	}
}

// batchNormBackward computes dγ = Σ dy·x̂, dβ = Σ dy and, when dx is not
// nil, dx = (γ/σ)/M · (M·dy − Σdy − x̂·Σ(dy·x̂)) with M = n·hw per channel.
func batchNormBackward(p *pass, c, hw int, dy, dx []float32) {
	n := p.batch()
	xhat, inv := p.ws.xhat[p.i], p.ws.invstd[p.i]
	gamma := p.weights("gamma")
	dgamma, dbeta := p.grad("gamma"), p.grad("beta")
	cnt := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		var sdy, sdyx float64
		for s := 0; s < n; s++ {
			o := (s*c + ch) * hw
			sdy += float64(sum32(dy[o : o+hw]))
			sdyx += float64(dot32(dy[o:o+hw], xhat[o:o+hw]))
		}
		dgamma[ch] = float32(sdyx)
		dbeta[ch] = float32(sdy)
		if dx == nil {
			continue
		}
		f := float64(gamma[ch]) * float64(inv[ch]) / cnt
		for s := 0; s < n; s++ {
			o := (s*c + ch) * hw
			for j := o; j < o+hw; j++ {
				dx[j] = float32(f * (cnt*float64(dy[j]) - sdy - float64(xhat[j])*sdyx))
			}
		}
	}
}

// batchNormLower folds the batch norm into the conv or linear op that alone
// feeds it (see foldBatchNorm; int8 ops take it in their per-channel
// scales, see foldQuant), or emits OpBatchNorm with
// Scale = s and Shift = β − s·mean.
func batchNormLower(l *lowering, n *Node) error {
	lp := l.m.layers[n.Index]
	gamma, beta, mean, vari := lp["gamma"].Data, lp["beta"].Data, lp["mean"].Data, lp["var"].Data
	c := l.g.InShape(n, 0)[0]
	scale, shift := make([]float32, c), make([]float32, c)
	for ch := 0; ch < c; ch++ {
		s := float64(gamma[ch]) / math.Sqrt(float64(vari[ch])+bnEps)
		scale[ch] = float32(s)
		shift[ch] = float32(float64(beta[ch]) - s*float64(mean[ch]))
	}
	if op := l.fusable(n.In[0], accel.OpConv, accel.OpLinear); op != nil {
		q, ok := foldQuant(op.Quant, scale)
		if ok {
			op.Quant = q
			foldBatchNorm(op, scale, mean, beta)
			op.Act = n.Act
			l.merged(n.Out[0], op)
			return nil
		}
	}
	l.emit(accel.Op{Name: n.Layer.Name, Kind: accel.OpBatchNorm, In: l.ins(n), Out: []int{l.newTensor(n.Out[0])}, Act: n.Act, Scale: scale, Shift: shift})
	return nil
}

// foldQuant returns the int8 form q with a batch norm's per-output-channel
// scale s folded into it: Scale'[o] = |s[o]|·Scale[o], and the integer row
// negated where s[o] < 0, so that Scale'[o]·Q'[o] = s[o]·Scale[o]·Q[o]
// exactly while scales stay positive (as ONNX's DequantizeLinear and
// onnxruntime's integer kernels expect). The integers and the input
// quantization are unchanged otherwise: the int8 kernels compute
// conv(x)·Scale'[o] + B'[o], which is the batch norm of the unfolded op up
// to float rounding. q is not modified (the plan owns the copy). It
// reports false, leaving the batch norm as its own op, when a scale is zero
// or not finite, or a negated row would leave the integers' range (−128);
// a nil q folds trivially.
func foldQuant(q *accel.QuantWeights, s []float32) (*accel.QuantWeights, bool) {
	if q == nil {
		return nil, true
	}
	k := len(s)
	if k == 0 || len(q.Scale) != k || len(q.Q)%k != 0 {
		return nil, false
	}
	per := len(q.Q) / k
	c := *q
	c.Q = append([]int8(nil), q.Q...)
	c.Scale = make([]float32, k)
	for o, so := range s {
		a := float64(so)
		if a == 0 || math.IsNaN(a) || math.IsInf(a, 0) {
			return nil, false
		}
		c.Scale[o] = float32(math.Abs(a) * float64(q.Scale[o]))
		if a > 0 {
			continue
		}
		row := c.Q[o*per : (o+1)*per]
		for j, v := range row {
			if v == math.MinInt8 {
				return nil, false
			}
			row[j] = -v
		}
	}
	return &c, true
}

// foldBatchNorm merges a batch norm (per-output-channel scale s, running
// mean and β) into the conv or linear op that feeds it:
// W'[k,…] = s[k]·W[k,…] and B'[k] = s[k]·(B[k] − mean[k]) + β[k]; the
// sparse form's values are scaled too.
func foldBatchNorm(op *accel.Op, scale, mean, beta []float32) {
	k := len(scale)
	per := len(op.W) / k
	for o := 0; o < k; o++ {
		s := scale[o]
		for j := o * per; j < (o+1)*per; j++ {
			op.W[j] *= s
		}
	}
	if op.B == nil {
		op.B = make([]float32, k)
	}
	for o := 0; o < k; o++ {
		s := float64(scale[o])
		op.B[o] = float32(s*(float64(op.B[o])-float64(mean[o])) + float64(beta[o]))
	}
	if sp := op.Sparse; sp != nil {
		for r := 0; r < sp.Rows && r < k; r++ {
			for j := sp.RowPtr[r]; j < sp.RowPtr[r+1]; j++ {
				sp.Val[j] *= scale[r]
			}
		}
	}
}

func batchNormONNX(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
	inShape, outShape := b.Shape(op.In[0]), b.Shape(op.Out[0])
	c := int64(inShape[0])
	ones := make([]float32, c)
	for k := range ones {
		ones[k] = 1
	}
	args := []string{
		b.Reshape(in[0], inShape, outShape, name+"_in"),
		b.Floats(name+".scale", []int64{c}, op.Scale),
		b.Floats(name+".shift", []int64{c}, op.Shift),
		b.Floats(name+".mean", []int64{c}, make([]float32, c)),
		b.Floats(name+".var", []int64{c}, ones),
	}
	pre, finish := b.WithAct(op.Act, name, out[0])
	b.Node("BatchNormalization", name, args, []string{pre}, FloatAttr("epsilon", 0))
	return finish()
}
