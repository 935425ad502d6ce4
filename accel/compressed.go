package accel

// Int8Kernels is implemented by kernels that run Conv and Linear ops on
// int8 weights (QuantWeights): the float input is quantized with the op's
// InScale/InZero, multiplied in integer arithmetic (int32 accumulators) and
// the result scaled back to float, biased and activated. Host programs use
// it for ops that carry Quant when the kernels have it.
type Int8Kernels interface {
	QConv2D(p ConvParams, x []float32, q *QuantWeights, bias []float32, act Act, y []float32) error
	// QLinear computes y[n×out] = act(x[n×in]·dequant(q)ᵀ + bias).
	QLinear(n, in, out int, x []float32, q *QuantWeights, bias []float32, act Act, y []float32) error
}

// SparseKernels is implemented by kernels that run Conv and Linear ops on
// CSR weights (SparseWeights). Host programs use it for ops that carry
// Sparse when the kernels have it.
type SparseKernels interface {
	SpConv2D(p ConvParams, x []float32, s *SparseWeights, bias []float32, act Act, y []float32) error
	SpLinear(n, in, out int, x []float32, s *SparseWeights, bias []float32, act Act, y []float32) error
}
