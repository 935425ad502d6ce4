/* Fused bias + activation and the activation backward pass, instantiated
 * once per ISA level: the including file sets its target pragma and defines
 * ACT_NAME and ACT_BWD_NAME, the functions to define (signatures of
 * hw_bias_act and hw_act_bwd without the isa argument). The loops are written
 * so that GCC vectorises them at -O3 for that level: branch-free ternaries
 * (max/min instructions), no calls. */

/* act_rows applies y[i] = act(x[i] + b[i]) (b NULL: + 0) to len
 * contiguous elements: the hw == 1 (fully connected) case of ACT_NAME,
 * where a plane is one element and the per-plane loop would cost a
 * division and a call-sized overhead per element. The expressions are
 * those of the per-plane loops, so results are identical. y may be x. */
#define ACT_ROWS_LOOP(EXPR)                                  \
    do {                                                     \
        if (b) {                                             \
            _Pragma("GCC ivdep") for (long i = 0; i < len; i++) { \
                const float v = x[i] + b[i];                 \
                y[i] = EXPR;                                 \
            }                                                \
        } else {                                             \
            _Pragma("GCC ivdep") for (long i = 0; i < len; i++) { \
                const float v = x[i] + 0.0f;                 \
                y[i] = EXPR;                                 \
            }                                                \
        }                                                    \
    } while (0)

static inline float act_relu6(float v)
{
    v = v > 0.0f ? v : 0.0f;
    return v < 6.0f ? v : 6.0f;
}

static inline float act_hswish(float v)
{
    float t = v + 3.0f;
    t = t > 0.0f ? t : 0.0f;
    t = t < 6.0f ? t : 6.0f;
    return v * t * (1.0f / 6.0f);
}

static void act_rows(float *y, const float *x, const float *b, long len, int act)
{
    switch (act) {
    case HW_ACT_RELU:
        ACT_ROWS_LOOP(v > 0.0f ? v : 0.0f);
        break;
    case HW_ACT_RELU6:
        ACT_ROWS_LOOP(act_relu6(v));
        break;
    case HW_ACT_HARDSWISH:
        ACT_ROWS_LOOP(act_hswish(v));
        break;
    default:
        ACT_ROWS_LOOP(v);
    }
}

void ACT_NAME(float *y, const float *x, long q0, long q1, int c, long hw,
              const float *bias, int act)
{
    if (hw == 1) {
        /* Runs of consecutive channels: from channel q0 mod c to the end
         * of the row, then whole rows. */
        long q = q0;
        int j = (int)(q0 % c);
        while (q < q1) {
            long len = c - j < q1 - q ? c - j : q1 - q;
            act_rows(y + q, x + q, bias ? bias + j : 0, len, act);
            q += len;
            j = 0;
        }
        return;
    }
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

/* The backward loops read src[i] and dy[i] unconditionally before
 * selecting, so they if-convert to compare + blend (a `src > 0 ? dy : 0`
 * that reads dy only when selected is a branch, mispredicted half the time
 * on real gradients). ivdep: dx may be the same array as dy or src, and
 * iteration i reads only index i before writing it, so no dependence
 * crosses iterations (GCC's run-time overlap check would otherwise send
 * exactly the in-place call, dx == dy, to the scalar loop). */
void ACT_BWD_NAME(int act, const float *src, const float *dy, float *dx, long n)
{
    switch (act) {
    case HW_ACT_RELU:
#pragma GCC ivdep
        for (long i = 0; i < n; i++) {
            const float v = src[i], g = dy[i];
            dx[i] = v > 0.0f ? g : 0.0f;
        }
        break;
    case HW_ACT_RELU6:
#pragma GCC ivdep
        for (long i = 0; i < n; i++) {
            const float v = src[i], g = dy[i];
            dx[i] = (v > 0.0f) & (v < 6.0f) ? g : 0.0f;
        }
        break;
    case HW_ACT_HARDSWISH:
#pragma GCC ivdep
        for (long i = 0; i < n; i++) {
            const float v = src[i], d = dy[i];
            float g = v * (1.0f / 3.0f) + 0.5f;
            g = v < -3.0f ? 0.0f : g;
            g = v > 3.0f ? 1.0f : g;
            dx[i] = d * g;
        }
        break;
    default:
#pragma GCC ivdep
        for (long i = 0; i < n; i++)
            dx[i] = dy[i];
    }
}
