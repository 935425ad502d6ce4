package search

import (
	"fmt"
	"math"
	"time"
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
type Reward struct {
	Mode          RewardMode
	LatencyTarget time.Duration
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
	if r.LatencyTarget <= 0 {
		return fmt.Errorf("reward: latency target %v must be positive", r.LatencyTarget)
	}
	if r.MaxBytes < 0 {
		return fmt.Errorf("reward: max bytes %d must not be negative", r.MaxBytes)
	}
	return nil
}

// Compute returns the reward of a model with accuracy acc in [0,1],
// latency lat and size bytes. It fails on NaN accuracy and non-positive
// latency or size, which no real model has.
func (r Reward) Compute(acc float64, lat time.Duration, bytes int64) (float64, error) {
	alpha, beta, err := r.Mode.Exponents()
	if err != nil {
		return 0, err
	}
	if math.IsNaN(acc) || acc < 0 || acc > 1 {
		return 0, fmt.Errorf("reward: accuracy %v is not in [0,1]", acc)
	}
	if lat <= 0 || r.LatencyTarget <= 0 {
		return 0, fmt.Errorf("reward: latency %v or target %v is not positive", lat, r.LatencyTarget)
	}
	term := func(x, limit float64) float64 {
		w := alpha
		if x > limit {
			w = beta
		}
		return math.Pow(x/limit, w)
	}
	rew := acc * term(float64(lat), float64(r.LatencyTarget))
	if r.MaxBytes > 0 {
		if bytes <= 0 {
			return 0, fmt.Errorf("reward: size %d bytes is not positive", bytes)
		}
		rew *= term(float64(bytes), float64(r.MaxBytes))
	}
	return rew, nil
}
