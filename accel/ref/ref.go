// Package ref holds the reference kernels of hwnas: plain, obviously correct
// Go loops with float64 accumulation, implementing accel.Kernels,
// accel.Int8Kernels and accel.SparseKernels.
//
// Every kernel test in the project compares against these (the C kernels of
// package cpu, the int8 and sparse kernels, the CUDA kernels through the
// conformance suite in accel/accetest). They are slow by design: correctness
// is checked here by finite differences and hand-computed values, and speed is
// somebody else's job.
package ref

import (
	"fmt"
	"math"

	"hwnas/accel"
)

// Kernels is the reference implementation of accel.Kernels. The zero value
// is ready to use and safe for concurrent use.
type Kernels struct{}

var (
	_ accel.Kernels       = Kernels{}
	_ accel.Int8Kernels   = Kernels{}
	_ accel.SparseKernels = Kernels{}
)

// Activate applies a to one value in float64.
func Activate(a accel.Act, v float64) float64 {
	switch a {
	case accel.ActReLU:
		return math.Max(v, 0)
	case accel.ActReLU6:
		return math.Min(math.Max(v, 0), 6)
	case accel.ActHardSwish:
		return v * math.Min(math.Max(v+3, 0), 6) / 6
	}
	return v
}

// ActGrad is the derivative of a at the pre-activation value v. At the kinks
// it follows PyTorch: ReLU'(0)=0, ReLU6'(0)=ReLU6'(6)=0, and hard-swish'(v)
// is 0 for v < −3, v/3 + 1/2 for −3 ≤ v ≤ 3 and 1 above.
func ActGrad(a accel.Act, v float64) float64 {
	switch a {
	case accel.ActReLU:
		if v > 0 {
			return 1
		}
		return 0
	case accel.ActReLU6:
		if v > 0 && v < 6 {
			return 1
		}
		return 0
	case accel.ActHardSwish:
		switch {
		case v < -3:
			return 0
		case v > 3:
			return 1
		}
		return v/3 + 0.5
	}
	return 1
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C (row-major). When beta is 0,
// C is not read, so NaNs in it do not propagate.
func (Kernels) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("sgemm: negative size m=%d n=%d k=%d", m, n, k)
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if lda < max(ac, 1) || ldb < max(bc, 1) || ldc < max(n, 1) {
		return fmt.Errorf("sgemm: leading dimensions lda=%d ldb=%d ldc=%d, want at least %d, %d, %d", lda, ldb, ldc, max(ac, 1), max(bc, 1), max(n, 1))
	}
	span := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	if err := CheckMin("sgemm", "a", len(a), span(ar, ac, lda)); err != nil {
		return err
	}
	if err := CheckMin("sgemm", "b", len(b), span(br, bc, ldb)); err != nil {
		return err
	}
	if err := CheckMin("sgemm", "c", len(c), span(m, n, ldc)); err != nil {
		return err
	}
	at := func(i, p int) float64 {
		if transA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if transB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += at(i, p) * bt(p, j)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
			}
			c[i*ldc+j] = float32(v)
		}
	}
	return nil
}

// convTaps calls f for every (output position, weight tap, input position)
// triple of the convolution that falls inside the input: the indices are
// flat into y, w and x.
func convTaps(p accel.ConvParams, f func(yi, wi, xi int)) {
	oh, ow := p.OutH(), p.OutW()
	cg, kg := p.C/p.Groups, p.K/p.Groups
	for n := 0; n < p.N; n++ {
		for k := 0; k < p.K; k++ {
			g := k / kg
			for y := 0; y < oh; y++ {
				for x := 0; x < ow; x++ {
					yi := ((n*p.K+k)*oh+y)*ow + x
					for c := 0; c < cg; c++ {
						ci := g*cg + c
						for ky := 0; ky < p.KH; ky++ {
							iy := y*p.StrideH - p.PadH + ky*p.DilH
							if iy < 0 || iy >= p.H {
								continue
							}
							for kx := 0; kx < p.KW; kx++ {
								ix := x*p.StrideW - p.PadW + kx*p.DilW
								if ix < 0 || ix >= p.W {
									continue
								}
								wi := ((k*cg+c)*p.KH+ky)*p.KW + kx
								xi := ((n*p.C+ci)*p.H+iy)*p.W + ix
								f(yi, wi, xi)
							}
						}
					}
				}
			}
		}
	}
}

// Conv2D computes y[n,k,oy,ox] = act(bias[k] + Σ_{c∈group(k),ky,kx}
// w[k,c,ky,kx]·x[n,c,oy·sh−ph+ky·dh, ox·sw−pw+kx·dw]), out-of-range input
// positions counting as zero.
func (Kernels) Conv2D(p accel.ConvParams, x, w, bias []float32, act accel.Act, y []float32) error {
	p, err := CheckConv("conv2d", p, len(x), len(w), len(y))
	if err != nil {
		return err
	}
	if bias != nil {
		if err := CheckLen("conv2d", "bias", len(bias), p.K); err != nil {
			return err
		}
	}
	if err := CheckAct("conv2d", act); err != nil {
		return err
	}
	acc := make([]float64, len(y))
	convTaps(p, func(yi, wi, xi int) { acc[yi] += float64(w[wi]) * float64(x[xi]) })
	hw := p.OutH() * p.OutW()
	for i := range acc {
		v := acc[i]
		if bias != nil {
			v += float64(bias[(i/hw)%p.K])
		}
		y[i] = float32(Activate(act, v))
	}
	return nil
}

// Conv2DBackwardData computes dx[n,c,iy,ix] = Σ w[k,c,ky,kx]·dy[n,k,oy,ox]
// over every tap that reads x[n,c,iy,ix].
func (Kernels) Conv2DBackwardData(p accel.ConvParams, w, dy, dx []float32) error {
	p, err := CheckConv("conv2d backward data", p, len(dx), len(w), len(dy))
	if err != nil {
		return err
	}
	acc := make([]float64, len(dx))
	convTaps(p, func(yi, wi, xi int) { acc[xi] += float64(w[wi]) * float64(dy[yi]) })
	for i, v := range acc {
		dx[i] = float32(v)
	}
	return nil
}

// Conv2DBackwardFilter computes dw[k,c,ky,kx] = Σ dy[n,k,oy,ox]·x[n,c,…]
// over every tap using that weight and, when dbias is not nil,
// dbias[k] = Σ_{n,oy,ox} dy[n,k,oy,ox].
func (Kernels) Conv2DBackwardFilter(p accel.ConvParams, x, dy, dw, dbias []float32) error {
	p, err := CheckConv("conv2d backward filter", p, len(x), len(dw), len(dy))
	if err != nil {
		return err
	}
	if dbias != nil {
		if err := CheckLen("conv2d backward filter", "dbias", len(dbias), p.K); err != nil {
			return err
		}
	}
	acc := make([]float64, len(dw))
	convTaps(p, func(yi, wi, xi int) { acc[wi] += float64(dy[yi]) * float64(x[xi]) })
	for i, v := range acc {
		dw[i] = float32(v)
	}
	if dbias != nil {
		return Kernels{}.BiasBackward(p.N, p.K, p.OutH()*p.OutW(), dy, dbias)
	}
	return nil
}

// poolWindows calls f for each output element (flat index yi, plane index
// nc) with the in-bounds input positions (flat within the plane) of its
// window, in row-major order.
func poolWindows(p accel.PoolParams, f func(yi, nc int, in []int)) {
	oh, ow := p.OutH(), p.OutW()
	sh, sw := max(p.StrideH, 1), max(p.StrideW, 1)
	in := make([]int, 0, p.KH*p.KW)
	for nc := 0; nc < p.N*p.C; nc++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				in = in[:0]
				for ky := 0; ky < p.KH; ky++ {
					iy := y*sh - p.PadH + ky
					if iy < 0 || iy >= p.H {
						continue
					}
					for kx := 0; kx < p.KW; kx++ {
						ix := x*sw - p.PadW + kx
						if ix >= 0 && ix < p.W {
							in = append(in, iy*p.W+ix)
						}
					}
				}
				f((nc*oh+y)*ow+x, nc, in)
			}
		}
	}
}

// MaxPool2D writes the maximum of each window (padding never wins; the
// first maximum in row-major order on ties) and its flat in-plane index.
func (Kernels) MaxPool2D(p accel.PoolParams, x, y []float32, argmax []int32) error {
	if err := CheckPool("maxpool", p, len(x), len(y)); err != nil {
		return err
	}
	if argmax != nil {
		if err := CheckLen("maxpool", "argmax", len(argmax), len(y)); err != nil {
			return err
		}
	}
	plane := p.H * p.W
	poolWindows(p, func(yi, nc int, in []int) {
		best := in[0]
		for _, i := range in[1:] {
			if x[nc*plane+i] > x[nc*plane+best] {
				best = i
			}
		}
		y[yi] = x[nc*plane+best]
		if argmax != nil {
			argmax[yi] = int32(best)
		}
	})
	return nil
}

// MaxPool2DBackward zeroes dx and adds each dy to dx at its argmax.
func (Kernels) MaxPool2DBackward(p accel.PoolParams, dy []float32, argmax []int32, dx []float32) error {
	if err := CheckPool("maxpool backward", p, len(dx), len(dy)); err != nil {
		return err
	}
	if err := CheckLen("maxpool backward", "argmax", len(argmax), len(dy)); err != nil {
		return err
	}
	plane := p.H * p.W
	oplane := p.OutH() * p.OutW()
	acc := make([]float64, len(dx))
	for i, a := range argmax {
		if a < 0 || int(a) >= plane {
			return fmt.Errorf("maxpool backward: argmax[%d]=%d outside the %d-element plane", i, a, plane)
		}
		acc[(i/oplane)*plane+int(a)] += float64(dy[i])
	}
	for i, v := range acc {
		dx[i] = float32(v)
	}
	return nil
}

// AvgPool2D writes the mean of the in-bounds elements of each window.
func (Kernels) AvgPool2D(p accel.PoolParams, x, y []float32) error {
	if err := CheckPool("avgpool", p, len(x), len(y)); err != nil {
		return err
	}
	plane := p.H * p.W
	poolWindows(p, func(yi, nc int, in []int) {
		var s float64
		for _, i := range in {
			s += float64(x[nc*plane+i])
		}
		y[yi] = float32(s / float64(len(in)))
	})
	return nil
}

// AvgPool2DBackward computes dx[i] = Σ over windows containing i of
// dy/len(window).
func (Kernels) AvgPool2DBackward(p accel.PoolParams, dy, dx []float32) error {
	if err := CheckPool("avgpool backward", p, len(dx), len(dy)); err != nil {
		return err
	}
	plane := p.H * p.W
	acc := make([]float64, len(dx))
	poolWindows(p, func(yi, nc int, in []int) {
		g := float64(dy[yi]) / float64(len(in))
		for _, i := range in {
			acc[nc*plane+i] += g
		}
	})
	for i, v := range acc {
		dx[i] = float32(v)
	}
	return nil
}

// GlobalAvgPool computes y[i] = mean of x[i·hw : (i+1)·hw] for the n·c
// planes.
func (Kernels) GlobalAvgPool(n, c, hw int, x, y []float32) error {
	if err := CheckPlanes("globalavgpool", n, c, hw); err != nil {
		return err
	}
	if err := CheckLen("globalavgpool", "x", len(x), n*c*hw); err != nil {
		return err
	}
	if err := CheckLen("globalavgpool", "y", len(y), n*c); err != nil {
		return err
	}
	for i := range y {
		var s float64
		for _, v := range x[i*hw : (i+1)*hw] {
			s += float64(v)
		}
		y[i] = float32(s / float64(hw))
	}
	return nil
}

// GlobalAvgPoolBackward computes dx[i·hw+j] = dy[i]/hw.
func (Kernels) GlobalAvgPoolBackward(n, c, hw int, dy, dx []float32) error {
	if err := CheckPlanes("globalavgpool backward", n, c, hw); err != nil {
		return err
	}
	if err := CheckLen("globalavgpool backward", "dy", len(dy), n*c); err != nil {
		return err
	}
	if err := CheckLen("globalavgpool backward", "dx", len(dx), n*c*hw); err != nil {
		return err
	}
	for i := range dx {
		dx[i] = float32(float64(dy[i/hw]) / float64(hw))
	}
	return nil
}

// BiasAct computes y = act(x + bias[channel]); y may alias x.
func (Kernels) BiasAct(n, c, hw int, x, bias []float32, act accel.Act, y []float32) error {
	if err := CheckPlanes("biasact", n, c, hw); err != nil {
		return err
	}
	if err := CheckLen("biasact", "x", len(x), n*c*hw); err != nil {
		return err
	}
	if err := CheckLen("biasact", "y", len(y), n*c*hw); err != nil {
		return err
	}
	if bias != nil {
		if err := CheckLen("biasact", "bias", len(bias), c); err != nil {
			return err
		}
	}
	if err := CheckAct("biasact", act); err != nil {
		return err
	}
	for i := range x {
		v := float64(x[i])
		if bias != nil {
			v += float64(bias[(i/hw)%c])
		}
		y[i] = float32(Activate(act, v))
	}
	return nil
}

// ActBackward computes dx = dy·act'(pre). ReLU and ReLU6 may be given only
// post (the output), hard-swish needs pre (see CheckActBackward). dx may
// alias dy.
func (Kernels) ActBackward(act accel.Act, pre, post, dy, dx []float32) error {
	src, err := CheckActBackward(act, pre, post, dy, dx)
	if err != nil {
		return err
	}
	if act == accel.ActNone {
		copy(dx, dy)
		return nil
	}
	for i, g := range dy {
		dx[i] = float32(float64(g) * ActGrad(act, float64(src[i])))
	}
	return nil
}

// BiasBackward computes dbias[c] = Σ_{n,j} dy[n,c,j].
func (Kernels) BiasBackward(n, c, hw int, dy, dbias []float32) error {
	if err := CheckPlanes("bias backward", n, c, hw); err != nil {
		return err
	}
	if err := CheckLen("bias backward", "dy", len(dy), n*c*hw); err != nil {
		return err
	}
	if err := CheckLen("bias backward", "dbias", len(dbias), c); err != nil {
		return err
	}
	acc := make([]float64, c)
	for i, v := range dy {
		acc[(i/hw)%c] += float64(v)
	}
	for i, v := range acc {
		dbias[i] = float32(v)
	}
	return nil
}

// SoftmaxCrossEntropy computes probs = softmax(logits) row by row (with the
// row maximum subtracted), loss = −(1/n)·Σ log probs[label], and
// dlogits = (probs − onehot(label))/n. Labels outside [0,k) are errors.
func (Kernels) SoftmaxCrossEntropy(n, k int, logits []float32, labels []int32, probs, dlogits []float32) (float32, error) {
	if err := CheckSoftmax(n, k, logits, labels, probs, dlogits); err != nil {
		return 0, err
	}
	var loss float64
	for r := 0; r < n; r++ {
		l := int(labels[r])
		row := logits[r*k : (r+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(s)
		loss += lse - float64(row[l])
		for j, v := range row {
			pr := math.Exp(float64(v) - lse)
			probs[r*k+j] = float32(pr)
			if dlogits != nil {
				if j == l {
					pr--
				}
				dlogits[r*k+j] = float32(pr / float64(n))
			}
		}
	}
	return float32(loss / float64(n)), nil
}
