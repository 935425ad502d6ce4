package search

import (
	"math"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/store"
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
		{"soft at target", Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 0}, 0.99, T, 1000, 0.99},
		{"soft 2x slower", Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 0}, 0.99, 2 * T, 1000, 0.99 * math.Pow(2, -0.07)},
		{"soft 2x faster", Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 0}, 0.99, T / 2, 1000, 0.99 * math.Pow(0.5, -0.07)},
		{"hard below", Reward{Mode: RewardHard, LatencyTarget: T, MaxBytes: 0}, 0.98, T / 4, 1000, 0.98},
		{"hard above", Reward{Mode: RewardHard, LatencyTarget: T, MaxBytes: 0}, 0.98, 2 * T, 1000, 0.49},
		{"size budget over", Reward{Mode: RewardHard, LatencyTarget: T, MaxBytes: 10000}, 0.9, T, 20000, 0.45},
		{"size budget under", Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 10000}, 0.9, T, 5000, 0.9 * math.Pow(0.5, -0.07)},
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
		{Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 0}, math.NaN(), T, 1},
		{Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 0}, 1.5, T, 1},
		{Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 0}, 0.9, 0, 1},
		{Reward{Mode: RewardSoft, LatencyTarget: T, MaxBytes: 100}, 0.9, T, 0},
		{Reward{Mode: "medium", LatencyTarget: T, MaxBytes: 0}, 0.9, T, 1},
	}
	for i, b := range bad {
		if _, err := b.r.Compute(b.acc, b.lat, b.b); err == nil {
			t.Errorf("bad case %d accepted", i)
		}
	}
	if err := (Reward{Mode: RewardSoft, LatencyTarget: 0, MaxBytes: 0}).Validate(); err == nil {
		t.Error("zero target accepted")
	}
}

// TestRewardRelative: a relative budget scores the trial's ratio to the
// reference; an absolute one its figure.
func TestRewardRelative(t *testing.T) {
	l := store.Latency{Stats: accel.LatencyStats{Latency: 30 * time.Microsecond}, Ratio: &accel.Ratio{Value: 0.4}}
	rel := Reward{Mode: RewardHard, LatencyRatio: 0.2}
	if err := rel.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, err := rel.Of(0.9, l, 1); err != nil || math.Abs(got-0.45) > 1e-12 {
		t.Errorf("relative: %v %v, want 0.45 (twice the budget)", got, err)
	}
	abs := Reward{Mode: RewardHard, LatencyTarget: 60 * time.Microsecond}
	if got, err := abs.Of(0.9, l, 1); err != nil || got != 0.9 {
		t.Errorf("absolute: %v %v, want 0.9", got, err)
	}
	if _, err := rel.Of(0.9, store.Latency{Stats: l.Stats}, 1); err == nil {
		t.Error("relative budget without a ratio accepted")
	}
	if err := (Reward{Mode: RewardSoft, LatencyRatio: -1}).Validate(); err == nil {
		t.Error("negative ratio accepted")
	}
}

// TestRewardWithin: a hard reward's bounds are its latency target (figure
// or ratio) and its size budget; a soft reward bounds nothing.
func TestRewardWithin(t *testing.T) {
	l := store.Latency{Stats: accel.LatencyStats{Latency: 30 * time.Microsecond}, Ratio: &accel.Ratio{Value: 0.4}}
	for _, c := range []struct {
		r     Reward
		bytes int64
		want  bool
	}{
		{Reward{Mode: RewardHard, LatencyTarget: 30 * time.Microsecond}, 1 << 20, true},
		{Reward{Mode: RewardHard, LatencyTarget: 29 * time.Microsecond}, 1, false},
		{Reward{Mode: RewardHard, LatencyTarget: time.Millisecond, MaxBytes: 1000}, 1000, true},
		{Reward{Mode: RewardHard, LatencyTarget: time.Millisecond, MaxBytes: 1000}, 1001, false},
		{Reward{Mode: RewardHard, LatencyRatio: 0.4}, 1, true},
		{Reward{Mode: RewardHard, LatencyRatio: 0.39, LatencyTarget: time.Millisecond}, 1, false}, // the ratio is the budget
		{Reward{Mode: RewardSoft, LatencyTarget: time.Microsecond, MaxBytes: 10}, 1000, true},
	} {
		if got := c.r.Within(l, c.bytes); got != c.want {
			t.Errorf("%+v.Within(30µs, ratio 0.4, %d bytes) = %v, want %v", c.r, c.bytes, got, c.want)
		}
	}
	if (Reward{Mode: RewardHard, LatencyRatio: 1}).Within(store.Latency{Stats: l.Stats}, 1) {
		t.Error("a latency without a ratio is within a relative budget")
	}
}
