/* Fused bias + activation, instantiated once per ISA level: the including
 * file sets its target pragma and defines ACT_NAME, the function to define
 * (signature of hw_bias_act without the isa argument). The loops are written
 * so that GCC vectorises them at -O3 for that level: branch-free ternaries
 * (max/min instructions), no calls. */

void ACT_NAME(float *y, const float *x, long q0, long q1, int c, long hw,
              const float *bias, int act)
{
    for (long q = q0; q < q1; q++) {
        const float b = bias ? bias[q % c] : 0.0f;
        const float *xq = x + q * hw;
        float *yq = y + q * hw;
        switch (act) {
        case HW_ACT_RELU:
            for (long j = 0; j < hw; j++) {
                float v = xq[j] + b;
                yq[j] = v > 0.0f ? v : 0.0f;
            }
            break;
        case HW_ACT_RELU6:
            for (long j = 0; j < hw; j++) {
                float v = xq[j] + b;
                v = v > 0.0f ? v : 0.0f;
                yq[j] = v < 6.0f ? v : 6.0f;
            }
            break;
        case HW_ACT_HARDSWISH:
            for (long j = 0; j < hw; j++) {
                float v = xq[j] + b;
                float t = v + 3.0f;
                t = t > 0.0f ? t : 0.0f;
                t = t < 6.0f ? t : 6.0f;
                yq[j] = v * t * (1.0f / 6.0f);
            }
            break;
        default:
            for (long j = 0; j < hw; j++)
                yq[j] = xq[j] + b;
        }
    }
}
