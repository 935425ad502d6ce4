package search

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
)

// RLConfig sets the REINFORCE controller's hyper-parameters.
type RLConfig struct {
	Hidden        int     `json:"hidden"`         // LSTM hidden size
	Embed         int     `json:"embed"`          // decision embedding size
	LR            float64 `json:"lr"`             // Adam step size
	Beta1         float64 `json:"beta1"`          // Adam first-moment decay
	Beta2         float64 `json:"beta2"`          // Adam second-moment decay
	Entropy       float64 `json:"entropy"`        // entropy bonus weight
	BaselineDecay float64 `json:"baseline_decay"` // moving-average baseline decay γ
	GradClip      float64 `json:"grad_clip"`      // global gradient norm clip (0: none)
	// LogitCap and Temperature bound the controller's logits to
	// LogitCap·tanh(u/Temperature), as ENAS's controller does (2.5 and
	// 5): the policy cannot collapse onto one network (0: unbounded).
	LogitCap    float64 `json:"logit_cap,omitempty"`
	Temperature float64 `json:"temperature,omitempty"`
}

// DefaultRLConfig suits searches of a few hundred trials: a small LSTM and
// a large step size, since every update sees one episode.
func DefaultRLConfig() RLConfig {
	return RLConfig{Hidden: 32, Embed: 16, LR: 0.02, Beta1: 0.9, Beta2: 0.999,
		Entropy: 0.01, BaselineDecay: 0.9, GradClip: 5}
}

// RL is REINFORCE (Williams 1992) with the LSTM controller of Zoph & Le.
// After each observed reward R it takes one Adam step on
//
//	L = −A·Σ_t log p_t[d_t] − Entropy·Σ_t H(p_t),   A = (R − b)/max(s, 0.01)
//
// where b is an exponential moving average of past rewards (the baseline,
// decay BaselineDecay) and s the moving root-mean-square of R − b, so the
// step size does not depend on the reward's scale (rewards of one search
// often differ only in the second decimal). Propose samples each decision
// from the controller's softmax in turn.
type RL struct {
	cfg   RLConfig
	ctl   *controller
	m, v  []float64 // Adam moments
	steps int
	base  float64 // moving-average baseline
	dev2  float64 // moving mean of (R − b)²
	seen  int
}

// NewRL returns a controller for the decision sizes with weights drawn from
// seed.
func NewRL(sizes []int, cfg RLConfig, seed uint64) *RL {
	c := newController(sizes, cfg.Hidden, cfg.Embed, seed)
	c.bound(cfg)
	return &RL{cfg: cfg, ctl: c, m: make([]float64, len(c.params)), v: make([]float64, len(c.params))}
}

func (r *RL) Name() string { return "rl" }

// Propose samples one point from the controller.
func (r *RL) Propose(rng *rand.Rand) (Decisions, error) {
	d, _ := r.ctl.forward(nil, rng)
	return d, nil
}

// Probabilities returns the controller's softmax output at each step when
// it follows d, for reports and tests.
func (r *RL) Probabilities(d Decisions) ([][]float64, error) {
	if err := checkDecisions(r.ctl.sizes, d); err != nil {
		return nil, err
	}
	_, steps := r.ctl.forward(d, nil)
	p := make([][]float64, len(steps))
	for t := range steps {
		p[t] = steps[t].p
	}
	return p, nil
}

// Observe updates the baseline and takes one Adam step of REINFORCE.
func (r *RL) Observe(d Decisions, reward float64) error {
	if math.IsNaN(reward) || math.IsInf(reward, 0) {
		return fmt.Errorf("rl: reward %v", reward)
	}
	if err := checkDecisions(r.ctl.sizes, d); err != nil {
		return err
	}
	if r.seen == 0 {
		r.base = reward
	}
	diff := reward - r.base
	scale := math.Max(math.Sqrt(r.dev2), 0.01)
	adv := diff / scale
	if _, err := r.ctl.backward(d, adv, r.cfg.Entropy); err != nil {
		return err
	}
	r.adam()
	g := r.cfg.BaselineDecay
	r.dev2 = g*r.dev2 + (1-g)*diff*diff
	if r.seen == 0 {
		r.dev2 = 0
	}
	r.base = g*r.base + (1-g)*reward
	r.seen++
	return nil
}

// adam applies one Adam step (Kingma & Ba) with bias correction to the
// controller's gradient, after clipping its global norm.
func (r *RL) adam() {
	g := r.ctl.grads
	if r.cfg.GradClip > 0 {
		n := 0.0
		for _, x := range g {
			n += x * x
		}
		if n = math.Sqrt(n); n > r.cfg.GradClip {
			for i := range g {
				g[i] *= r.cfg.GradClip / n
			}
		}
	}
	r.steps++
	b1, b2 := r.cfg.Beta1, r.cfg.Beta2
	c1 := 1 - math.Pow(b1, float64(r.steps))
	c2 := 1 - math.Pow(b2, float64(r.steps))
	for i, gi := range g {
		r.m[i] = b1*r.m[i] + (1-b1)*gi
		r.v[i] = b2*r.v[i] + (1-b2)*gi*gi
		r.ctl.params[i] -= r.cfg.LR * (r.m[i] / c1) / (math.Sqrt(r.v[i]/c2) + 1e-8)
	}
}

type rlCheckpoint struct {
	Config   RLConfig  `json:"config"`
	Sizes    []int     `json:"sizes"`
	Params   []float64 `json:"params"`
	M        []float64 `json:"adam_m"`
	V        []float64 `json:"adam_v"`
	Steps    int       `json:"steps"`
	Baseline float64   `json:"baseline"`
	Dev2     float64   `json:"dev2"`
	Seen     int       `json:"seen"`
}

// Checkpoint serialises the weights, Adam state and baseline.
func (r *RL) Checkpoint() ([]byte, error) {
	return json.Marshal(rlCheckpoint{Config: r.cfg, Sizes: r.ctl.sizes, Params: r.ctl.params,
		M: r.m, V: r.v, Steps: r.steps, Baseline: r.base, Dev2: r.dev2, Seen: r.seen})
}

// Restore loads a checkpoint taken from an RL over the same decision sizes.
func (r *RL) Restore(data []byte) error {
	var c rlCheckpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("rl checkpoint: %w", err)
	}
	if fmt.Sprint(c.Sizes) != fmt.Sprint(r.ctl.sizes) {
		return fmt.Errorf("rl checkpoint: decision sizes %v, this space has %v", c.Sizes, r.ctl.sizes)
	}
	ctl := newController(c.Sizes, c.Config.Hidden, c.Config.Embed, 0)
	if len(c.Params) != len(ctl.params) || len(c.M) != len(ctl.params) || len(c.V) != len(ctl.params) {
		return fmt.Errorf("rl checkpoint: %d parameters, want %d", len(c.Params), len(ctl.params))
	}
	copy(ctl.params, c.Params)
	ctl.bound(c.Config)
	r.cfg, r.ctl, r.m, r.v = c.Config, ctl, c.M, c.V
	r.steps, r.base, r.dev2, r.seen = c.Steps, c.Baseline, c.Dev2, c.Seen
	return nil
}
