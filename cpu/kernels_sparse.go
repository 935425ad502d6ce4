//go:build cgo

package cpu

import "hwnas/accel"

var _ accel.SparseKernels = (*Kernels)(nil)

// SpConv2D implements accel.SparseKernels: y = act(conv(x, dense(s)) +
// bias) with s in CSR form, rows = output channels, columns = (input
// channel within the group, ky, kx).
func (k *Kernels) SpConv2D(p accel.ConvParams, x []float32, s *accel.SparseWeights, bias []float32, act accel.Act, y []float32) error {
	return spConv2D(k.threads(), p, x, s, bias, act, y)
}

// SpLinear implements accel.SparseKernels: y[n×out] = act(x·dense(s)ᵀ +
// bias), s out×in in CSR form.
func (k *Kernels) SpLinear(n, in, out int, x []float32, s *accel.SparseWeights, bias []float32, act accel.Act, y []float32) error {
	return spLinear(k.threads(), n, in, out, x, s, bias, act, y)
}
