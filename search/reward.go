package search

import (
	"fmt"
	"math"
	"time"

	"hwnas/store"
)

// RewardMode selects the MnasNet exponents.
type RewardMode string

const (
	// RewardSoft: α = β = −0.07, latency trades smoothly against accuracy
	// (doubling latency costs about 5% of the reward).
	RewardSoft RewardMode = "soft"
	// RewardHard: α = 0, β = −1, no effect below the target and a steep
	// penalty above it.
	RewardHard RewardMode = "hard"
)

// Reward is the MnasNet objective (Tan et al., CVPR 2019)
//
//	R = ACC · (LAT/T)^w · (BYTES/B)^v,   w = α if LAT ≤ T else β
//
// with v chosen from the same (α, β) for the size budget B; the size term
// is left out when MaxBytes is 0.
//
// With LatencyRatio set the budget is relative: LAT/T is the trial's
// latency ratio to the reference model measured beside it over
// LatencyRatio (a budget of 0.2× LeNet-5 means the same on any machine,
// and the ratio moves far less than microseconds on a noisy one).
type Reward struct {
	Mode          RewardMode
	LatencyTarget time.Duration
	LatencyRatio  float64
	MaxBytes      int64
}

// Exponents returns (α, β) of the mode.
func (m RewardMode) Exponents() (alpha, beta float64, err error) {
	switch m {
	case RewardSoft, "":
		return -0.07, -0.07, nil
	case RewardHard:
		return 0, -1, nil
	}
	return 0, 0, fmt.Errorf("unknown reward mode %q (known: soft, hard)", m)
}

// Validate checks the target and budget.
func (r Reward) Validate() error {
	if _, _, err := r.Mode.Exponents(); err != nil {
		return err
	}
	if r.LatencyRatio < 0 || math.IsNaN(r.LatencyRatio) || math.IsInf(r.LatencyRatio, 0) {
		return fmt.Errorf("reward: latency ratio %v must be positive", r.LatencyRatio)
	}
	if r.LatencyTarget <= 0 && r.LatencyRatio == 0 {
		return fmt.Errorf("reward: latency target %v must be positive", r.LatencyTarget)
	}
	if r.MaxBytes < 0 {
		return fmt.Errorf("reward: max bytes %d must not be negative", r.MaxBytes)
	}
	return nil
}

// Of returns the reward of a model with accuracy acc in [0,1], latency l
// and size bytes: its ratio to the reference against LatencyRatio when the
// budget is relative, its figure against LatencyTarget otherwise.
func (r Reward) Of(acc float64, l store.Latency, bytes int64) (float64, error) {
	if r.LatencyRatio > 0 {
		if l.Ratio == nil || !(l.Ratio.Value > 0) {
			return 0, fmt.Errorf("reward: the budget is %gx the reference but the latency has no ratio to it", r.LatencyRatio)
		}
		return r.compute(acc, l.Ratio.Value, r.LatencyRatio, bytes)
	}
	return r.Compute(acc, l.Figure(), bytes)
}

// Within reports whether a model with latency l and size bytes keeps the
// bounds of a hard reward: its latency at most the target (its ratio to
// the reference when the budget is relative) and its size within
// MaxBytes. A soft reward trades latency and size against accuracy and
// bounds nothing, so every model is within it.
func (r Reward) Within(l store.Latency, bytes int64) bool {
	if r.Mode != RewardHard {
		return true
	}
	if r.MaxBytes > 0 && bytes > r.MaxBytes {
		return false
	}
	if r.LatencyRatio > 0 {
		return l.Ratio != nil && l.Ratio.Value <= r.LatencyRatio
	}
	return l.Figure() <= r.LatencyTarget
}

// Compute returns the reward of a model with accuracy acc in [0,1],
// latency lat and size bytes against the absolute LatencyTarget. It fails
// on NaN accuracy and non-positive latency or size, which no real model
// has.
func (r Reward) Compute(acc float64, lat time.Duration, bytes int64) (float64, error) {
	return r.compute(acc, float64(lat), float64(r.LatencyTarget), bytes)
}

func (r Reward) compute(acc, lat, target float64, bytes int64) (float64, error) {
	alpha, beta, err := r.Mode.Exponents()
	if err != nil {
		return 0, err
	}
	if math.IsNaN(acc) || acc < 0 || acc > 1 {
		return 0, fmt.Errorf("reward: accuracy %v is not in [0,1]", acc)
	}
	if !(lat > 0) || !(target > 0) {
		return 0, fmt.Errorf("reward: latency %v or target %v is not positive", lat, target)
	}
	term := func(x, limit float64) float64 {
		w := alpha
		if x > limit {
			w = beta
		}
		return math.Pow(x/limit, w)
	}
	rew := acc * term(lat, target)
	if r.MaxBytes > 0 {
		if bytes <= 0 {
			return 0, fmt.Errorf("reward: size %d bytes is not positive", bytes)
		}
		rew *= term(float64(bytes), float64(r.MaxBytes))
	}
	return rew, nil
}
