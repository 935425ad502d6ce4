package cpu

/*
#include "softmax.h"
*/
import "C"

import "hwnas/accel/ref"

// SoftmaxCrossEntropy computes probs = softmax(logits) per row (row maximum
// subtracted), the mean cross-entropy −(1/n)·Σ log probs[label] (from the
// log-sum-exp, summed in double) and, when dlogits is not nil,
// dlogits = (probs − onehot(labels))/n. Labels outside [0,k) are errors.
// Rows are split across threads.
func (k *Kernels) SoftmaxCrossEntropy(n, kk int, logits []float32, labels []int32, probs, dlogits []float32) (float32, error) {
	if err := ref.CheckSoftmax(n, kk, logits, labels, probs, dlogits); err != nil {
		return 0, err
	}
	losses := make([]float64, k.threads())
	lp, lb, pp, dp := fptr(logits), iptr(labels), fptr(probs), fptr(dlogits)
	scale := C.float(1 / float32(n))
	k.parallel(n, planeChunk(kk*8), func(lo, hi, worker int) {
		losses[worker] = float64(C.hw_softmax_ce(C.long(lo), C.long(hi), C.int(kk), lp, lb, pp, dp, scale))
	})
	var loss float64
	for _, l := range losses {
		loss += l
	}
	return float32(loss / float64(n)), nil
}
