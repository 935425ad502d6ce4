package compress

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Factors is a rank-r factorisation W ≈ A·B of a rows×cols matrix, with A
// rows×r and B r×cols (row-major). Singular values are split evenly:
// A = U_r·√Σ_r, B = √Σ_r·V_rᵀ.
type Factors struct {
	Rows, Cols, Rank int
	A, B             []float32
	// Singular holds all singular values of W, largest first.
	Singular []float64
}

// SVD computes the singular values of the rows×cols matrix w and returns a
// function that builds its rank-r factors for any r ≤ min(rows, cols).
func SVD(w []float32, rows, cols int) (sv []float64, factor func(r int) (*Factors, error), err error) {
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, nil, fmt.Errorf("svd: %d values for a %d×%d matrix", len(w), rows, cols)
	}
	d := make([]float64, len(w))
	for i, v := range w {
		d[i] = float64(v)
	}
	var s mat.SVD
	if !s.Factorize(mat.NewDense(rows, cols, d), mat.SVDThin) {
		return nil, nil, fmt.Errorf("svd: factorisation of the %d×%d matrix did not converge", rows, cols)
	}
	sv = s.Values(nil)
	var u, v mat.Dense
	s.UTo(&u)
	s.VTo(&v)
	factor = func(r int) (*Factors, error) {
		if r < 1 || r > len(sv) {
			return nil, fmt.Errorf("svd: rank %d out of range 1..%d", r, len(sv))
		}
		f := &Factors{Rows: rows, Cols: cols, Rank: r, A: make([]float32, rows*r), B: make([]float32, r*cols), Singular: sv}
		for k := 0; k < r; k++ {
			sq := math.Sqrt(sv[k])
			for i := 0; i < rows; i++ {
				f.A[i*r+k] = float32(u.At(i, k) * sq)
			}
			for j := 0; j < cols; j++ {
				f.B[k*cols+j] = float32(v.At(j, k) * sq)
			}
		}
		return f, nil
	}
	return sv, factor, nil
}

// RankForEnergy returns the smallest rank r whose singular values keep at
// least the given fraction of the energy Σσ², 0 < energy ≤ 1.
func RankForEnergy(sv []float64, energy float64) (int, error) {
	if !(energy > 0 && energy <= 1) {
		return 0, fmt.Errorf("low-rank: energy %g out of range (0, 1]", energy)
	}
	total := 0.0
	for _, s := range sv {
		total += s * s
	}
	acc := 0.0
	for i, s := range sv {
		acc += s * s
		if acc >= energy*total*(1-1e-12) {
			return i + 1, nil
		}
	}
	return len(sv), nil
}

// RankForFraction returns max(1, round(fraction·full)) for 0 < fraction ≤ 1.
func RankForFraction(full int, fraction float64) (int, error) {
	if !(fraction > 0 && fraction <= 1) {
		return 0, fmt.Errorf("low-rank: fraction %g out of range (0, 1]", fraction)
	}
	return max(1, min(full, int(math.Round(fraction*float64(full))))), nil
}

// SeparableFactors splits a K×C×kh×kw convolution kernel into a vertical
// kh×1 convolution V (r×C×kh×1) followed by a horizontal 1×kw convolution H
// (K×r×1×kw), so that
//
//	W[k,c,i,j] ≈ Σ_t H[k,t,0,j]·V[t,c,i,0]
//
// (Jaderberg et al.'s scheme 2). It is the rank-r SVD of W rearranged as the
// (C·kh)×(K·kw) matrix M[(c,i),(k,j)] = W[k,c,i,j]; at full rank
// r = min(C·kh, K·kw) the pair reproduces the convolution exactly. The
// vertical conv takes the original padding and stride in height, the
// horizontal one those in width.
func SeparableFactors(w []float32, k, c, kh, kw int, rank func(sv []float64) (int, error)) (v, h []float32, r int, err error) {
	if len(w) != k*c*kh*kw {
		return nil, nil, 0, fmt.Errorf("separable: %d weights for a %d×%d×%d×%d kernel", len(w), k, c, kh, kw)
	}
	rows, cols := c*kh, k*kw
	m := make([]float32, rows*cols)
	for ko := 0; ko < k; ko++ {
		for ci := 0; ci < c; ci++ {
			for i := 0; i < kh; i++ {
				for j := 0; j < kw; j++ {
					m[(ci*kh+i)*cols+ko*kw+j] = w[((ko*c+ci)*kh+i)*kw+j]
				}
			}
		}
	}
	sv, factor, err := SVD(m, rows, cols)
	if err != nil {
		return nil, nil, 0, err
	}
	if r, err = rank(sv); err != nil {
		return nil, nil, 0, err
	}
	f, err := factor(r)
	if err != nil {
		return nil, nil, 0, err
	}
	v = make([]float32, r*c*kh)
	h = make([]float32, k*r*kw)
	for t := 0; t < r; t++ {
		for ci := 0; ci < c; ci++ {
			for i := 0; i < kh; i++ {
				v[(t*c+ci)*kh+i] = f.A[(ci*kh+i)*r+t]
			}
		}
		for ko := 0; ko < k; ko++ {
			for j := 0; j < kw; j++ {
				h[(ko*r+t)*kw+j] = f.B[t*cols+ko*kw+j]
			}
		}
	}
	return v, h, r, nil
}
