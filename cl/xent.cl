/* cl/xent.cl: cross-entropy of logits [rows, classes] (OKTO_T, row-major, contiguous from the
 * offset) against int32 class labels [rows], mean-reduced over the rows whose label is not
 * ignore_index, with everything the mean depends on kept on the device (a recorded graph is
 * replayed with new labels: the host never reads them).
 *
 * A step is four launches:
 *   okto_xent_fwd    per row: loss[r] (float32) and the row's stat[2r] = max, stat[2r+1] =
 *                    log(sum(exp(x - max))) (float32, for the backward); flags bad labels.
 *   okto_xent_count  count[0] = number of rows whose label != ignore_index (float32 scalar).
 *   okto_xent_mean   out[0] = sum(loss) / count[0]: the mean loss (float32 scalar).
 *   okto_xent_bwd    dx = dloss[0] * (softmax(x) - onehot(label)) / count[0] per element.
 * count does not depend on the forward: it may run before or concurrently with okto_xent_fwd.
 * For a sum-reduced loss pass a count buffer holding 1.0f instead of running okto_xent_count.
 *
 * Labels: a row whose label == ignore_index (any value, in range or not, e.g. -100) gives loss 0
 * and gradient 0 and is not counted. Any other label outside [0, classes) is bad: that row's
 * loss and gradient are NaN (so the mean is NaN), the logits are never read at that label, and
 * the row sets the int32 flag: flag[0] = 1 (atomic_or) and flag[1] = min(flag[1], r) (atomic_min,
 * deterministic: the first bad row, whatever the order). The host sets flag = {0, INT_MAX} once
 * (the flag is sticky across steps) and reads it when it wants to know. Bad rows are counted in
 * count (they are not ignored). With every row ignored count is 0, the mean is NaN (0/0, as in
 * PyTorch) and the gradient is 0.
 *
 * Precision: loss = (max - x[label]) + log(sum(exp(x - max))), so large logits lose nothing to
 * cancellation; the backward's exp(x - max - logsum) uses the two saved terms, not their
 * rounded sum. Counts are exact below 2^24 rows (float32). */

#define OKTO_XENT_MAXL 256

inline void okto_xent_kadd(float *s, float *k, float v)
{
    float y = v - *k, t = *s + y;
    *k = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Compensated sum of EXPR (an expression in the loop variable v) over v = start, start + step,
 * ... < end in blocks of 8 terms summed pairwise, each block added compensated (the chain of 4
 * dependent adds once per 8 terms: ~4x faster than per term on a CPU, as in cl/norm.cl's
 * OKTO_NORM_SUM); the last terms one by one. */
#define OKTO_XENT_SUM(s, k, v, start, step, end, EXPR)                                             \
    do {                                                                                           \
        ulong v##_b = (start), v##_s = (step);                                                     \
        for (; v##_b + 7 * v##_s < (end); v##_b += 8 * v##_s) {                                    \
            float a_[8];                                                                           \
            for (int j_ = 0; j_ < 8; j_++) {                                                       \
                ulong v = v##_b + (ulong)j_ * v##_s;                                               \
                a_[j_] = (EXPR);                                                                   \
            }                                                                                      \
            okto_xent_kadd(&(s), &(k),                                                             \
                           ((a_[0] + a_[1]) + (a_[2] + a_[3])) +                                   \
                               ((a_[4] + a_[5]) + (a_[6] + a_[7])));                               \
        }                                                                                          \
        for (ulong v = v##_b; v < (end); v += v##_s)                                               \
            okto_xent_kadd(&(s), &(k), (EXPR));                                                    \
    } while (0)

/* m = fmax(m, EXPR) over the same strided range, 8 independent maxima at a time. */
#define OKTO_XENT_MAX(m, v, start, step, end, EXPR)                                                \
    do {                                                                                           \
        ulong v##_b = (start), v##_s = (step);                                                     \
        for (; v##_b + 7 * v##_s < (end); v##_b += 8 * v##_s) {                                    \
            float a_[8];                                                                           \
            for (int j_ = 0; j_ < 8; j_++) {                                                       \
                ulong v = v##_b + (ulong)j_ * v##_s;                                               \
                a_[j_] = (EXPR);                                                                   \
            }                                                                                      \
            (m) = fmax((m), fmax(fmax(fmax(a_[0], a_[1]), fmax(a_[2], a_[3])),                     \
                                 fmax(fmax(a_[4], a_[5]), fmax(a_[6], a_[7]))));                   \
        }                                                                                          \
        for (ulong v = v##_b; v < (end); v += v##_s)                                               \
            (m) = fmax((m), (EXPR));                                                               \
    } while (0)

inline void okto_xent_flag(__global int *flag, ulong flag_off, ulong r)
{
    atomic_or(flag + flag_off, 1);
    atomic_min(flag + flag_off + 1, (int)min(r, (ulong)INT_MAX));
}

/* Per-row loss and saved statistics. Row kernel, 1-D: a work-group per row, looping over rows
 * by group, the row striped over the L items; global = L * ngroups, local = L, any L from 1 to
 * 256 (L = 1 on a CPU: an item walks whole rows), any ngroups. */
__kernel void okto_xent_fwd(__global const OKTO_T *x, ulong x_off, __global const int *labels,
                            ulong labels_off, __global float *loss, ulong loss_off,
                            __global float *stat, ulong stat_off, ulong rows, ulong classes,
                            int ignore_index, __global int *flag, ulong flag_off)
{
    __local float tmp[OKTO_XENT_MAXL];
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * classes;
        float m = -INFINITY;
        OKTO_XENT_MAX(m, c, lid, l, classes, OKTO_LD(x, xr + c));
        tmp[lid] = m;
        m = okto_tree_max(tmp, lid, l);
        float s = 0.0f, k = 0.0f;
        OKTO_XENT_SUM(s, k, c, lid, l, classes, exp(OKTO_LD(x, xr + c) - m));
        tmp[lid] = s - k;
        float ls = log(okto_tree_sum(tmp, lid, l));
        if (lid == 0) {
            int lab = labels[labels_off + r];
            float v;
            if (lab == ignore_index) {
                v = 0.0f;
            } else if (lab < 0 || (ulong)lab >= classes) {
                v = NAN;
                okto_xent_flag(flag, flag_off, r);
            } else {
                v = (m - OKTO_LD(x, xr + (ulong)lab)) + ls;
            }
            loss[loss_off + r] = v;
            stat[stat_off + 2 * r] = m;
            stat[stat_off + 2 * r + 1] = ls;
        }
    }
}

/* count[0] = (float) number of r < rows with labels[r] != ignore_index. One work-group does it
 * all (global = local = L, any L from 1 to 256; groups past the first return at once), so the
 * count has one order: exact integers in a tree, converted once. */
__kernel void okto_xent_count(__global const int *labels, ulong labels_off, ulong rows,
                              int ignore_index, __global float *count, ulong count_off)
{
    __local uint tmp[OKTO_XENT_MAXL];
    if (get_group_id(0) != 0)
        return;
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    uint n = 0;
    for (ulong r = lid; r < rows; r += l)
        n += labels[labels_off + r] != ignore_index;
    tmp[lid] = n;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = okto_pow2ceil(l) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < l)
            tmp[lid] += tmp[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        count[count_off] = (float)tmp[0];
}

/* out[0] = sum over r of loss[r], divided by count[0]. One work-group (global = local = L, any
 * L from 1 to 256; other groups return); compensated per item, then a tree: fixed order for a
 * fixed L. */
__kernel void okto_xent_mean(__global const float *loss, ulong loss_off, ulong rows,
                             __global const float *count, ulong count_off, __global float *out,
                             ulong out_off)
{
    __local float tmp[OKTO_XENT_MAXL];
    if (get_group_id(0) != 0)
        return;
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    float s = 0.0f, k = 0.0f;
    OKTO_XENT_SUM(s, k, r, lid, l, rows, loss[loss_off + r]);
    tmp[lid] = s - k;
    float total = okto_tree_sum(tmp, lid, l);
    if (lid == 0)
        out[out_off] = total / count[count_off];
}

/* dx[r, c] (+)= dloss[0] / count[0] * (exp(x[r, c] - stat[2r] - stat[2r+1]) - (c == label[r]))
 * for a counted row; 0 for an ignored row (nothing added when accumulating); NaN for a bad row.
 * dloss is the gradient of the mean loss (1.0f when the loss is what is minimised; a loss scale
 * otherwise), on the device like count. dx may be x when accumulate = 0.
 * 2-D, one item per element: dimension 0 the class c (global0 >= classes), dimension 1 the row
 * r (global1 >= rows); any local size. */
__kernel void okto_xent_bwd(__global const OKTO_T *x, ulong x_off, __global const int *labels,
                            ulong labels_off, __global const float *stat, ulong stat_off,
                            __global const float *count, ulong count_off,
                            __global const float *dloss, ulong dloss_off, __global OKTO_T *dx,
                            ulong dx_off, ulong rows, ulong classes, int ignore_index,
                            int accumulate)
{
    ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= classes || r >= rows)
        return;
    int lab = labels[labels_off + r];
    ulong i = r * classes + c;
    float g;
    if (lab == ignore_index) {
        if (accumulate)
            return;
        g = 0.0f;
    } else if (lab < 0 || (ulong)lab >= classes) {
        g = NAN;
    } else {
        float p = exp(OKTO_LD(x, x_off + i) - stat[stat_off + 2 * r] - stat[stat_off + 2 * r + 1]);
        g = (p - (c == (ulong)lab ? 1.0f : 0.0f)) * (dloss[dloss_off] / count[count_off]);
    }
    if (accumulate)
        g += OKTO_LD(dx, dx_off + i);
    OKTO_ST(dx, dx_off + i, g);
}
