package search

import (
	"math"
	"testing"
	"time"
)

func TestReward(t *testing.T) {
	T := 100 * time.Microsecond
	for _, tc := range []struct {
		name  string
		r     Reward
		acc   float64
		lat   time.Duration
		bytes int64
		want  float64
	}{
		{"soft at target", Reward{RewardSoft, T, 0}, 0.99, T, 1000, 0.99},
		{"soft 2x slower", Reward{RewardSoft, T, 0}, 0.99, 2 * T, 1000, 0.99 * math.Pow(2, -0.07)},
		{"soft 2x faster", Reward{RewardSoft, T, 0}, 0.99, T / 2, 1000, 0.99 * math.Pow(0.5, -0.07)},
		{"hard below", Reward{RewardHard, T, 0}, 0.98, T / 4, 1000, 0.98},
		{"hard above", Reward{RewardHard, T, 0}, 0.98, 2 * T, 1000, 0.49},
		{"size budget over", Reward{RewardHard, T, 10000}, 0.9, T, 20000, 0.45},
		{"size budget under", Reward{RewardSoft, T, 10000}, 0.9, T, 5000, 0.9 * math.Pow(0.5, -0.07)},
	} {
		got, err := tc.r.Compute(tc.acc, tc.lat, tc.bytes)
		if err != nil || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: reward %v (%v), want %v", tc.name, got, err, tc.want)
		}
	}
	bad := []struct {
		r   Reward
		acc float64
		lat time.Duration
		b   int64
	}{
		{Reward{RewardSoft, T, 0}, math.NaN(), T, 1},
		{Reward{RewardSoft, T, 0}, 1.5, T, 1},
		{Reward{RewardSoft, T, 0}, 0.9, 0, 1},
		{Reward{RewardSoft, T, 100}, 0.9, T, 0},
		{Reward{"medium", T, 0}, 0.9, T, 1},
	}
	for i, b := range bad {
		if _, err := b.r.Compute(b.acc, b.lat, b.b); err == nil {
			t.Errorf("bad case %d accepted", i)
		}
	}
	if err := (Reward{RewardSoft, 0, 0}).Validate(); err == nil {
		t.Error("zero target accepted")
	}
}
