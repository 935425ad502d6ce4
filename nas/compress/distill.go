package compress

import (
	"fmt"
	"math"
)

// DistillLoss computes the knowledge-distillation loss (Hinton et al., 2015)
// for n rows of k logits,
//
//	L = α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(softmax(s), labels)
//
// averaged over the rows, where s are the student's and t the teacher's
// logits. When ds is not nil it receives ∂L/∂s:
//
//	α·T·(softmax(s/T) − softmax(t/T))/n + (1 − α)·(softmax(s) − onehot)/n.
//
// The T² factor keeps the soft term's gradient scale independent of T.
func DistillLoss(n, k int, s, t []float32, labels []int32, temp, alpha float64, ds []float32) (float64, error) {
	switch {
	case n <= 0 || k <= 0 || len(s) != n*k || len(t) != n*k || len(labels) != n:
		return 0, fmt.Errorf("distill: %d student and %d teacher logits, %d labels for %d×%d", len(s), len(t), len(labels), n, k)
	case ds != nil && len(ds) != n*k:
		return 0, fmt.Errorf("distill: gradient has %d entries, want %d", len(ds), n*k)
	case !(temp > 0):
		return 0, fmt.Errorf("distill: temperature %g must be positive", temp)
	case !(alpha >= 0 && alpha <= 1):
		return 0, fmt.Errorf("distill: alpha %g out of range [0, 1]", alpha)
	}
	ps, pt, p1 := make([]float64, k), make([]float64, k), make([]float64, k)
	loss := 0.0
	for i := 0; i < n; i++ {
		row, trow := s[i*k:(i+1)*k], t[i*k:(i+1)*k]
		lab := int(labels[i])
		if lab < 0 || lab >= k {
			return 0, fmt.Errorf("distill: label %d of row %d out of range 0..%d", lab, i, k-1)
		}
		lsS := softmax(row, temp, ps)
		softmax(trow, temp, pt)
		ls1 := softmax(row, 1, p1)
		kl := 0.0
		for j := 0; j < k; j++ {
			if pt[j] > 0 {
				// log p_s = row/T − logsumexp(row/T)
				kl += pt[j] * (math.Log(pt[j]) - (float64(row[j])/temp - lsS))
			}
		}
		ce := -(float64(row[lab]) - ls1)
		loss += alpha*temp*temp*kl + (1-alpha)*ce
		if ds != nil {
			for j := 0; j < k; j++ {
				hard := p1[j]
				if j == lab {
					hard--
				}
				ds[i*k+j] = float32((alpha*temp*(ps[j]-pt[j]) + (1-alpha)*hard) / float64(n))
			}
		}
	}
	return loss / float64(n), nil
}

// softmax writes softmax(x/T) to p and returns logsumexp(x/T).
func softmax(x []float32, temp float64, p []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v)/temp)
	}
	sum := 0.0
	for j, v := range x {
		p[j] = math.Exp(float64(v)/temp - m)
		sum += p[j]
	}
	for j := range p {
		p[j] /= sum
	}
	return m + math.Log(sum)
}
