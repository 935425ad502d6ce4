package compress

import (
	"fmt"
	"math"
	"sort"
)

// Shared is a weight tensor under parameter sharing: weight i equals
// Codebook[Assign[i]], or 0 when Assign[i] is −1 (a pruned weight, which
// keeps no index).
type Shared struct {
	Codebook []float32
	Assign   []int32
}

// Values expands the shared tensor into dense weights.
func (s *Shared) Values() []float32 {
	w := make([]float32, len(s.Assign))
	for i, a := range s.Assign {
		if a >= 0 {
			w[i] = s.Codebook[a]
		}
	}
	return w
}

// ShareWeights clusters the non-zero weights of w into at most k shared
// values with one-dimensional k-means (Lloyd's algorithm, iters rounds at
// most) started from k centroids spaced linearly between the smallest and
// largest weight, the initialisation Deep Compression found best because it
// keeps the rare large weights representable. Zero weights (pruned) stay
// zero and get index −1.
func ShareWeights(w []float32, k, iters int) (*Shared, error) {
	if k < 1 || k > 1<<16 {
		return nil, fmt.Errorf("share: %d clusters, want 1..65536", k)
	}
	s := &Shared{Assign: make([]int32, len(w))}
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	nz := 0
	for _, v := range w {
		if v != 0 {
			lo, hi = min(lo, v), max(hi, v)
			nz++
		}
	}
	if nz == 0 {
		for i := range s.Assign {
			s.Assign[i] = -1
		}
		return s, nil
	}
	if k > nz {
		k = nz
	}
	c := make([]float64, k)
	for j := range c {
		if k == 1 {
			c[j] = (float64(lo) + float64(hi)) / 2
		} else {
			c[j] = float64(lo) + (float64(hi)-float64(lo))*float64(j)/float64(k-1)
		}
	}
	sum := make([]float64, k)
	cnt := make([]int, k)
	for it := 0; it < max(iters, 1); it++ {
		changed := assignNearest(w, c, s.Assign, it == 0)
		if it > 0 && !changed {
			break
		}
		clear(sum)
		clear(cnt)
		for i, a := range s.Assign {
			if a >= 0 {
				sum[a] += float64(w[i])
				cnt[a]++
			}
		}
		for j := range c {
			if cnt[j] > 0 {
				c[j] = sum[j] / float64(cnt[j])
			}
		}
		sort.Float64s(c) // centroids stay ordered; assignments are redone next round
	}
	assignNearest(w, c, s.Assign, true)
	// Drop empty clusters so the codebook holds only used values.
	clear(cnt)
	for _, a := range s.Assign {
		if a >= 0 {
			cnt[a]++
		}
	}
	remap := make([]int32, k)
	for j := range c {
		if cnt[j] > 0 {
			remap[j] = int32(len(s.Codebook))
			s.Codebook = append(s.Codebook, float32(c[j]))
		}
	}
	for i, a := range s.Assign {
		if a >= 0 {
			s.Assign[i] = remap[a]
		}
	}
	return s, nil
}

// assignNearest sets assign[i] to the index of the centroid (c sorted
// ascending) nearest to w[i], −1 for zero weights, and reports whether any
// assignment changed (always true when force is set).
func assignNearest(w []float32, c []float64, assign []int32, force bool) bool {
	changed := force
	for i, v := range w {
		a := int32(-1)
		if v != 0 {
			x := float64(v)
			j := sort.SearchFloat64s(c, x) // first c[j] ≥ x
			switch {
			case j == len(c):
				j--
			case j > 0 && x-c[j-1] <= c[j]-x:
				j--
			}
			a = int32(j)
		}
		if assign[i] != a {
			changed = true
			assign[i] = a
		}
	}
	return changed
}

// CodebookGrad sums the weight gradient per centroid: ∂L/∂c_j =
// Σ_{i: Assign[i]=j} ∂L/∂w_i, the codebook fine-tuning rule of Deep
// Compression. grad has one entry per weight.
func (s *Shared) CodebookGrad(grad []float32) ([]float32, error) {
	if len(grad) != len(s.Assign) {
		return nil, fmt.Errorf("codebook gradient: %d gradients for %d weights", len(grad), len(s.Assign))
	}
	g := make([]float32, len(s.Codebook))
	for i, a := range s.Assign {
		if a >= 0 {
			g[a] += grad[i]
		}
	}
	return g, nil
}

// StepCodebook applies one gradient-descent step to the codebook from the
// weight gradient (c_j −= lr·Σ grad over cluster j) and writes the shared
// values back into w.
func (s *Shared) StepCodebook(grad []float32, lr float32, w []float32) error {
	g, err := s.CodebookGrad(grad)
	if err != nil {
		return err
	}
	if len(w) != len(s.Assign) {
		return fmt.Errorf("codebook step: %d weights, want %d", len(w), len(s.Assign))
	}
	for j := range s.Codebook {
		s.Codebook[j] -= lr * g[j]
	}
	for i, a := range s.Assign {
		if a >= 0 {
			w[i] = s.Codebook[a]
		} else {
			w[i] = 0
		}
	}
	return nil
}
