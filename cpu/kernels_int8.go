//go:build cgo

package cpu

import "hwnas/accel"

var _ accel.Int8Kernels = (*Kernels)(nil)

// QConv2D implements accel.Int8Kernels: y = act(conv(x̂, Scale·Q) + bias),
// where x̂ is x on q's uint8 input grid (clamp(rint(x/InScale) + InZero,
// 0, 255)) and the products are accumulated exactly in int32 by the int8
// GEMM (VNNI, AVX-512, AVX2, arm64 dot product or NEON, or portable C, see
// QGemm) before scaling.
func (k *Kernels) QConv2D(p accel.ConvParams, x []float32, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	return qConv2D(k.threads(), p, x, q, bias, act, y)
}

// QLinear implements accel.Int8Kernels: y[n×out] = act(x̂·(Scale·Q)ᵀ + bias)
// with x̂ as in QConv2D.
func (k *Kernels) QLinear(n, in, out int, x []float32, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	return qLinear(k.threads(), n, in, out, x, q, bias, act, y)
}
