/* cl/softmax_ext.cl: softmax and log-softmax over the last dimension of a [rows, cols] row-major
 * block (contiguous from its offset), forward and backward, for any data dtype (OKTO_T; the
 * f32-only okto_softmax_rows in cl/softmax.cl predates the dtypes). The backward passes take the
 * forward's output y (saved by the host), not x.
 *
 * Launch: row kernels, 1-D, a work-group per row, looping over rows by group
 * (r = group, group + ngroups, ...), the row's columns striped over the group's L items
 * (c = lid, lid + L, ...). global = L * ngroups, local = L, any L from 1 to OKTO_SMX_MAXL (256),
 * any ngroups >= 1 (extra groups idle). L = 1 is the fast choice on a CPU (an item walks whole
 * rows contiguously), 64-256 on a GPU. Sums are compensated per item, then a tree over the
 * group; results depend on L, never on ngroups or timing.
 *
 * Stability: the forward passes subtract the row's max before exp(), so every exp() is in
 * (0, 1] and logits of any size stay finite; log_softmax is (x - max) - log(sum), computed
 * without forming softmax, so it keeps its precision far below log(FLT_MIN). NaN in a row gives
 * NaN outputs for that row (through the sum); a row of all -inf gives NaN (0/0), as in PyTorch.
 *
 * Aliasing: y may be x (forward); dx may be dy when accumulate = 0 (each element is read, then
 * written, by one item, after the row's sum). accumulate = 0 writes dx, 1 adds to it. */

#define OKTO_SMX_MAXL 256

inline void okto_smx_kadd(float *s, float *k, float v)
{
    float y = v - *k, t = *s + y;
    *k = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Compensated sum of EXPR (an expression in the loop variable v) over v = start, start + step,
 * ... < end in blocks of 8 terms summed pairwise, each block added compensated (the chain of 4
 * dependent adds once per 8 terms: ~4x faster than per term on a CPU, as in cl/norm.cl's
 * OKTO_NORM_SUM); the last terms one by one. */
#define OKTO_SMX_SUM(s, k, v, start, step, end, EXPR)                                              \
    do {                                                                                           \
        ulong v##_b = (start), v##_s = (step);                                                     \
        for (; v##_b + 7 * v##_s < (end); v##_b += 8 * v##_s) {                                    \
            float a_[8];                                                                           \
            for (int j_ = 0; j_ < 8; j_++) {                                                       \
                ulong v = v##_b + (ulong)j_ * v##_s;                                               \
                a_[j_] = (EXPR);                                                                   \
            }                                                                                      \
            okto_smx_kadd(&(s), &(k),                                                              \
                          ((a_[0] + a_[1]) + (a_[2] + a_[3])) +                                    \
                              ((a_[4] + a_[5]) + (a_[6] + a_[7])));                                \
        }                                                                                          \
        for (ulong v = v##_b; v < (end); v += v##_s)                                               \
            okto_smx_kadd(&(s), &(k), (EXPR));                                                     \
    } while (0)

/* m = fmax(m, EXPR) over the same strided range, 8 independent maxima at a time. */
#define OKTO_SMX_MAX(m, v, start, step, end, EXPR)                                                 \
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

/* The row's max, then its sum of exp(x - max): both for the whole group. */
inline float2 okto_smx_row_stats(__global const OKTO_T *x, ulong xr, ulong cols, __local float *tmp)
{
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    float m = -INFINITY;
    OKTO_SMX_MAX(m, c, lid, l, cols, OKTO_LD(x, xr + c));
    tmp[lid] = m;
    m = okto_tree_max(tmp, lid, l);
    float s = 0.0f, k = 0.0f;
    OKTO_SMX_SUM(s, k, c, lid, l, cols, exp(OKTO_LD(x, xr + c) - m));
    tmp[lid] = s - k;
    return (float2)(m, okto_tree_sum(tmp, lid, l));
}

/* The group's sum of a[c] * b[c] over the row (b NULL: of a[c]). */
inline float okto_smx_row_dot(__global const OKTO_T *a, ulong ar, __global const OKTO_T *b,
                              ulong br, ulong cols, __local float *tmp)
{
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    float s = 0.0f, k = 0.0f;
    if (b)
        OKTO_SMX_SUM(s, k, c, lid, l, cols, OKTO_LD(a, ar + c) * OKTO_LD(b, br + c));
    else
        OKTO_SMX_SUM(s, k, c, lid, l, cols, OKTO_LD(a, ar + c));
    tmp[lid] = s - k;
    return okto_tree_sum(tmp, lid, l);
}

/* y = softmax(x) by rows: exp(x - max) / sum(exp(x - max)). Row kernel. */
__kernel void okto_softmax_fwd(__global const OKTO_T *x, ulong x_off, __global OKTO_T *y,
                               ulong y_off, ulong rows, ulong cols)
{
    __local float tmp[OKTO_SMX_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * cols, yr = y_off + r * cols;
        float2 st = okto_smx_row_stats(x, xr, cols, tmp);
        float inv = 1.0f / st.y;
        for (ulong c = lid; c < cols; c += l)
            OKTO_ST(y, yr + c, exp(OKTO_LD(x, xr + c) - st.x) * inv);
    }
}

/* dx = y * (dy - sum_c(dy * y)) by rows, from the forward's output y. Row kernel. */
__kernel void okto_softmax_bwd(__global const OKTO_T *y, ulong y_off, __global const OKTO_T *dy,
                               ulong dy_off, __global OKTO_T *dx, ulong dx_off, ulong rows,
                               ulong cols, int accumulate)
{
    __local float tmp[OKTO_SMX_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong yr = y_off + r * cols, dyr = dy_off + r * cols, dxr = dx_off + r * cols;
        float s = okto_smx_row_dot(dy, dyr, y, yr, cols, tmp);
        for (ulong c = lid; c < cols; c += l) {
            float d = OKTO_LD(y, yr + c) * (OKTO_LD(dy, dyr + c) - s);
            if (accumulate)
                d += OKTO_LD(dx, dxr + c);
            OKTO_ST(dx, dxr + c, d);
        }
    }
}

/* y = log_softmax(x) by rows: (x - max) - log(sum(exp(x - max))). Row kernel. */
__kernel void okto_log_softmax_fwd(__global const OKTO_T *x, ulong x_off, __global OKTO_T *y,
                                   ulong y_off, ulong rows, ulong cols)
{
    __local float tmp[OKTO_SMX_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * cols, yr = y_off + r * cols;
        float2 st = okto_smx_row_stats(x, xr, cols, tmp);
        float ls = log(st.y);
        for (ulong c = lid; c < cols; c += l)
            OKTO_ST(y, yr + c, (OKTO_LD(x, xr + c) - st.x) - ls);
    }
}

/* dx = dy - exp(y) * sum_c(dy) by rows, from the forward's output y (log-probabilities).
 * Row kernel. */
__kernel void okto_log_softmax_bwd(__global const OKTO_T *y, ulong y_off, __global const OKTO_T *dy,
                                   ulong dy_off, __global OKTO_T *dx, ulong dx_off, ulong rows,
                                   ulong cols, int accumulate)
{
    __local float tmp[OKTO_SMX_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong yr = y_off + r * cols, dyr = dy_off + r * cols, dxr = dx_off + r * cols;
        float s = okto_smx_row_dot(dy, dyr, 0, 0, cols, tmp);
        for (ulong c = lid; c < cols; c += l) {
            float d = OKTO_LD(dy, dyr + c) - exp(OKTO_LD(y, yr + c)) * s;
            if (accumulate)
                d += OKTO_LD(dx, dxr + c);
            OKTO_ST(dx, dxr + c, d);
        }
    }
}
