package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

var allActs = []accel.Act{accel.ActNone, accel.ActReLU, accel.ActReLU6, accel.ActHardSwish}

func TestBiasActMatchesReference(t *testing.T) {
	var rk ref.Kernels
	eachLevel(t, func(t *testing.T, k *Kernels) {
		r := rand.New(rand.NewPCG(3, 3))
		for _, s := range [][3]int{{1, 1, 1}, {2, 3, 17}, {3, 5, 33}, {64, 20, 576}, {7, 10, 1}, {5, 300, 1}, {71, 997, 1}} {
			n, c, hw := s[0], s[1], s[2]
			x := kRand(r, n*c*hw)
			for i := range x {
				x[i] *= 8
			}
			// The kinks themselves.
			copy(x, []float32{0, 6, -3, 3, -6})
			bias := kRand(r, c)
			for _, act := range allActs {
				for _, b := range [][]float32{nil, bias} {
					name := fmt.Sprintf("%v %v bias=%v", s, act, b != nil)
					want, got := make([]float32, len(x)), make([]float32, len(x))
					rk.BiasAct(n, c, hw, x, b, act, want)
					if err := k.BiasAct(n, c, hw, x, b, act, got); err != nil {
						t.Fatal(err)
					}
					checkClose(t, "biasact "+name, got, want)
					inplace := append([]float32(nil), x...)
					if err := k.BiasAct(n, c, hw, inplace, b, act, inplace); err != nil {
						t.Fatal(err)
					}
					checkClose(t, "biasact in place "+name, inplace, want)

					// Backward at the pre-activation x+bias.
					pre := make([]float32, len(x))
					rk.BiasAct(n, c, hw, x, b, accel.ActNone, pre)
					dy := kRand(r, len(x))
					wdx, gdx := make([]float32, len(x)), make([]float32, len(x))
					rk.ActBackward(act, pre, want, dy, wdx)
					if err := k.ActBackward(act, pre, want, dy, gdx); err != nil {
						t.Fatal(err)
					}
					checkClose(t, "act backward "+name, gdx, wdx)
					if act == accel.ActReLU || act == accel.ActReLU6 {
						if err := k.ActBackward(act, nil, want, dy, dy); err != nil {
							t.Fatal(err)
						}
						checkClose(t, "act backward from post, in place "+name, dy, wdx)
					}
				}
			}
			dy := kRand(r, n*c*hw)
			want, got := make([]float32, c), make([]float32, c)
			rk.BiasBackward(n, c, hw, dy, want)
			if err := k.BiasBackward(n, c, hw, dy, got); err != nil {
				t.Fatal(err)
			}
			checkClose(t, fmt.Sprint("bias backward ", s), got, want)
		}
	})
}

// The activation values and derivatives at the kinks, by hand, at every
// level: the six points repeated 40 times (vector bodies and tails), the
// backward pass into a separate dx and in place over its pre-activation.
func TestActKinks(t *testing.T) {
	x0 := []float32{-3, 0, 3, 6, -4, 7}
	eachLevel(t, func(t *testing.T, k *Kernels) {
		var x, ones []float32
		for range 40 {
			x = append(x, x0...)
			ones = append(ones, 1, 1, 1, 1, 1, 1)
		}
		y := make([]float32, len(x))
		dx := make([]float32, len(x))
		for _, c := range []struct {
			act     accel.Act
			y, dydx []float32
		}{
			{accel.ActReLU, []float32{0, 0, 3, 6, 0, 7}, []float32{0, 0, 1, 1, 0, 1}},
			{accel.ActReLU6, []float32{0, 0, 3, 6, 0, 6}, []float32{0, 0, 1, 0, 0, 0}},
			{accel.ActHardSwish, []float32{0, 0, 3, 6, 0, 7}, []float32{-0.5, 0.5, 1.5, 1, 0, 1}},
		} {
			if err := k.BiasAct(1, 1, len(x), x, nil, c.act, y); err != nil {
				t.Fatal(err)
			}
			if err := k.ActBackward(c.act, x, y, ones, dx); err != nil {
				t.Fatal(err)
			}
			pre := append([]float32(nil), x...)
			if err := k.ActBackward(c.act, pre, nil, ones, pre); err != nil { // dx = pre
				t.Fatal(err)
			}
			for i := range x {
				j := i % 6
				if math.Abs(float64(y[i]-c.y[j])) > 1e-6 || math.Abs(float64(dx[i]-c.dydx[j])) > 1e-6 || pre[i] != dx[i] {
					t.Errorf("%v(%v) = %v, derivative %v (in place %v); want %v, %v", c.act, x[i], y[i], dx[i], pre[i], c.y[j], c.dydx[j])
				}
			}
		}
	})
}

func TestActBadInput(t *testing.T) {
	k := NewKernels(2)
	f := func(n int) []float32 { return make([]float32, n) }
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"biasact x", "x has", k.BiasAct(2, 3, 4, f(23), nil, accel.ActReLU, f(24))},
		{"biasact y", "y has", k.BiasAct(2, 3, 4, f(24), nil, accel.ActReLU, f(25))},
		{"biasact bias", "bias has", k.BiasAct(2, 3, 4, f(24), f(2), accel.ActReLU, f(24))},
		{"biasact act", "unknown activation", k.BiasAct(2, 3, 4, f(24), nil, accel.Act(-1), f(24))},
		{"biasact sizes", "positive", k.BiasAct(2, 0, 4, f(0), nil, accel.ActReLU, f(0))},
		{"act bwd dx", "dx has", k.ActBackward(accel.ActReLU, f(4), nil, f(4), f(3))},
		{"act bwd pre", "pre/post has", k.ActBackward(accel.ActReLU6, f(3), nil, f(4), f(4))},
		{"act bwd hardswish", "needs pre", k.ActBackward(accel.ActHardSwish, nil, f(4), f(4), f(4))},
		{"act bwd relu", "needs pre or post", k.ActBackward(accel.ActReLU, nil, nil, f(4), f(4))},
		{"bias bwd", "dbias has", k.BiasBackward(2, 3, 4, f(24), f(4))},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, c.err, c.want)
		}
	}
}
