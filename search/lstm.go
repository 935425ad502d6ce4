package search

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// controller is the autoregressive LSTM of Zoph & Le (2017) / MnasNet: one
// LSTM cell shared by all steps, one softmax head per decision, and as the
// input of step t the embedding of the value chosen at step t−1 (a learned
// start vector at step 0). With z = W·[x_t; h_{t−1}] + b split into gates
// i, f, g, o:
//
//	c_t = σ(f)⊙c_{t−1} + σ(i)⊙tanh(g),  h_t = σ(o)⊙tanh(c_t)
//	p_t = softmax(Wo_t·h_t + bo_t)
//
// All parameters live in one flat vector (params) so Adam and checkpoints
// treat them alike; the matrices are gonum views of that vector.
type controller struct {
	sizes  []int
	hidden int
	embed  int

	params []float64
	grads  []float64

	w, gw     *mat.Dense   // 4H × (E+H)
	b, gb     []float64    // 4H
	start, gs []float64    // E
	emb, gemb []*mat.Dense // emb[t] for t ≥ 1: sizes[t−1] × E
	wo, gwo   []*mat.Dense // sizes[t] × H
	bo, gbo   [][]float64  // sizes[t]

	// capC and capT bound the logits as ENAS's controller does (its
	// tanh constant and temperature): a = capC·tanh(u/capT) for the
	// logits u, so no choice's probability falls below about
	// e^(−2·capC)/k however far training pushes u. 0: unbounded.
	capC, capT float64
}

// newController lays out the parameters for the decision sizes and
// initialises them uniformly in [−0.1, 0.1] from seed.
func newController(sizes []int, hidden, embed int, seed uint64) *controller {
	c := &controller{sizes: append([]int(nil), sizes...), hidden: hidden, embed: embed}
	n := 4*hidden*(embed+hidden) + 4*hidden + embed
	for t, k := range sizes {
		if t > 0 {
			n += sizes[t-1] * embed
		}
		n += k*hidden + k
	}
	c.params = make([]float64, n)
	c.grads = make([]float64, n)
	off := 0
	take := func(m int) ([]float64, []float64) {
		p, g := c.params[off:off+m:off+m], c.grads[off:off+m:off+m]
		off += m
		return p, g
	}
	dense := func(r, cols int) (*mat.Dense, *mat.Dense) {
		p, g := take(r * cols)
		return mat.NewDense(r, cols, p), mat.NewDense(r, cols, g)
	}
	c.w, c.gw = dense(4*hidden, embed+hidden)
	c.b, c.gb = take(4 * hidden)
	c.start, c.gs = take(embed)
	c.emb = make([]*mat.Dense, len(sizes))
	c.gemb = make([]*mat.Dense, len(sizes))
	c.wo = make([]*mat.Dense, len(sizes))
	c.gwo = make([]*mat.Dense, len(sizes))
	c.bo = make([][]float64, len(sizes))
	c.gbo = make([][]float64, len(sizes))
	for t, k := range sizes {
		if t > 0 {
			c.emb[t], c.gemb[t] = dense(sizes[t-1], embed)
		}
		c.wo[t], c.gwo[t] = dense(k, hidden)
		c.bo[t], c.gbo[t] = take(k)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6c73746d))
	for i := range c.params {
		c.params[i] = 0.2*rng.Float64() - 0.1
	}
	return c
}

// step holds what backward needs from one forward step.
type step struct {
	xh          []float64 // [x; h_prev]
	cPrev       []float64
	i, f, g, o  []float64 // activated gates
	c, tanhC, h []float64
	p           []float64 // softmax output
	dcap        []float64 // ∂a/∂u of the logit bound (nil: none)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// forward runs the controller. With choose == nil it samples each value
// from rng; otherwise it follows choose (teacher forcing) and rng may be
// nil. It returns the values and the per-step state.
func (c *controller) forward(choose Decisions, rng *rand.Rand) (Decisions, []step) {
	H, E := c.hidden, c.embed
	h := make([]float64, H)
	cell := make([]float64, H)
	d := make(Decisions, len(c.sizes))
	steps := make([]step, len(c.sizes))
	z := mat.NewVecDense(4*H, nil)
	for t, k := range c.sizes {
		s := step{xh: make([]float64, E+H), cPrev: cell}
		if t == 0 {
			copy(s.xh, c.start)
		} else {
			copy(s.xh, c.emb[t].RawRowView(d[t-1]))
		}
		copy(s.xh[E:], h)
		z.MulVec(c.w, mat.NewVecDense(E+H, s.xh))
		zr := z.RawVector().Data
		s.i, s.f, s.g, s.o = make([]float64, H), make([]float64, H), make([]float64, H), make([]float64, H)
		s.c, s.tanhC, s.h = make([]float64, H), make([]float64, H), make([]float64, H)
		for j := 0; j < H; j++ {
			s.i[j] = sigmoid(zr[j] + c.b[j])
			s.f[j] = sigmoid(zr[H+j] + c.b[H+j])
			s.g[j] = math.Tanh(zr[2*H+j] + c.b[2*H+j])
			s.o[j] = sigmoid(zr[3*H+j] + c.b[3*H+j])
			s.c[j] = s.f[j]*cell[j] + s.i[j]*s.g[j]
			s.tanhC[j] = math.Tanh(s.c[j])
			s.h[j] = s.o[j] * s.tanhC[j]
		}
		logits := mat.NewVecDense(k, nil)
		logits.MulVec(c.wo[t], mat.NewVecDense(H, s.h))
		s.p, s.dcap = c.probs(logits.RawVector().Data, c.bo[t])
		if choose != nil {
			d[t] = choose[t]
		} else {
			d[t] = sampleCategorical(rng, s.p)
		}
		steps[t] = s
		h, cell = s.h, s.c
	}
	return d, steps
}

// bound sets the controller's logit bound from cfg.
func (c *controller) bound(cfg RLConfig) {
	c.capC, c.capT = cfg.LogitCap, cfg.Temperature
	if c.capC > 0 && c.capT <= 0 {
		c.capT = 1
	}
}

// probs is the step's softmax over its logits u = logits + bias, bounded
// by capC·tanh(u/capT) when capC > 0; dcap is that bound's derivative
// (nil without one).
func (c *controller) probs(logits, bias []float64) (p, dcap []float64) {
	if c.capC <= 0 {
		return softmax(logits, bias), nil
	}
	a := make([]float64, len(logits))
	dcap = make([]float64, len(logits))
	for j := range a {
		th := math.Tanh((logits[j] + bias[j]) / c.capT)
		a[j] = c.capC * th
		dcap[j] = c.capC / c.capT * (1 - th*th)
	}
	return softmax(a, make([]float64, len(a))), dcap
}

// softmax returns softmax(logits + bias), computed stably.
func softmax(logits, bias []float64) []float64 {
	p := make([]float64, len(logits))
	floats.AddTo(p, logits, bias)
	m := floats.Max(p)
	for j := range p {
		p[j] = math.Exp(p[j] - m)
	}
	floats.Scale(1/floats.Sum(p), p)
	return p
}

func sampleCategorical(rng *rand.Rand, p []float64) int {
	u := rng.Float64()
	acc := 0.0
	for j, pj := range p {
		acc += pj
		if u < acc {
			return j
		}
	}
	return len(p) - 1
}

// loss is the REINFORCE objective for one episode, to be minimised:
//
//	L = −adv·Σ_t log p_t[d_t] − beta·Σ_t H(p_t),  H(p) = −Σ_j p_j log p_j
func (c *controller) loss(d Decisions, adv, beta float64) float64 {
	_, steps := c.forward(d, nil)
	l := 0.0
	for t, s := range steps {
		l -= adv * math.Log(s.p[d[t]])
		l -= beta * entropy(s.p)
	}
	return l
}

func entropy(p []float64) float64 {
	h := 0.0
	for _, pj := range p {
		if pj > 0 {
			h -= pj * math.Log(pj)
		}
	}
	return h
}

// backward sets c.grads to ∂L/∂params for the loss above (backpropagation
// through time) and returns L.
func (c *controller) backward(d Decisions, adv, beta float64) (float64, error) {
	if err := checkDecisions(c.sizes, d); err != nil {
		return 0, err
	}
	for i := range c.grads {
		c.grads[i] = 0
	}
	H, E := c.hidden, c.embed
	_, steps := c.forward(d, nil)
	l := 0.0
	dhNext := make([]float64, H)
	dcNext := make([]float64, H)
	dz := make([]float64, 4*H)
	dxh := mat.NewVecDense(E+H, nil)
	for t := len(steps) - 1; t >= 0; t-- {
		s := steps[t]
		ent := entropy(s.p)
		l -= adv*math.Log(s.p[d[t]]) + beta*ent
		// ∂L/∂logit_j = −adv·(1[j=d] − p_j) + beta·p_j·(log p_j + H)
		dl := make([]float64, len(s.p))
		for j, pj := range s.p {
			ind := 0.0
			if j == d[t] {
				ind = 1
			}
			dl[j] = -adv * (ind - pj)
			if pj > 0 {
				dl[j] += beta * pj * (math.Log(pj) + ent)
			}
			if s.dcap != nil {
				dl[j] *= s.dcap[j]
			}
		}
		floats.Add(c.gbo[t], dl)
		dlv := mat.NewVecDense(len(dl), dl)
		c.gwo[t].RankOne(c.gwo[t], 1, dlv, mat.NewVecDense(H, s.h))
		dhv := mat.NewVecDense(H, nil)
		dhv.MulVec(c.wo[t].T(), dlv)
		dh := dhv.RawVector().Data
		floats.Add(dh, dhNext)
		dc := make([]float64, H)
		for j := 0; j < H; j++ {
			dc[j] = dh[j]*s.o[j]*(1-s.tanhC[j]*s.tanhC[j]) + dcNext[j]
			do := dh[j] * s.tanhC[j]
			di := dc[j] * s.g[j]
			dg := dc[j] * s.i[j]
			df := dc[j] * s.cPrev[j]
			dz[j] = di * s.i[j] * (1 - s.i[j])
			dz[H+j] = df * s.f[j] * (1 - s.f[j])
			dz[2*H+j] = dg * (1 - s.g[j]*s.g[j])
			dz[3*H+j] = do * s.o[j] * (1 - s.o[j])
			dcNext[j] = dc[j] * s.f[j]
		}
		floats.Add(c.gb, dz)
		dzv := mat.NewVecDense(4*H, dz)
		c.gw.RankOne(c.gw, 1, dzv, mat.NewVecDense(E+H, s.xh))
		dxh.MulVec(c.w.T(), dzv)
		raw := dxh.RawVector().Data
		if t == 0 {
			floats.Add(c.gs, raw[:E])
		} else {
			floats.Add(c.gemb[t].RawRowView(d[t-1]), raw[:E])
		}
		copy(dhNext, raw[E:])
	}
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return l, fmt.Errorf("controller: loss is %v", l)
	}
	return l, nil
}
