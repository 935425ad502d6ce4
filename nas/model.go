package nas

import (
	"fmt"
	"math"
	"math/rand/v2"

	"hwnas/accel"
)

// Param is one named tensor of a model: a trainable parameter (Grad has the
// same length as Data) or a buffer such as a batch-norm running statistic
// (Grad is nil). Names are "<layer>.<kind>": conv and linear layers have
// "w" (shape [K, C/G, KH, KW] or [Out, In]) and "b" ([K]); batch norm has
// "gamma", "beta" (trainable) and "mean", "var" (buffers), all [C].
type Param struct {
	Name  string
	Shape []int
	Data  []float32
	Grad  []float32
}

// WeightTransform, when set on a model, is called before every forward
// pass (training and evaluation) for every trainable parameter p; when it
// returns true the forward pass uses w (a scratch buffer of len(p.Data)
// that it filled) instead of p.Data. Gradients computed with the
// transformed weights are stored in p.Grad and applied to p.Data: the
// straight-through estimator, as fake quantization needs. It must not
// keep w.
type WeightTransform func(p *Param, w []float32) bool

// Model is a graph with parameters. It is not safe for concurrent use:
// forward passes share the model's work buffers.
type Model struct {
	Arch  *Arch
	Graph *Graph
	// Params are the trainable tensors in layer order; Buffers hold the
	// batch-norm running statistics.
	Params  []*Param
	Buffers []*Param

	// Quant and Sparse carry compressed forms of conv and linear weights,
	// keyed by layer name (package compress fills them); Lower copies them
	// into the plan's ops.
	Quant  map[string]*accel.QuantWeights
	Sparse map[string]*accel.SparseWeights

	// Kernels run the forward and backward passes. Nil means the "cpu"
	// backend's kernels, opened on first use (see DefaultKernels).
	Kernels accel.Kernels
	// WeightTransform, when not nil, transforms the weights of every
	// forward pass (see WeightTransform).
	WeightTransform WeightTransform

	byName map[string]*Param
	layers []map[string]*Param // per node: its tensors by kind ("w", "gamma")
	ws     map[int]*workspace  // by batch size
}

// BatchNorm constants: ε in the normalisation and the running-statistics
// momentum (running = (1−m)·running + m·batch).
const (
	bnEps      = 1e-5
	bnMomentum = 0.1
)

// NewModel builds a model of a with deterministic initialisation from
// seed, each node's tensors as its layer type lists them: conv and linear
// weights He (Kaiming) normal with standard deviation √(2/fan_in), biases
// 0, batch-norm γ = 1, β = 0, running mean 0, var 1.
func NewModel(a *Arch, seed uint64) (*Model, error) {
	g, err := NewGraph(a)
	if err != nil {
		return nil, err
	}
	m := &Model{Arch: a, Graph: g, byName: map[string]*Param{}, layers: make([]map[string]*Param, len(g.Nodes)),
		Quant: map[string]*accel.QuantWeights{}, Sparse: map[string]*accel.SparseWeights{}}
	rng := rand.New(rand.NewPCG(seed, 0x6877_6e61_735f_696e)) // "hwnas_in"
	for i, n := range g.Nodes {
		m.layers[i] = map[string]*Param{}
		for _, s := range g.params(n) {
			size := 1
			for _, d := range s.shape {
				size *= d
			}
			p := &Param{Name: n.Layer.Name + "." + s.kind, Shape: s.shape, Data: make([]float32, size)}
			switch s.init {
			case initOnes:
				for j := range p.Data {
					p.Data[j] = 1
				}
			case initHe:
				std := math.Sqrt(2 / float64(s.fanIn))
				for j := range p.Data {
					p.Data[j] = float32(rng.NormFloat64() * std)
				}
			}
			if s.trainable {
				p.Grad = make([]float32, size)
				m.Params = append(m.Params, p)
			} else {
				m.Buffers = append(m.Buffers, p)
			}
			m.byName[p.Name] = p
			m.layers[i][s.kind] = p
		}
	}
	return m, nil
}

// Param returns the parameter or buffer called name ("conv1.w"), or nil.
func (m *Model) Param(name string) *Param { return m.byName[name] }

// Tensors returns the trainable parameters followed by the buffers: every
// tensor the weights file stores.
func (m *Model) Tensors() []*Param {
	return append(append([]*Param(nil), m.Params...), m.Buffers...)
}

// NumParams is the number of trainable values.
func (m *Model) NumParams() int64 {
	var s int64
	for _, p := range m.Params {
		s += int64(len(p.Data))
	}
	return s
}

// DefaultKernels opens the "cpu" backend with the given thread count and
// returns its host kernels, and a function that closes the backend. The
// program must import hwnas/cpu (it registers the backend).
func DefaultKernels(threads int) (accel.Kernels, func() error, error) {
	b, err := accel.Open("cpu", accel.Options{Threads: threads})
	if err != nil {
		return nil, nil, fmt.Errorf("kernels: %w", err)
	}
	kb, ok := b.(accel.KernelBackend)
	if !ok {
		b.Close()
		return nil, nil, fmt.Errorf("kernels: backend %q has no host kernels", b.Name())
	}
	return kb.Kernels(), b.Close, nil
}

func (m *Model) kernels() (accel.Kernels, error) {
	if m.Kernels == nil {
		k, _, err := DefaultKernels(0)
		if err != nil {
			return nil, err
		}
		m.Kernels = k
	}
	return m.Kernels, nil
}

// CopyWeightsFrom copies every tensor of src whose name and size match a
// tensor of m, and returns the names it copied.
func (m *Model) CopyWeightsFrom(src *Model) []string {
	var names []string
	for _, p := range src.Tensors() {
		if q := m.Param(p.Name); q != nil && len(q.Data) == len(p.Data) {
			copy(q.Data, p.Data)
			names = append(names, p.Name)
		}
	}
	return names
}
