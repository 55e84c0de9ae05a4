/* cl/optim.cl: optimizer steps (SGD with momentum, AdamW), gradient clipping by global norm,
 * and a multi-tensor zero-fill, for parameters and gradients of the data dtype (OKTO_T) with
 * float32 optimizer state (momentum, m, v: narrow state would lose the small increments that
 * accumulate in it).
 *
 * Step-dependent scalars live on the device, because a recorded graph is replayed every step and
 * the host only rewrites a small buffer (or okto_sched_advance moves it):
 *   sched  float32 [4]: sched[0] = learning rate, sched[1] = step count t as a float (t >= 1
 *          at the first step; exact to 2^24 steps), sched[2], sched[3] = AdamW's bias-corrected
 *          step size and 1 / sqrt(1 - beta2^t), written by okto_adamw_prepare from [0], [1]
 *          (SGD reads only sched[0]). A step is: the host writes lr (if it changes), then
 *          okto_sched_advance (t += 1; t starts at 0), okto_adamw_prepare, the AdamW step.
 *   gscale float32, optional (has_gscale): the gradients are multiplied by gscale[0] before use
 *          (the clip scale from okto_clip_norm, or 1 / loss scale). When gscale[0] is not
 *          finite the step is skipped: parameters and state are left as they are (a clipped
 *          non-finite norm, or a loss-scale overflow). has_gscale = 0: the buffer is not read.
 *
 * Two forms of each step:
 *   single range (okto_sgd, okto_adamw): param, grad, state tensors at offsets, n elements,
 *     scalar hyper-parameters. 1-D, one item per element: global >= n, any local size.
 *   multi-tensor (okto_sgd_multi, okto_adamw_multi): one launch over a chunk table, so a whole
 *     model held in arenas steps at once. tab is ulong [nchunks][OKTO_CHUNK_COLS] from tab_off:
 *       tab[5c + 0] param offset, [5c + 1] grad offset, [5c + 2] state-0 offset (SGD momentum,
 *       Adam m), [5c + 3] state-1 offset (Adam v), [5c + 4] length (elements); offsets are
 *       absolute element offsets into the param, grad, state buffers passed (unused columns
 *       may hold anything). decay[decay_off + c] is chunk c's weight decay (0: none).
 *     Row-style launch: a work-group per chunk, looping over chunks by group
 *     (c = group, group + ngroups, ...), the chunk striped over the group's L items;
 *     global = L * ngroups, local = L, any L from 1 to 256, any ngroups. A chunk is one
 *     group's work, so the host splits large tensors into several chunks (e.g. <= 64k
 *     elements) to spread them. Each element's update is the same arithmetic as the single-range
 *     kernel's (one shared function): the two forms give the same bits.
 *
 * Gradient clipping by global norm over a chunk table (column 1, the grad offsets, and 4):
 *   okto_clip_sumsq  part[c] = sum of g^2 over chunk c (compensated, a tree over L): row-style.
 *   okto_clip_norm   one work-group: norm = sqrt(sum over c of part[c]) in a fixed order;
 *                    out[0] = scale = min(1, max_norm / (norm + 1e-6)), out[1] = norm; a norm
 *                    that is not finite gives scale NaN (so a step reading it is skipped).
 *   okto_clip_apply  g *= scale[0] over the chunks (nothing written when the scale is 1):
 *                    row-style. Or pass out as gscale to the step and skip this pass.
 * okto_chunks_zero   x[tab[5c + col] ..] = 0 over every chunk: row-style (col 1 zeroes the
 *                    gradients, 2 and 3 the state; the state program is the f32 one).
 * okto_sched_advance sched[1] += 1 (one item does it; launch any grid).
 * okto_adamw_prepare sched[2], sched[3] from sched[0], sched[1] and the betas (one item).
 *
 * Semantics (as PyTorch): SGD: d = g * gs + wd * p; with momentum mu != 0, buf = mu * buf + d
 * (dampening 0; buf zero at the start: zero-fill it) and d = nesterov ? d + mu * buf : buf;
 * p -= lr * d. AdamW: g' = g * gs; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
 * p = p * (1 - lr * wd) - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */

#define OKTO_OPT_MAXL 256
#define OKTO_CHUNK_COLS 5

inline void okto_opt_kadd(float *s, float *k, float v)
{
    float y = v - *k, t = *s + y;
    *k = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Compensated sum of EXPR (an expression in the loop variable v) over v = start, start + step,
 * ... < end in blocks of 8 terms summed pairwise, each block added compensated (the chain of 4
 * dependent adds once per 8 terms: ~4x faster than per term on a CPU, as in cl/norm.cl's
 * OKTO_NORM_SUM); the last terms one by one. */
#define OKTO_OPT_SUM(s, k, v, start, step, end, EXPR)                                              \
    do {                                                                                           \
        ulong v##_b = (start), v##_s = (step);                                                     \
        for (; v##_b + 7 * v##_s < (end); v##_b += 8 * v##_s) {                                    \
            float a_[8];                                                                           \
            for (int j_ = 0; j_ < 8; j_++) {                                                       \
                ulong v = v##_b + (ulong)j_ * v##_s;                                               \
                a_[j_] = (EXPR);                                                                   \
            }                                                                                      \
            okto_opt_kadd(&(s), &(k),                                                              \
                          ((a_[0] + a_[1]) + (a_[2] + a_[3])) +                                    \
                              ((a_[4] + a_[5]) + (a_[6] + a_[7])));                                \
        }                                                                                          \
        for (ulong v = v##_b; v < (end); v += v##_s)                                               \
            okto_opt_kadd(&(s), &(k), (EXPR));                                                     \
    } while (0)

inline void okto_sgd_elem(__global OKTO_T *p, ulong pi, __global const OKTO_T *g, ulong gi,
                          __global float *mom, ulong mi, float lr, float momentum, float wd,
                          int nesterov, float gs)
{
    float w = OKTO_LD(p, pi), d = OKTO_LD(g, gi) * gs + wd * w;
    if (momentum != 0.0f) {
        float b = momentum * mom[mi] + d;
        mom[mi] = b;
        d = nesterov ? d + momentum * b : b;
    }
    OKTO_ST(p, pi, w - lr * d);
}

inline void okto_adamw_elem(__global OKTO_T *p, ulong pi, __global const OKTO_T *g, ulong gi,
                            __global float *m, ulong mi, __global float *v, ulong vi, float lr,
                            float step_size, float inv_sqrt_bc2, float beta1, float beta2,
                            float eps, float wd, float gs)
{
    float gr = OKTO_LD(g, gi) * gs;
    float mm = beta1 * m[mi] + (1.0f - beta1) * gr;
    float vv = beta2 * v[vi] + (1.0f - beta2) * gr * gr;
    m[mi] = mm;
    v[vi] = vv;
    float w = OKTO_LD(p, pi) * (1.0f - lr * wd);
    OKTO_ST(p, pi, w - step_size * mm / (sqrt(vv) * inv_sqrt_bc2 + eps));
}

/* 1 - beta^t, accurate relative to itself: beta - 1 is exact (Sterbenz), log1p and expm1 keep
 * their relative precision near 0, where 1 - pow(beta, t) would lose ~3 digits for
 * beta2 = 0.999 at small t (1 - 0.998001 from a rounded 0.998001). */
inline float okto_adam_bias_correction(float beta, float t)
{
    return -expm1(t * log1p(beta - 1.0f));
}

/* The gradient scale, or 1; *skip when it is not finite. */
inline float okto_opt_gscale(__global const float *gscale, ulong gscale_off, int has_gscale,
                             int *skip)
{
    float gs = has_gscale ? gscale[gscale_off] : 1.0f;
    *skip = !isfinite(gs);
    return gs;
}

/* SGD over n contiguous elements (see above). mom (float32) is not touched when momentum is 0.
 * 1-D, one item per element: global >= n. */
__kernel void okto_sgd(__global OKTO_T *p, ulong p_off, __global const OKTO_T *g, ulong g_off,
                       __global float *mom, ulong mom_off, ulong n, float momentum,
                       float weight_decay, int nesterov, __global const float *sched,
                       ulong sched_off, __global const float *gscale, ulong gscale_off,
                       int has_gscale)
{
    ulong i = get_global_id(0);
    int skip;
    float gs = okto_opt_gscale(gscale, gscale_off, has_gscale, &skip);
    if (i >= n || skip)
        return;
    okto_sgd_elem(p, p_off + i, g, g_off + i, mom, mom_off + i, sched[sched_off], momentum,
                  weight_decay, nesterov, gs);
}

/* AdamW over n contiguous elements (see above); m, v float32; reads sched[0], [2], [3]
 * (okto_adamw_prepare). 1-D, one item per element: global >= n, any local size. */
__kernel void okto_adamw(__global OKTO_T *p, ulong p_off, __global const OKTO_T *g, ulong g_off,
                         __global float *m, ulong m_off, __global float *v, ulong v_off, ulong n,
                         float beta1, float beta2, float eps, float weight_decay,
                         __global const float *sched, ulong sched_off, __global const float *gscale,
                         ulong gscale_off, int has_gscale)
{
    ulong i = get_global_id(0);
    int skip;
    float gs = okto_opt_gscale(gscale, gscale_off, has_gscale, &skip);
    if (i >= n || skip)
        return;
    okto_adamw_elem(p, p_off + i, g, g_off + i, m, m_off + i, v, v_off + i, sched[sched_off],
                    sched[sched_off + 2], sched[sched_off + 3], beta1, beta2, eps, weight_decay,
                    gs);
}

/* SGD over a chunk table; decay[c] is chunk c's weight decay. Row-style launch. */
__kernel void okto_sgd_multi(__global OKTO_T *p, __global const OKTO_T *g, __global float *mom,
                             __global const ulong *tab, ulong tab_off, __global const float *decay,
                             ulong decay_off, ulong nchunks, float momentum, int nesterov,
                             __global const float *sched, ulong sched_off,
                             __global const float *gscale, ulong gscale_off, int has_gscale)
{
    int skip;
    float gs = okto_opt_gscale(gscale, gscale_off, has_gscale, &skip);
    if (skip)
        return;
    float lr = sched[sched_off];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong c = get_group_id(0); c < nchunks; c += get_num_groups(0)) {
        __global const ulong *row = tab + tab_off + OKTO_CHUNK_COLS * c;
        ulong po = row[0], go = row[1], mo = row[2], len = row[4];
        float wd = decay[decay_off + c];
        for (ulong i = lid; i < len; i += l)
            okto_sgd_elem(p, po + i, g, go + i, mom, mo + i, lr, momentum, wd, nesterov, gs);
    }
}

/* AdamW over a chunk table; decay[c] is chunk c's (decoupled) weight decay. Row-style launch. */
__kernel void okto_adamw_multi(__global OKTO_T *p, __global const OKTO_T *g, __global float *m,
                               __global float *v, __global const ulong *tab, ulong tab_off,
                               __global const float *decay, ulong decay_off, ulong nchunks,
                               float beta1, float beta2, float eps, __global const float *sched,
                               ulong sched_off, __global const float *gscale, ulong gscale_off,
                               int has_gscale)
{
    int skip;
    float gs = okto_opt_gscale(gscale, gscale_off, has_gscale, &skip);
    if (skip)
        return;
    float lr = sched[sched_off], step_size = sched[sched_off + 2];
    float inv_sqrt_bc2 = sched[sched_off + 3];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong c = get_group_id(0); c < nchunks; c += get_num_groups(0)) {
        __global const ulong *row = tab + tab_off + OKTO_CHUNK_COLS * c;
        ulong po = row[0], go = row[1], mo = row[2], vo = row[3], len = row[4];
        float wd = decay[decay_off + c];
        for (ulong i = lid; i < len; i += l)
            okto_adamw_elem(p, po + i, g, go + i, m, mo + i, v, vo + i, lr, step_size, inv_sqrt_bc2,
                            beta1, beta2, eps, wd, gs);
    }
}

/* part[part_off + c] = sum of g^2 over chunk c. Row-style launch. */
__kernel void okto_clip_sumsq(__global const OKTO_T *g, __global const ulong *tab, ulong tab_off,
                              ulong nchunks, __global float *part, ulong part_off)
{
    __local float tmp[OKTO_OPT_MAXL];
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    for (ulong c = get_group_id(0); c < nchunks; c += get_num_groups(0)) {
        __global const ulong *row = tab + tab_off + OKTO_CHUNK_COLS * c;
        ulong go = row[1], len = row[4];
        float s = 0.0f, k = 0.0f;
        OKTO_OPT_SUM(s, k, i, lid, l, len, OKTO_LD(g, go + i) * OKTO_LD(g, go + i));
        tmp[lid] = s - k;
        float total = okto_tree_sum(tmp, lid, l);
        if (lid == 0)
            part[part_off + c] = total;
    }
}

/* out[0] = scale, out[1] = norm from the per-chunk sums of squares. One work-group
 * (global = local = L, any L from 1 to 256; other groups return). */
__kernel void okto_clip_norm(__global const float *part, ulong part_off, ulong nchunks,
                             float max_norm, __global float *out, ulong out_off)
{
    __local float tmp[OKTO_OPT_MAXL];
    if (get_group_id(0) != 0)
        return;
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    float s = 0.0f, k = 0.0f;
    for (ulong c = lid; c < nchunks; c += l)
        okto_opt_kadd(&s, &k, part[part_off + c]);
    tmp[lid] = s - k;
    float norm = sqrt(okto_tree_sum(tmp, lid, l));
    if (lid == 0) {
        out[out_off] = isfinite(norm) ? fmin(1.0f, max_norm / (norm + 1e-6f)) : NAN;
        out[out_off + 1] = norm;
    }
}

/* g *= scale[0] over every chunk; nothing is written when the scale is exactly 1. Row-style. */
__kernel void okto_clip_apply(__global OKTO_T *g, __global const ulong *tab, ulong tab_off,
                              ulong nchunks, __global const float *scale, ulong scale_off)
{
    float s = scale[scale_off];
    if (s == 1.0f)
        return;
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong c = get_group_id(0); c < nchunks; c += get_num_groups(0)) {
        __global const ulong *row = tab + tab_off + OKTO_CHUNK_COLS * c;
        ulong go = row[1], len = row[4];
        for (ulong i = lid; i < len; i += l)
            OKTO_ST(g, go + i, OKTO_LD(g, go + i) * s);
    }
}

/* x[tab[5c + col] + i] = 0 for i < tab[5c + 4], every chunk c; col in 0..3. Row-style. */
__kernel void okto_chunks_zero(__global OKTO_T *x, __global const ulong *tab, ulong tab_off,
                               ulong nchunks, int col)
{
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong c = get_group_id(0); c < nchunks; c += get_num_groups(0)) {
        __global const ulong *row = tab + tab_off + OKTO_CHUNK_COLS * c;
        ulong xo = row[col], len = row[4];
        for (ulong i = lid; i < len; i += l)
            OKTO_ST(x, xo + i, 0.0f);
    }
}

/* sched[1] += 1: the step count, advanced on the device. Item 0 does it; any grid. */
__kernel void okto_sched_advance(__global float *sched, ulong sched_off)
{
    if (get_global_id(0) == 0)
        sched[sched_off + 1] += 1.0f;
}

/* sched[2] = sched[0] / (1 - beta1^t), sched[3] = 1 / sqrt(1 - beta2^t) with t = sched[1]: the
 * AdamW step's bias-corrected scalars, once per step (after lr and t are set, before the
 * step), because computed per item they made okto_adamw ~60x slower on PoCL (4M elements:
 * 6 ms hoisted, 350-450 ms per item, 28-50 ms once per work-group behind a barrier; measured
 * here). Item 0 does it; any grid. */
__kernel void okto_adamw_prepare(__global float *sched, ulong sched_off, float beta1, float beta2)
{
    if (get_global_id(0) != 0)
        return;
    float lr = sched[sched_off], t = sched[sched_off + 1];
    sched[sched_off + 2] = lr / okto_adam_bias_correction(beta1, t);
    sched[sched_off + 3] = 1.0f / sqrt(okto_adam_bias_correction(beta2, t));
}
