/* Softmax + cross-entropy; see softmax.h. */
#include <math.h>

#include "softmax.h"

double hw_softmax_ce(long r0, long r1, int k, const float *logits, const int *labels, float *probs,
                     float *dlogits, float scale)
{
    double loss = 0;
    for (long r = r0; r < r1; r++) {
        const float *z = logits + r * k;
        float *pr = probs + r * k;
        float m = z[0];
        for (int j = 1; j < k; j++)
            m = z[j] > m ? z[j] : m;
        double s = 0;
        for (int j = 0; j < k; j++) {
            pr[j] = expf(z[j] - m);
            s += pr[j];
        }
        const float inv = (float)(1.0 / s);
        for (int j = 0; j < k; j++)
            pr[j] *= inv;
        const int l = labels[r];
        loss += (double)m + log(s) - (double)z[l];
        if (dlogits) {
            float *d = dlogits + r * k;
            for (int j = 0; j < k; j++)
                d[j] = pr[j] * scale;
            d[l] -= scale;
        }
    }
    return loss;
}
