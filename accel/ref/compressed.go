package ref

import (
	"fmt"
	"math"

	"hwnas/accel"
)

// QuantizeInput maps x to the op's uint8 input grid and back:
// q = clamp(roundHalfEven(x/InScale) + InZero, 0, 255), and returns
// InScale·(q − InZero). This is what an integer kernel sees of its input, so
// the reference quantizes the input too rather than only dequantizing the
// weights.
func QuantizeInput(q *accel.QuantWeights, x []float32) []float64 {
	out := make([]float64, len(x))
	s := float64(q.InScale)
	for i, v := range x {
		t := math.RoundToEven(float64(v)/s) + float64(q.InZero)
		t = math.Min(math.Max(t, 0), 255)
		out[i] = s * (t - float64(q.InZero))
	}
	return out
}

// CheckQuant validates q for rows output channels of cols weights each.
func CheckQuant(kernel string, q *accel.QuantWeights, rows, cols int) error {
	switch {
	case q == nil:
		return fmt.Errorf("%s: no quantized weights", kernel)
	case q.Bits < 1 || q.Bits > 8:
		return fmt.Errorf("%s: %d bits, want 1..8", kernel, q.Bits)
	case !(q.InScale > 0) || math.IsInf(float64(q.InScale), 0):
		return fmt.Errorf("%s: input scale %v must be positive and finite", kernel, q.InScale)
	case q.InZero < 0 || q.InZero > 255:
		return fmt.Errorf("%s: input zero point %d outside [0,255]", kernel, q.InZero)
	}
	if err := CheckLen(kernel, "q.Q", len(q.Q), rows*cols); err != nil {
		return err
	}
	return CheckLen(kernel, "q.Scale", len(q.Scale), rows)
}

// dequantWeights returns Scale[row]·Q as float32.
func dequantWeights(q *accel.QuantWeights, cols int) []float32 {
	w := make([]float32, len(q.Q))
	for i, v := range q.Q {
		w[i] = float32(float64(q.Scale[i/cols]) * float64(v))
	}
	return w
}

// QConv2D computes act(conv(dequant(quant(x)), Scale·Q) + bias) in float64.
func (k Kernels) QConv2D(p accel.ConvParams, x []float32, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	pn, err := CheckConv("qconv2d", p, len(x), -1, len(y))
	if err != nil {
		return err
	}
	_, nw, _ := pn.Sizes()
	if err := CheckQuant("qconv2d", q, pn.K, nw/pn.K); err != nil {
		return err
	}
	return k.Conv2D(p, toF32(QuantizeInput(q, x)), dequantWeights(q, nw/pn.K), bias, act, y)
}

// QLinear computes y[n×out] = act(dequant(quant(x))·(Scale·Q)ᵀ + bias).
func (k Kernels) QLinear(n, in, out int, x []float32, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	if err := CheckQuant("qlinear", q, out, in); err != nil {
		return err
	}
	return k.linear("qlinear", n, in, out, toF32(QuantizeInput(q, x)), dequantWeights(q, in), bias, act, y)
}

// toF32 narrows dequantized inputs. InScale·(q−z) with |q−z| ≤ 255 has at
// most 8 significant bits more than InScale, so this is exact for the
// float32 scales kernels use.
func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// linear computes y = act(x·wᵀ + bias) with x n×in, w out×in.
func (k Kernels) linear(kernel string, n, in, out int, x, w, bias []float32, act accel.Act, y []float32) error {
	if n <= 0 || in <= 0 || out <= 0 {
		return fmt.Errorf("%s: sizes must be positive (n=%d in=%d out=%d)", kernel, n, in, out)
	}
	if err := CheckLen(kernel, "x", len(x), n*in); err != nil {
		return err
	}
	if err := CheckLen(kernel, "y", len(y), n*out); err != nil {
		return err
	}
	if err := k.Sgemm(false, true, n, out, in, 1, x, in, w, in, 0, y, out); err != nil {
		return fmt.Errorf("%s: %w", kernel, err)
	}
	return k.BiasAct(n, out, 1, y, bias, act, y)
}

// CheckCSR validates s as a rows×cols CSR matrix: RowPtr has rows+1
// non-decreasing entries from 0 to len(ColIdx) = len(Val), and every column
// index is in [0, cols).
func CheckCSR(s *accel.SparseWeights, rows, cols int) error {
	if s == nil {
		return fmt.Errorf("no sparse weights")
	}
	if s.Rows != rows || s.Cols != cols {
		return fmt.Errorf("sparse weights are %d×%d, want %d×%d", s.Rows, s.Cols, rows, cols)
	}
	if len(s.RowPtr) != rows+1 {
		return fmt.Errorf("sparse weights: %d row pointers, want %d", len(s.RowPtr), rows+1)
	}
	if len(s.ColIdx) != len(s.Val) {
		return fmt.Errorf("sparse weights: %d column indices for %d values", len(s.ColIdx), len(s.Val))
	}
	if s.RowPtr[0] != 0 || int(s.RowPtr[rows]) != len(s.Val) {
		return fmt.Errorf("sparse weights: row pointers run from %d to %d, want 0 to %d", s.RowPtr[0], s.RowPtr[rows], len(s.Val))
	}
	for r := 0; r < rows; r++ {
		if s.RowPtr[r+1] < s.RowPtr[r] {
			return fmt.Errorf("sparse weights: row pointer %d decreases (%d after %d)", r+1, s.RowPtr[r+1], s.RowPtr[r])
		}
	}
	for i, c := range s.ColIdx {
		if c < 0 || int(c) >= cols {
			return fmt.Errorf("sparse weights: column index %d at %d outside [0,%d)", c, i, cols)
		}
	}
	return nil
}

// densify expands a validated CSR matrix (duplicate entries add up).
func densify(s *accel.SparseWeights) []float32 {
	w := make([]float64, s.Rows*s.Cols)
	for r := 0; r < s.Rows; r++ {
		for i := s.RowPtr[r]; i < s.RowPtr[r+1]; i++ {
			w[r*s.Cols+int(s.ColIdx[i])] += float64(s.Val[i])
		}
	}
	return toF32(w)
}

// SpConv2D computes act(conv(x, dense(s)) + bias); rows of s are output
// channels, columns (input channel within the group, ky, kx).
func (k Kernels) SpConv2D(p accel.ConvParams, x []float32, s *accel.SparseWeights, bias []float32, act accel.Act, y []float32) error {
	pn, err := CheckConv("spconv2d", p, len(x), -1, len(y))
	if err != nil {
		return err
	}
	_, nw, _ := pn.Sizes()
	if err := CheckCSR(s, pn.K, nw/pn.K); err != nil {
		return fmt.Errorf("spconv2d: %w", err)
	}
	return k.Conv2D(p, x, densify(s), bias, act, y)
}

// SpLinear computes y[n×out] = act(x·dense(s)ᵀ + bias), s out×in.
func (k Kernels) SpLinear(n, in, out int, x []float32, s *accel.SparseWeights, bias []float32, act accel.Act, y []float32) error {
	if err := CheckCSR(s, out, in); err != nil {
		return fmt.Errorf("splinear: %w", err)
	}
	return k.linear("splinear", n, in, out, x, densify(s), bias, act, y)
}
