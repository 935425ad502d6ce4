package nas

import (
	"fmt"

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

// forwardNode runs node i by its layer type's forward.
func (m *Model) forwardNode(k accel.Kernels, ws *workspace, i int, nd *Node) error {
	return nd.typ.forward(&pass{m: m, k: k, ws: ws, i: i, nd: nd})
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

// backwardNode runs node i's backward pass by its layer type.
func (m *Model) backwardNode(k accel.Kernels, ws *workspace, i int, nd *Node) error {
	return nd.typ.backward(&pass{m: m, k: k, ws: ws, i: i, nd: nd})
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
