package nas

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"
	"slices"
	"strings"
)

// SharedWeights are the tensors of a supernet (weight sharing, as ENAS and
// Once-for-All do): one full-size tensor per slot, sized for the largest
// choice of every sub-network that reads it. A sub-network is an ordinary
// Model whose tensors are slices of these (Bind): for every dimension the
// first n entries (the first k output channels, the first c input
// channels, the first features of a linear layer, which for a flattened
// [C,H,W] input are the first channels' maps, since flattening is
// channel-major), except the two spatial dimensions of a convolution
// kernel [K, C/G, KH, KW], where the sub-network takes the centre (a 3×3
// kernel is the middle of the shared 5×5 one).
//
// Training a sub-network writes its gradients back into the shared
// tensors' slices (Binding.AddGrads) and Step updates what they touched,
// with SGD momentum kept per shared tensor. Batch-norm running statistics
// are not shared: they depend on which channels and blocks run, so each
// sub-network recomputes them (RecalibrateBN) before it is evaluated.
type SharedWeights struct {
	tensors map[string]*sharedTensor
	keys    []string // in insertion order, for a stable encoding
}

type sharedTensor struct {
	Key   string
	Shape []int
	Data  []float32
	Grad  []float32 // trainable only
	Vel   []float32 // SGD momentum, trainable only
	dirty bool      // a gradient was added since the last Step
}

// NewSharedWeights returns an empty set.
func NewSharedWeights() *SharedWeights {
	return &SharedWeights{tensors: map[string]*sharedTensor{}}
}

// Len is the number of shared tensors; Size their number of values.
func (s *SharedWeights) Len() int { return len(s.keys) }

// Size is the number of values of every shared tensor together.
func (s *SharedWeights) Size() int64 {
	var n int64
	for _, t := range s.tensors {
		n += int64(len(t.Data))
	}
	return n
}

// Adopt adds the tensors of m (a model at the largest choices of the slots
// it reads, with its initial weights) under the keys key returns for its
// layers ("" leaves a layer's tensors out); batch-norm buffers are not
// shared. A key already present must have the same shape: the largest
// model of every block type must agree on the slots they share.
func (s *SharedWeights) Adopt(m *Model, key func(layer string) string) error {
	for i, n := range m.Graph.Nodes {
		k := key(n.Layer.Name)
		if k == "" {
			continue
		}
		for _, kind := range sortedKinds(m.layers[i]) {
			p := m.layers[i][kind]
			if p.Grad == nil {
				continue
			}
			name := k + "." + kind
			if t, ok := s.tensors[name]; ok {
				if !slices.Equal(t.Shape, p.Shape) {
					return fmt.Errorf("supernet: slot %s is %v in one largest network and %v in another", name, t.Shape, p.Shape)
				}
				continue
			}
			s.tensors[name] = &sharedTensor{Key: name, Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Data),
				Grad: make([]float32, len(p.Data)), Vel: make([]float32, len(p.Data))}
			s.keys = append(s.keys, name)
		}
	}
	return nil
}

func sortedKinds(m map[string]*Param) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Binding ties a sub-network's trainable tensors to slices of the shared
// ones.
type Binding struct {
	m     *Model
	parts []boundTensor
}

type boundTensor struct {
	sub *Param
	sup *sharedTensor
	off []int // offset of the slice in each dimension of sup
}

// Bind maps every trainable tensor of m to the shared tensor of its
// layer's slot (key as for Adopt). It fails when a tensor has no slot, or
// does not fit in it (a dimension larger than the slot's, or a kernel
// whose size differs from the slot's by an odd amount, which has no
// centre).
func (s *SharedWeights) Bind(m *Model, key func(layer string) string) (*Binding, error) {
	b := &Binding{m: m}
	for i, n := range m.Graph.Nodes {
		k := key(n.Layer.Name)
		for _, kind := range sortedKinds(m.layers[i]) {
			p := m.layers[i][kind]
			if p.Grad == nil {
				continue
			}
			t := s.tensors[k+"."+kind]
			if k == "" || t == nil {
				return nil, fmt.Errorf("supernet: no shared tensor for %s (slot %q)", p.Name, k)
			}
			off, err := sliceOffsets(t.Shape, p.Shape)
			if err != nil {
				return nil, fmt.Errorf("supernet: %s in slot %s: %w", p.Name, t.Key, err)
			}
			b.parts = append(b.parts, boundTensor{sub: p, sup: t, off: off})
		}
	}
	return b, nil
}

// sliceOffsets returns where sub lies in sup: first entries, except the
// centre of a 4-D tensor's last two dimensions.
func sliceOffsets(sup, sub []int) ([]int, error) {
	if len(sup) != len(sub) {
		return nil, fmt.Errorf("shape %v does not fit the shared %v", sub, sup)
	}
	off := make([]int, len(sub))
	for d := range sub {
		if sub[d] > sup[d] {
			return nil, fmt.Errorf("shape %v does not fit the shared %v", sub, sup)
		}
		if len(sub) == 4 && d >= 2 {
			if (sup[d]-sub[d])%2 != 0 {
				return nil, fmt.Errorf("kernel %v has no centre in the shared %v", sub[2:], sup[2:])
			}
			off[d] = (sup[d] - sub[d]) / 2
		}
	}
	return off, nil
}

// each calls fn(i, j) for every element of the slice: i its index in the
// sub-network's tensor, j in the shared one (row-major, any rank ≤ 4).
func (bt *boundTensor) each(fn func(i, j int)) {
	sub, sup := bt.sub.Shape, bt.sup.Shape
	var d4 [4]int
	var s4, o4 [4]int
	pad := 4 - len(sub)
	for d := 0; d < 4; d++ {
		d4[d], s4[d] = 1, 1
	}
	for d := range sub {
		d4[pad+d], s4[pad+d], o4[pad+d] = sub[d], sup[d], bt.off[d]
	}
	i := 0
	for a := 0; a < d4[0]; a++ {
		for b := 0; b < d4[1]; b++ {
			for c := 0; c < d4[2]; c++ {
				row := (((a+o4[0])*s4[1]+b+o4[1])*s4[2]+c+o4[2])*s4[3] + o4[3]
				for e := 0; e < d4[3]; e++ {
					fn(i, row+e)
					i++
				}
			}
		}
	}
}

// Load copies the shared slices into the sub-network's tensors.
func (b *Binding) Load() {
	for k := range b.parts {
		bt := &b.parts[k]
		dst, src := bt.sub.Data, bt.sup.Data
		bt.each(func(i, j int) { dst[i] = src[j] })
	}
}

// AddGrads adds the sub-network's gradients (of its last backward pass)
// into the shared tensors' gradient slices.
func (b *Binding) AddGrads() {
	for k := range b.parts {
		bt := &b.parts[k]
		dst, src := bt.sup.Grad, bt.sub.Grad
		bt.each(func(i, j int) { dst[j] += src[i] })
		bt.sup.dirty = true
	}
}

// Step applies SGD with momentum μ and L2 weight decay λ (conv and linear
// weights only, as nas.SGD) to every shared tensor that received a
// gradient since the last Step, and clears those gradients:
//
//	v ← μ·v + (g + λ·w),  w ← w − lr·v
//
// Tensors no sub-network read are left alone (their momentum too).
func (s *SharedWeights) Step(lr, momentum, weightDecay float64) {
	mu, lrf := float32(momentum), float32(lr)
	for _, key := range s.keys {
		t := s.tensors[key]
		if !t.dirty {
			continue
		}
		wd := float32(0)
		if strings.HasSuffix(key, ".w") {
			wd = float32(weightDecay)
		}
		for i, g := range t.Grad {
			t.Vel[i] = mu*t.Vel[i] + g + wd*t.Data[i]
			t.Data[i] -= lrf * t.Vel[i]
		}
		clear(t.Grad)
		t.dirty = false
	}
}

// Finite reports the first shared value that is NaN or infinite.
func (s *SharedWeights) Finite() error {
	for _, key := range s.keys {
		for _, v := range s.tensors[key].Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("supernet: %s holds %v", key, v)
			}
		}
	}
	return nil
}

// MarshalBinary encodes every shared tensor with its momentum.
func (s *SharedWeights) MarshalBinary() ([]byte, error) {
	ts := make([]sharedTensor, len(s.keys))
	for i, k := range s.keys {
		t := s.tensors[k]
		ts[i] = sharedTensor{Key: t.Key, Shape: t.Shape, Data: t.Data, Vel: t.Vel}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(ts); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary loads tensors encoded by MarshalBinary into s, which must
// hold the same keys with the same shapes (the same space).
func (s *SharedWeights) UnmarshalBinary(b []byte) error {
	var ts []sharedTensor
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&ts); err != nil {
		return fmt.Errorf("supernet weights: %w", err)
	}
	if len(ts) != len(s.keys) {
		return fmt.Errorf("supernet weights: %d tensors, this supernet has %d", len(ts), len(s.keys))
	}
	for _, in := range ts {
		t := s.tensors[in.Key]
		if t == nil || !slices.Equal(t.Shape, in.Shape) || len(in.Data) != len(t.Data) || len(in.Vel) != len(t.Vel) {
			return fmt.Errorf("supernet weights: tensor %s %v does not match this supernet", in.Key, in.Shape)
		}
	}
	for _, in := range ts {
		t := s.tensors[in.Key]
		copy(t.Data, in.Data)
		copy(t.Vel, in.Vel)
		clear(t.Grad)
		t.dirty = false
	}
	return nil
}

// Gradients runs one training forward pass of m on n samples x (batch
// norm on the batch statistics) and the backward pass of the mean softmax
// cross-entropy against labels, leaving ∂loss/∂p in every p.Grad; it
// returns the loss and how many samples were classified right. Nothing is
// updated but the batch-norm running statistics.
func (m *Model) Gradients(x []float32, labels []int32, n int) (loss float64, correct int, err error) {
	k, err := m.kernels()
	if err != nil {
		return 0, 0, err
	}
	ws, err := m.forward(x, n, true)
	if err != nil {
		return 0, 0, err
	}
	classes := m.Arch.Classes
	logits := ws.acts[m.Graph.Output]
	probs := make([]float32, n*classes)
	dlogits := make([]float32, n*classes)
	l, err := k.SoftmaxCrossEntropy(n, classes, logits, labels, probs, dlogits)
	if err != nil {
		return 0, 0, err
	}
	if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
		return 0, 0, fmt.Errorf("model %q: %w (%v)", m.Arch.Name, ErrNaN, l)
	}
	correct = countCorrect(logits, labels, classes)
	return float64(l), correct, m.backward(ws, dlogits)
}

// RecalibrateBN replaces every batch-norm running mean and variance of m
// by the average of the batch statistics over n samples x, in batches of
// batch: the statistics a sub-network of a supernet needs, since the
// shared ones were never its own. Each batch's mean and (unbiased)
// variance are read from the running statistics updated from zero.
func (m *Model) RecalibrateBN(x []float32, n, batch int) error {
	if n <= 0 || batch <= 0 {
		return fmt.Errorf("model %q: batch-norm recalibration on %d samples in batches of %d", m.Arch.Name, n, batch)
	}
	var stats []*Param
	for _, p := range m.Buffers {
		if strings.HasSuffix(p.Name, ".mean") || strings.HasSuffix(p.Name, ".var") {
			stats = append(stats, p)
		}
	}
	if len(stats) == 0 {
		return nil
	}
	sums := make([][]float64, len(stats))
	for i, p := range stats {
		sums[i] = make([]float64, len(p.Data))
	}
	size := m.Graph.Tensors[0].Size()
	for from := 0; from < n; from += batch {
		b := min(batch, n-from)
		for _, p := range stats {
			clear(p.Data)
		}
		if _, err := m.forward(x[from*size:(from+b)*size], b, true); err != nil {
			return err
		}
		for i, p := range stats {
			for j, v := range p.Data {
				sums[i][j] += float64(v) / bnMomentum * float64(b)
			}
		}
	}
	for i, p := range stats {
		for j := range p.Data {
			p.Data[j] = float32(sums[i][j] / float64(n))
		}
	}
	return nil
}
