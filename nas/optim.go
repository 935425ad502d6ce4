package nas

import (
	"fmt"
	"math"
	"strings"
)

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr to every parameter.
	Step(params []*Param, lr float64)
}

// decays reports whether weight decay applies to p: conv and linear
// weights only, not biases or batch-norm parameters (decaying those only
// hurts: they set offsets and scales, not capacity).
func decays(p *Param) bool { return strings.HasSuffix(p.Name, ".w") }

// SGD is stochastic gradient descent with momentum μ and L2 weight decay λ:
//
//	v ← μ·v + (g + λ·w),  w ← w − lr·v
type SGD struct {
	Momentum, WeightDecay float64
	vel                   map[*Param][]float32
}

// Step implements Optimizer.
func (o *SGD) Step(params []*Param, lr float64) {
	if o.vel == nil {
		o.vel = map[*Param][]float32{}
	}
	mu, lrf := float32(o.Momentum), float32(lr)
	for _, p := range params {
		v := o.vel[p]
		if v == nil {
			v = make([]float32, len(p.Data))
			o.vel[p] = v
		}
		wd := float32(0)
		if decays(p) {
			wd = float32(o.WeightDecay)
		}
		w, g := p.Data, p.Grad
		for i := range w {
			v[i] = mu*v[i] + g[i] + wd*w[i]
			w[i] -= lrf * v[i]
		}
	}
}

// Adam is Adam (Kingma & Ba) with bias correction and decoupled weight
// decay (AdamW: w ← w − lr·λ·w besides the Adam step):
//
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//	w ← w − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)
type Adam struct {
	Beta1, Beta2, Eps, WeightDecay float64
	t                              int
	m, v                           map[*Param][]float32
}

// Step implements Optimizer.
func (o *Adam) Step(params []*Param, lr float64) {
	if o.m == nil {
		o.m, o.v = map[*Param][]float32{}, map[*Param][]float32{}
	}
	b1, b2, eps := o.Beta1, o.Beta2, o.Eps
	if b1 == 0 {
		b1 = 0.9
	}
	if b2 == 0 {
		b2 = 0.999
	}
	if eps == 0 {
		eps = 1e-8
	}
	o.t++
	c1 := 1 - math.Pow(b1, float64(o.t))
	c2 := 1 - math.Pow(b2, float64(o.t))
	step := float32(lr / c1)
	fb1, fb2, fe, sc2 := float32(b1), float32(b2), float32(eps), float32(1/math.Sqrt(c2))
	for _, p := range params {
		m, v := o.m[p], o.v[p]
		if m == nil {
			m, v = make([]float32, len(p.Data)), make([]float32, len(p.Data))
			o.m[p], o.v[p] = m, v
		}
		wd := float32(0)
		if decays(p) {
			wd = float32(lr * o.WeightDecay)
		}
		w, g := p.Data, p.Grad
		for i := range w {
			m[i] = fb1*m[i] + (1-fb1)*g[i]
			v[i] = fb2*v[i] + (1-fb2)*g[i]*g[i]
			w[i] -= step*m[i]/(float32(math.Sqrt(float64(v[i])))*sc2+fe) + wd*w[i]
		}
	}
}

// NewOptimizer returns "sgd" (momentum, weight decay) or "adam" (AdamW).
func NewOptimizer(name string, momentum, weightDecay float64) (Optimizer, error) {
	switch name {
	case "sgd", "":
		return &SGD{Momentum: momentum, WeightDecay: weightDecay}, nil
	case "adam":
		return &Adam{WeightDecay: weightDecay}, nil
	}
	return nil, fmt.Errorf("unknown optimizer %q (known: sgd, adam)", name)
}

// CosineLR is the learning rate at step t of total: a linear warm-up from
// base/warmup to base over the first warmup steps, then cosine decay
// base·½(1 + cos(π·(t−warmup)/(total−warmup))) towards 0.
func CosineLR(base float64, t, warmup, total int) float64 {
	if t < warmup {
		return base * float64(t+1) / float64(warmup)
	}
	if total <= warmup {
		return base
	}
	f := float64(t-warmup) / float64(total-warmup)
	return base * 0.5 * (1 + math.Cos(math.Pi*f))
}
