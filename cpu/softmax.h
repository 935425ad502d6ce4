/* Softmax + cross-entropy for package cpu. Sizes and labels are trusted:
 * softmax.go validates them. */
#ifndef HWNAS_CPU_SOFTMAX_H
#define HWNAS_CPU_SOFTMAX_H

/* hw_softmax_ce processes rows [r0,r1) of k logits: probs = softmax(row)
 * (the row maximum subtracted first, so large logits do not overflow),
 * dlogits = (probs − onehot(label))·scale when dlogits is not NULL, and
 * returns Σ over the rows of −log probs[label] = logsumexp(row) − row[label]
 * (computed from the log-sum-exp, never from a rounded probability). */
double hw_softmax_ce(long r0, long r1, int k, const float *logits, const int *labels, float *probs,
                     float *dlogits, float scale);

#endif
