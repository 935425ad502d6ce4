package nas

import (
	"fmt"
	"math"

	"hwnas/accel"
)

// workspace holds the buffers of one batch size: every tensor's values and
// gradients, pre-activations that hard-swish backward needs, max-pool
// argmax, batch-norm normalised inputs and 1/σ, and transformed weights.
type workspace struct {
	n      int
	acts   [][]float32
	grads  [][]float32
	pre    [][]float32          // per node, hard-swish only
	argmax [][]int32            // per node, maxpool only
	xhat   [][]float32          // per node, batchnorm, training
	invstd [][]float32          // per node, batchnorm, training
	scr    []float32            // gradient scratch for tensors read by several nodes
	eff    map[*Param][]float32 // weights the forward pass uses instead of Data
	wbuf   map[*Param][]float32 // WeightTransform buffers
	train  bool
}

func (m *Model) workspace(n int) *workspace {
	if ws := m.ws[n]; ws != nil {
		return ws
	}
	if len(m.ws) >= 4 { // training, its last batch, evaluation, its last batch
		clear(m.ws)
	}
	if m.ws == nil {
		m.ws = map[int]*workspace{}
	}
	g := m.Graph
	ws := &workspace{n: n, acts: make([][]float32, len(g.Tensors)), grads: make([][]float32, len(g.Tensors)),
		pre: make([][]float32, len(g.Nodes)), argmax: make([][]int32, len(g.Nodes)),
		xhat: make([][]float32, len(g.Nodes)), invstd: make([][]float32, len(g.Nodes)), eff: map[*Param][]float32{}, wbuf: map[*Param][]float32{}}
	maxSize := 0
	for t, s := range g.Tensors {
		ws.acts[t] = make([]float32, n*s.Size())
		maxSize = max(maxSize, n*s.Size())
	}
	ws.scr = make([]float32, maxSize)
	m.ws[n] = ws
	return ws
}

// weights returns the tensor the forward pass uses for p: p.Data, or its
// transformed copy when the model has a WeightTransform that applies.
func (m *Model) weights(ws *workspace, p *Param) []float32 {
	if p == nil {
		return nil
	}
	if w, ok := ws.eff[p]; ok {
		return w
	}
	return p.Data
}

// Forward runs the model in evaluation mode (batch-norm running statistics)
// on n samples x (n·input size floats) and returns the n×classes logits in
// a new slice.
func (m *Model) Forward(x []float32, n int) ([]float32, error) {
	ws, err := m.forward(x, n, false)
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), ws.acts[m.Graph.Output]...), nil
}

// forward runs every node; in training mode batch norm uses the batch
// statistics and updates the running ones, and what backward needs is kept.
func (m *Model) forward(x []float32, n int, train bool) (*workspace, error) {
	k, err := m.kernels()
	if err != nil {
		return nil, err
	}
	g := m.Graph
	if n <= 0 || len(x) != n*g.Tensors[0].Size() {
		return nil, fmt.Errorf("model %q: forward of %d samples needs %d input floats, got %d", m.Arch.Name, n, n*g.Tensors[0].Size(), len(x))
	}
	ws := m.workspace(n)
	ws.train = train
	copy(ws.acts[0], x)
	if nz := m.Arch.Normalize; nz != nil {
		nz.Apply(ws.acts[0], g.Tensors[0].Size()/len(nz.Mean))
	}
	clear(ws.eff)
	if m.WeightTransform != nil {
		for _, p := range m.Params {
			w := ws.wbuf[p]
			if w == nil {
				w = make([]float32, len(p.Data))
				ws.wbuf[p] = w
			}
			if m.WeightTransform(p, w) {
				ws.eff[p] = w
			}
		}
	}
	for i, nd := range g.Nodes {
		if err := m.forwardNode(k, ws, i, nd); err != nil {
			return nil, fmt.Errorf("model %q: layer %q: %w", m.Arch.Name, nd.Layer.Name, err)
		}
	}
	return ws, nil
}

func (m *Model) forwardNode(k accel.Kernels, ws *workspace, i int, nd *Node) error {
	g, n := m.Graph, ws.n
	x, y := ws.acts[nd.In[0]], ws.acts[nd.Out[0]]
	lp := &m.layers[i]
	inS, outS := g.Tensors[nd.In[0]], g.Tensors[nd.Out[0]]
	// act applies the node's activation in place, keeping the input when
	// hard-swish backward will need it.
	act := func(c, hw int) error {
		if nd.Act == accel.ActNone {
			return nil
		}
		if ws.train && nd.Act == accel.ActHardSwish {
			if ws.pre[i] == nil {
				ws.pre[i] = make([]float32, len(y))
			}
			copy(ws.pre[i], y)
		}
		return k.BiasAct(n, c, hw, y, nil, nd.Act, y)
	}
	switch nd.Kind {
	case TypeConv:
		p := nd.Conv
		p.N = n
		a := nd.Act
		if ws.train && a == accel.ActHardSwish {
			a = accel.ActNone
		}
		if err := k.Conv2D(p, x, m.weights(ws, lp.w), m.weights(ws, lp.b), a, y); err != nil {
			return err
		}
		if a != nd.Act {
			return act(p.K, p.OutH()*p.OutW())
		}
	case TypeLinear:
		in, out := inS.Size(), outS[0]
		if err := k.Sgemm(false, true, n, out, in, 1, x, in, m.weights(ws, lp.w), in, 0, y, out); err != nil {
			return err
		}
		a := nd.Act
		if ws.train && a == accel.ActHardSwish {
			a = accel.ActNone
		}
		if err := k.BiasAct(n, out, 1, y, m.weights(ws, lp.b), a, y); err != nil {
			return err
		}
		if a != nd.Act {
			return act(out, 1)
		}
	case TypeBatchNorm:
		c, hw := inS[0], inS.Size()/inS[0]
		m.batchNorm(ws, i, nd, c, hw, x, y)
		return act(c, hw)
	case TypeAct:
		return k.BiasAct(n, 1, inS.Size(), x, nil, nd.Act, y)
	case TypeMaxPool, TypeAvgPool:
		p := nd.Pool
		p.N = n
		if nd.Kind == TypeAvgPool {
			return k.AvgPool2D(p, x, y)
		}
		var am []int32
		if ws.train {
			if ws.argmax[i] == nil {
				ws.argmax[i] = make([]int32, len(y))
			}
			am = ws.argmax[i]
		}
		return k.MaxPool2D(p, x, y, am)
	case TypeGAP:
		return k.GlobalAvgPool(n, inS[0], inS[1]*inS[2], x, y)
	case TypeFlatten:
		copy(y, x)
	case TypeAdd:
		b := ws.acts[nd.In[1]]
		for j := range y {
			y[j] = x[j] + b[j]
		}
		return act(1, outS.Size())
	case TypeConcat:
		off := 0
		for _, t := range nd.In {
			copyChannels(ws.acts[t], y, n, g.Tensors[t].Size(), outS.Size(), off)
			off += g.Tensors[t].Size()
		}
	case TypeSplit:
		off := 0
		for _, t := range nd.Out {
			copyChannelsOut(x, ws.acts[t], n, inS.Size(), g.Tensors[t].Size(), off)
			off += g.Tensors[t].Size()
		}
	case TypeShuffle:
		shuffle(x, y, n, inS[0], inS[1]*inS[2], nd.Layer.Groups, false)
	default:
		return fmt.Errorf("unsupported layer kind %q", nd.Kind)
	}
	return nil
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

// shuffle is the ShuffleNet channel shuffle: with C channels in g groups
// of C/g, input channel i·(C/g)+j goes to output channel j·g+i (reshape to
// g×(C/g), transpose, flatten). inverse undoes it (for the backward pass).
func shuffle(x, y []float32, n, c, hw, g int, inverse bool) {
	per := c / g
	for s := 0; s < n; s++ {
		base := s * c * hw
		for i := 0; i < g; i++ {
			for j := 0; j < per; j++ {
				src, dst := i*per+j, j*g+i
				if inverse {
					src, dst = dst, src
				}
				copy(y[base+dst*hw:base+(dst+1)*hw], x[base+src*hw:base+(src+1)*hw])
			}
		}
	}
}

// batchNorm normalises per channel (c channels of hw elements per sample):
// in training with the batch mean and biased variance (updating the
// running statistics with the unbiased variance), in evaluation with the
// running statistics; then y = γ·x̂ + β.
func (m *Model) batchNorm(ws *workspace, i int, nd *Node, c, hw int, x, y []float32) {
	lp := &m.layers[i]
	n := ws.n
	gamma, beta := m.weights(ws, lp.gamma), m.weights(ws, lp.beta)
	if !ws.train {
		mean, vari := lp.mean.Data, lp.vari.Data
		for ch := 0; ch < c; ch++ {
			scale := gamma[ch] / float32(math.Sqrt(float64(vari[ch])+bnEps))
			shift := beta[ch] - mean[ch]*scale
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
		mean := sum / cnt
		var sq float64
		for s := 0; s < n; s++ {
			o := (s*c + ch) * hw
			sq += float64(sqdiff32(x[o:o+hw], float32(mean)))
		}
		v := sq / cnt
		is := 1 / math.Sqrt(v+bnEps)
		inv[ch] = float32(is)
		g, b := gamma[ch], beta[ch]
		fm, fis := float32(mean), float32(is)
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
		lp.mean.Data[ch] = float32((1-bnMomentum)*float64(lp.mean.Data[ch]) + bnMomentum*mean)
		lp.vari.Data[ch] = float32((1-bnMomentum)*float64(lp.vari.Data[ch]) + bnMomentum*unbiased)
	}
}

// backward propagates dlogits (n×classes) through the graph of the last
// training forward pass and writes every parameter's Grad.
func (m *Model) backward(ws *workspace, dlogits []float32) error {
	k, err := m.kernels()
	if err != nil {
		return err
	}
	g := m.Graph
	// A tensor read by one node gets its gradient written directly; one
	// read by several accumulates.
	for t := range g.Tensors {
		if t == 0 {
			continue
		}
		if ws.grads[t] == nil {
			ws.grads[t] = make([]float32, len(ws.acts[t]))
		}
		if len(g.Consumers[t]) > 1 {
			clear(ws.grads[t])
		}
	}
	copy(ws.grads[g.Output], dlogits)
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		nd := g.Nodes[i]
		if err := m.backwardNode(k, ws, i, nd); err != nil {
			return fmt.Errorf("model %q: layer %q backward: %w", m.Arch.Name, nd.Layer.Name, err)
		}
	}
	return nil
}

// dxFor returns where node backward should write the gradient of its input
// tensor t, and a function to call afterwards (which adds the scratch into
// the accumulated gradient when t has several readers). It returns nil for
// the network input, whose gradient nobody needs.
func (ws *workspace) dxFor(g *Graph, t int) ([]float32, func()) {
	if t == 0 {
		return nil, func() {}
	}
	if len(g.Consumers[t]) == 1 {
		return ws.grads[t], func() {}
	}
	s := ws.scr[:len(ws.grads[t])]
	return s, func() {
		d := ws.grads[t]
		for j, v := range s {
			d[j] += v
		}
	}
}

func (m *Model) backwardNode(k accel.Kernels, ws *workspace, i int, nd *Node) error {
	g, n := m.Graph, ws.n
	lp := &m.layers[i]
	x, y, dy := ws.acts[nd.In[0]], ws.acts[nd.Out[0]], ws.grads[nd.Out[0]]
	inS, outS := g.Tensors[nd.In[0]], g.Tensors[nd.Out[0]]
	// dpre turns dy into the gradient before the node's activation, in place.
	dpre := func() error {
		if nd.Act == accel.ActNone {
			return nil
		}
		return k.ActBackward(nd.Act, ws.pre[i], y, dy, dy)
	}
	switch nd.Kind {
	case TypeConv:
		if err := dpre(); err != nil {
			return err
		}
		p := nd.Conv
		p.N = n
		var db []float32
		if lp.b != nil {
			db = lp.b.Grad
		}
		if err := k.Conv2DBackwardFilter(p, x, dy, lp.w.Grad, db); err != nil {
			return err
		}
		if dx, done := ws.dxFor(g, nd.In[0]); dx != nil {
			if err := k.Conv2DBackwardData(p, m.weights(ws, lp.w), dy, dx); err != nil {
				return err
			}
			done()
		}
	case TypeLinear:
		if err := dpre(); err != nil {
			return err
		}
		in, out := inS.Size(), outS[0]
		// dW = dyᵀ·x, db = Σ dy, dx = dy·W.
		if err := k.Sgemm(true, false, out, in, n, 1, dy, out, x, in, 0, lp.w.Grad, in); err != nil {
			return err
		}
		if lp.b != nil {
			if err := k.BiasBackward(n, out, 1, dy, lp.b.Grad); err != nil {
				return err
			}
		}
		if dx, done := ws.dxFor(g, nd.In[0]); dx != nil {
			if err := k.Sgemm(false, false, n, in, out, 1, dy, out, m.weights(ws, lp.w), in, 0, dx, in); err != nil {
				return err
			}
			done()
		}
	case TypeBatchNorm:
		if err := dpre(); err != nil {
			return err
		}
		c, hw := inS[0], inS.Size()/inS[0]
		dx, done := ws.dxFor(g, nd.In[0])
		m.batchNormBackward(ws, i, c, hw, dy, dx)
		if dx != nil {
			done()
		}
	case TypeAct:
		if dx, done := ws.dxFor(g, nd.In[0]); dx != nil {
			if err := k.ActBackward(nd.Act, x, y, dy, dx); err != nil {
				return err
			}
			done()
		}
	case TypeMaxPool, TypeAvgPool:
		dx, done := ws.dxFor(g, nd.In[0])
		if dx == nil {
			return nil
		}
		p := nd.Pool
		p.N = n
		var err error
		if nd.Kind == TypeMaxPool {
			err = k.MaxPool2DBackward(p, dy, ws.argmax[i], dx)
		} else {
			err = k.AvgPool2DBackward(p, dy, dx)
		}
		if err != nil {
			return err
		}
		done()
	case TypeGAP:
		if dx, done := ws.dxFor(g, nd.In[0]); dx != nil {
			if err := k.GlobalAvgPoolBackward(n, inS[0], inS[1]*inS[2], dy, dx); err != nil {
				return err
			}
			done()
		}
	case TypeFlatten:
		if dx, done := ws.dxFor(g, nd.In[0]); dx != nil {
			copy(dx, dy)
			done()
		}
	case TypeAdd:
		if err := dpre(); err != nil {
			return err
		}
		for _, t := range nd.In {
			if dx, done := ws.dxFor(g, t); dx != nil {
				copy(dx, dy)
				done()
			}
		}
	case TypeConcat:
		off := 0
		for _, t := range nd.In {
			size := g.Tensors[t].Size()
			if dx, done := ws.dxFor(g, t); dx != nil {
				copyChannelsOut(dy, dx, n, outS.Size(), size, off)
				done()
			}
			off += size
		}
	case TypeSplit:
		dx, done := ws.dxFor(g, nd.In[0])
		if dx == nil {
			return nil
		}
		off := 0
		for _, t := range nd.Out {
			size := g.Tensors[t].Size()
			copyChannels(ws.grads[t], dx, n, size, inS.Size(), off)
			off += size
		}
		done()
	case TypeShuffle:
		if dx, done := ws.dxFor(g, nd.In[0]); dx != nil {
			shuffle(dy, dx, n, inS[0], inS[1]*inS[2], nd.Layer.Groups, true)
			done()
		}
	default:
		return fmt.Errorf("unsupported layer kind %q", nd.Kind)
	}
	return nil
}

// batchNormBackward computes dγ = Σ dy·x̂, dβ = Σ dy and, when dx is not
// nil, dx = (γ/σ)/M · (M·dy − Σdy − x̂·Σ(dy·x̂)) with M = n·hw per channel.
func (m *Model) batchNormBackward(ws *workspace, i, c, hw int, dy, dx []float32) {
	lp := &m.layers[i]
	n := ws.n
	xhat, inv := ws.xhat[i], ws.invstd[i]
	gamma := m.weights(ws, lp.gamma)
	cnt := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		var sdy, sdyx float64
		for s := 0; s < n; s++ {
			o := (s*c + ch) * hw
			sdy += float64(sum32(dy[o : o+hw]))
			sdyx += float64(dot32(dy[o:o+hw], xhat[o:o+hw]))
		}
		lp.gamma.Grad[ch] = float32(sdyx)
		lp.beta.Grad[ch] = float32(sdy)
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

// sum32, sqdiff32 and dot32 reduce one plane with four independent
// float32 accumulators (planes are short; callers add planes in float64).

// sum32 returns Σ x.
func sum32(x []float32) float32 {
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a0 += x[i]
		a1 += x[i+1]
		a2 += x[i+2]
		a3 += x[i+3]
	}
	for ; i < len(x); i++ {
		a0 += x[i]
	}
	return (a0 + a1) + (a2 + a3)
}

// sqdiff32 returns Σ (x − m)².
func sqdiff32(x []float32, m float32) float32 {
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := x[i]-m, x[i+1]-m, x[i+2]-m, x[i+3]-m
		a0 += d0 * d0
		a1 += d1 * d1
		a2 += d2 * d2
		a3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := x[i] - m
		a0 += d * d
	}
	return (a0 + a1) + (a2 + a3)
}

// dot32 returns Σ a·b over len(a) elements (b at least as long).
func dot32(a, b []float32) float32 {
	b = b[:len(a)]
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		a0 += a[i] * b[i]
		a1 += a[i+1] * b[i+1]
		a2 += a[i+2] * b[i+2]
		a3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		a0 += a[i] * b[i]
	}
	return (a0 + a1) + (a2 + a3)
}
