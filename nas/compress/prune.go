package compress

import (
	"fmt"
	"math"
	"sort"
)

// MagnitudeThreshold returns the smallest |w| that survives pruning the
// given fraction of the weights in layers (one slice per layer) by
// magnitude. With one layer it is the layer-wise threshold; with several it
// is the global one, which prunes large, redundant layers harder.
func MagnitudeThreshold(layers [][]float32, sparsity float64) (float32, error) {
	if !(sparsity >= 0 && sparsity < 1) {
		return 0, fmt.Errorf("prune: sparsity %g out of range [0, 1)", sparsity)
	}
	n := 0
	for _, l := range layers {
		n += len(l)
	}
	if n == 0 {
		return 0, fmt.Errorf("prune: no weights")
	}
	abs := make([]float32, 0, n)
	for _, l := range layers {
		for _, v := range l {
			abs = append(abs, float32(math.Abs(float64(v))))
		}
	}
	drop := int(math.Round(sparsity * float64(n)))
	if drop == 0 {
		return 0, nil
	}
	sort.Slice(abs, func(i, j int) bool { return abs[i] < abs[j] })
	return math.Nextafter32(abs[drop-1], float32(math.Inf(1))), nil
}

// PruneMagnitude zeroes every weight of w with |w| < threshold and returns
// the keep mask (true = kept).
func PruneMagnitude(w []float32, threshold float32) []bool {
	mask := make([]bool, len(w))
	for i, v := range w {
		if float32(math.Abs(float64(v))) >= threshold && v != 0 {
			mask[i] = true
		} else {
			w[i] = 0
		}
	}
	return mask
}

// ApplyMask zeroes the weights whose mask entry is false (used after each
// optimizer step so pruned weights stay pruned during fine-tuning).
func ApplyMask(w []float32, mask []bool) {
	for i, keep := range mask {
		if !keep {
			w[i] = 0
		}
	}
}

// Sparsity is the fraction of zero entries of w.
func Sparsity(w []float32) float64 {
	if len(w) == 0 {
		return 0
	}
	z := 0
	for _, v := range w {
		if v == 0 {
			z++
		}
	}
	return float64(z) / float64(len(w))
}

// GradualSparsity is the automated gradual pruning schedule (Zhu & Gupta,
// 2017): from step t0 over n pruning steps Δt apart, sparsity rises from
// initial to final as
//
//	s_t = final + (initial − final)·(1 − (t − t0)/(n·Δt))³
//
// pruning fast while redundancy is high and slowly near the end.
func GradualSparsity(step, t0, n, dt int, initial, final float64) float64 {
	switch {
	case step <= t0:
		return initial
	case step >= t0+n*dt || n*dt <= 0:
		return final
	}
	// Sparsity changes only on pruning steps.
	t := (step - t0) / dt * dt
	f := 1 - float64(t)/float64(n*dt)
	return final + (initial-final)*f*f*f
}

// ChannelCriterion names how structured pruning ranks output channels.
type ChannelCriterion string

const (
	// CriterionL1 ranks filters by the L1 norm of their weights (Li et al., 2017).
	CriterionL1 ChannelCriterion = "l1"
	// CriterionBN ranks channels by |γ| of the following batch norm (network
	// slimming, Liu et al., 2017); train with SlimmingPenalty first.
	CriterionBN ChannelCriterion = "bn"
	// CriterionTaylor ranks channels by the first-order Taylor estimate of
	// the loss change on removing them, |Σ a·∂L/∂a| over a batch
	// (Molchanov et al., 2017).
	CriterionTaylor ChannelCriterion = "taylor"
)

// FilterL1 returns the L1 norm of each of the k filters of w (k rows).
func FilterL1(w []float32, k int) ([]float64, error) {
	if k <= 0 || len(w)%k != 0 {
		return nil, fmt.Errorf("filter L1: %d weights do not split into %d filters", len(w), k)
	}
	per := len(w) / k
	s := make([]float64, k)
	for o := 0; o < k; o++ {
		for _, v := range w[o*per : (o+1)*per] {
			s[o] += math.Abs(float64(v))
		}
	}
	return s, nil
}

// BNScores returns |γ| per channel.
func BNScores(gamma []float32) []float64 {
	s := make([]float64, len(gamma))
	for i, g := range gamma {
		s[i] = math.Abs(float64(g))
	}
	return s
}

// TaylorScores returns, for activations a and their gradients g of shape
// n×c×hw, the per-channel score |Σ_{n,hw} a·g| averaged over the batch.
func TaylorScores(n, c, hw int, a, g []float32) ([]float64, error) {
	if len(a) != n*c*hw || len(g) != len(a) {
		return nil, fmt.Errorf("taylor: %d activations and %d gradients for %d×%d×%d", len(a), len(g), n, c, hw)
	}
	s := make([]float64, c)
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			sum := 0.0
			off := (i*c + ch) * hw
			for j := 0; j < hw; j++ {
				sum += float64(a[off+j]) * float64(g[off+j])
			}
			s[ch] += math.Abs(sum) / float64(n)
		}
	}
	return s, nil
}

// SlimmingPenalty adds the subgradient of λ·Σ|γ| to the γ gradient: the L1
// penalty of network slimming that drives unimportant BN scales to zero.
func SlimmingPenalty(gamma, grad []float32, lambda float32) {
	for i, g := range gamma {
		switch {
		case g > 0:
			grad[i] += lambda
		case g < 0:
			grad[i] -= lambda
		}
	}
}

// KeepChannels returns the indices (ascending) of the channels to keep when
// removing the fraction ratio of them with the lowest scores. Channels are
// kept in multiples of group (group-level pruning: a group convolution or
// a SIMD width needs whole groups; group 1 means no constraint), ranked by
// their summed score. Removing every channel is an error.
func KeepChannels(scores []float64, ratio float64, group int) ([]int, error) {
	c := len(scores)
	if !(ratio >= 0 && ratio < 1) {
		return nil, fmt.Errorf("channel pruning: ratio %g out of range [0, 1)", ratio)
	}
	if group < 1 || c%group != 0 {
		return nil, fmt.Errorf("channel pruning: %d channels are not a multiple of group %d", c, group)
	}
	ng := c / group
	keep := ng - int(math.Round(ratio*float64(ng)))
	if keep < 1 {
		return nil, fmt.Errorf("channel pruning: ratio %g would remove all %d channels", ratio, c)
	}
	type gs struct {
		g int
		s float64
	}
	gr := make([]gs, ng)
	for g := 0; g < ng; g++ {
		gr[g].g = g
		for j := 0; j < group; j++ {
			gr[g].s += scores[g*group+j]
		}
	}
	sort.SliceStable(gr, func(i, j int) bool { return gr[i].s > gr[j].s })
	var idx []int
	for _, x := range gr[:keep] {
		for j := 0; j < group; j++ {
			idx = append(idx, x.g*group+j)
		}
	}
	sort.Ints(idx)
	return idx, nil
}

// PrunedByThreshold returns the indices of channels whose score reaches
// threshold; an error if none does.
func PrunedByThreshold(scores []float64, threshold float64) ([]int, error) {
	var idx []int
	for i, s := range scores {
		if s >= threshold {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("channel pruning: threshold %g removes all %d channels", threshold, len(scores))
	}
	return idx, nil
}
