package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/accel/ref"
)

func TestSoftmaxCrossEntropyMatchesReference(t *testing.T) {
	var rk ref.Kernels
	eachLevel(t, func(t *testing.T, k *Kernels) {
		r := rand.New(rand.NewPCG(4, 4))
		for _, s := range [][2]int{{1, 1}, {1, 10}, {5, 3}, {64, 10}, {3000, 10}, {7, 1000}} {
			n, c := s[0], s[1]
			logits := kRand(r, n*c)
			for i := range logits {
				logits[i] *= 20
			}
			logits[0] = 500 // must not overflow
			labels := make([]int32, n)
			for i := range labels {
				labels[i] = int32(r.IntN(c))
			}
			wp, wd := make([]float32, n*c), make([]float32, n*c)
			gp, gd := make([]float32, n*c), make([]float32, n*c)
			wl, _ := rk.SoftmaxCrossEntropy(n, c, logits, labels, wp, wd)
			gl, err := k.SoftmaxCrossEntropy(n, c, logits, labels, gp, gd)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprint(s)
			if math.Abs(float64(gl-wl)) > 1e-5*(1+math.Abs(float64(wl))) {
				t.Errorf("%s: loss %v, want %v", name, gl, wl)
			}
			checkClose(t, "probs "+name, gp, wp)
			checkClose(t, "dlogits "+name, gd, wd)
			gl2, err := k.SoftmaxCrossEntropy(n, c, logits, labels, gp, nil)
			if err != nil || gl2 != gl {
				t.Errorf("%s without dlogits: loss %v err %v, want %v", name, gl2, err, gl)
			}
		}
	})
}

func TestSoftmaxBadInput(t *testing.T) {
	k := NewKernels(2)
	f := func(n int) []float32 { return make([]float32, n) }
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"label", "label[1]=3", func() error {
			_, err := k.SoftmaxCrossEntropy(2, 3, f(6), []int32{0, 3}, f(6), nil)
			return err
		}()},
		{"negative label", "label[0]=-1", func() error {
			_, err := k.SoftmaxCrossEntropy(2, 3, f(6), []int32{-1, 0}, f(6), nil)
			return err
		}()},
		{"logits", "logits has", func() error {
			_, err := k.SoftmaxCrossEntropy(2, 3, f(5), []int32{0, 0}, f(6), nil)
			return err
		}()},
		{"dlogits", "dlogits has", func() error {
			_, err := k.SoftmaxCrossEntropy(2, 3, f(6), []int32{0, 0}, f(6), f(7))
			return err
		}()},
		{"labels", "labels has", func() error {
			_, err := k.SoftmaxCrossEntropy(2, 3, f(6), []int32{0}, f(6), nil)
			return err
		}()},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, c.err, c.want)
		}
	}
}
