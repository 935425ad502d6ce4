package compress

import (
	"math"
	"math/rand"
	"testing"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func TestSVDFullRankReproduces(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, sz := range [][2]int{{5, 3}, {3, 5}, {16, 16}, {1, 7}} {
		rows, cols := sz[0], sz[1]
		w := randSlice(rng, rows*cols)
		sv, factor, err := SVD(w, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		f, err := factor(len(sv))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				s := float32(0)
				for k := 0; k < f.Rank; k++ {
					s += f.A[i*f.Rank+k] * f.B[k*cols+j]
				}
				if math.Abs(float64(s-w[i*cols+j])) > 1e-4 {
					t.Fatalf("%dx%d: A·B[%d,%d]=%g, want %g", rows, cols, i, j, s, w[i*cols+j])
				}
			}
		}
		if _, err := factor(len(sv) + 1); err == nil {
			t.Error("rank above full accepted")
		}
	}
}

func TestRankSelection(t *testing.T) {
	sv := []float64{3, 2, 1, 0} // energies 9, 4, 1, 0 of 14
	for _, c := range []struct {
		e    float64
		want int
	}{{0.5, 1}, {0.64, 1}, {0.65, 2}, {0.92, 2}, {0.95, 3}, {1, 3}} {
		if r, err := RankForEnergy(sv, c.e); err != nil || r != c.want {
			t.Errorf("energy %g: rank %d (%v), want %d", c.e, r, err, c.want)
		}
	}
	if r, _ := RankForFraction(100, 0.25); r != 25 {
		t.Errorf("fraction 0.25 of 100: %d", r)
	}
	if r, _ := RankForFraction(3, 0.01); r != 1 {
		t.Errorf("tiny fraction: %d, want 1", r)
	}
	for _, bad := range []float64{0, -1, 1.5} {
		if _, err := RankForEnergy(sv, bad); err == nil {
			t.Errorf("energy %g accepted", bad)
		}
		if _, err := RankForFraction(10, bad); err == nil {
			t.Errorf("fraction %g accepted", bad)
		}
	}
}

// conv2d is a direct reference convolution (stride 1) used to check
// factorisations.
func conv2d(x []float32, c, h, w int, k []float32, ko, kh, kw, ph, pw int) ([]float32, int, int) {
	oh, ow := h+2*ph-kh+1, w+2*pw-kw+1
	y := make([]float32, ko*oh*ow)
	for o := 0; o < ko; o++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				s := float32(0)
				for ci := 0; ci < c; ci++ {
					for a := 0; a < kh; a++ {
						for b := 0; b < kw; b++ {
							yy, xx := i+a-ph, j+b-pw
							if yy >= 0 && yy < h && xx >= 0 && xx < w {
								s += k[((o*c+ci)*kh+a)*kw+b] * x[(ci*h+yy)*w+xx]
							}
						}
					}
				}
				y[(o*oh+i)*ow+j] = s
			}
		}
	}
	return y, oh, ow
}

func TestSeparableFullRankReproducesConv(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	const c, h, w, ko, kh, kw = 3, 7, 6, 4, 3, 3
	x := randSlice(rng, c*h*w)
	k := randSlice(rng, ko*c*kh*kw)
	want, oh, ow := conv2d(x, c, h, w, k, ko, kh, kw, 1, 1)
	full := func(sv []float64) (int, error) { return len(sv), nil }
	v, hz, r, err := SeparableFactors(k, ko, c, kh, kw, full)
	if err != nil {
		t.Fatal(err)
	}
	if r != min(c*kh, ko*kw) {
		t.Fatalf("full rank %d", r)
	}
	mid, mh, mw := conv2d(x, c, h, w, v, r, kh, 1, 1, 0)
	got, gh, gw := conv2d(mid, r, mh, mw, hz, ko, 1, kw, 0, 1)
	if gh != oh || gw != ow {
		t.Fatalf("shape %dx%d, want %dx%d", gh, gw, oh, ow)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-3 {
			t.Fatalf("output %d: %g, want %g", i, got[i], want[i])
		}
	}
	// Lower rank: error grows but stays bounded by the dropped energy.
	half := func(sv []float64) (int, error) { return RankForFraction(len(sv), 0.5) }
	if _, _, r2, err := SeparableFactors(k, ko, c, kh, kw, half); err != nil || r2 >= r {
		t.Errorf("half rank: r=%d err=%v", r2, err)
	}
}
