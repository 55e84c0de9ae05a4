/* cl/norm.cl: layer normalisation and RMS normalisation over the last dimension of a
 * [rows, cols] row-major block (contiguous from its offset), forward and backward.
 *
 * Data tensors (x, y, weight, bias, dy, dx, dweight, dbias) are OKTO_T; the saved statistics
 * (mean, rstd) and the dweight/dbias partials are float32. weight and bias are [cols].
 *
 * Two launch shapes (the host pads every grid: global sizes are at least what is said here, any
 * excess items return at once):
 *   row kernels (okto_layernorm_fwd, okto_layernorm_bwd_dx, okto_rmsnorm_fwd,
 *   okto_rmsnorm_bwd_dx): 1-D, a work-group per row, looping over rows by group
 *   (r = group, group + ngroups, ...), the row's columns striped over the group's L items
 *   (c = lid, lid + L, ...). global = L * ngroups, local = L, any L from 1 to OKTO_NORM_MAXL
 *   (256; power of two or not), any ngroups >= 1. On a CPU, L = 1 (each item walks whole rows,
 *   contiguously) is the fast choice; on a GPU 64-256. Each item keeps a compensated (Kahan) sum
 *   of its columns (in blocks of 8: OKTO_NORM_SUM), then a tree in local memory combines the L
 *   sums, so a row of 100k columns costs a few ulps of its sum. The result depends on L (the
 *   tree's shape), never on ngroups or on timing: fixed L, fixed bits.
 *   column kernels: one item per output element, no grid-stride loop. okto_layernorm_bwd_wb
 *   and okto_rmsnorm_bwd_w are 2-D: dimension 0 the column c (global0 >= cols), dimension 1 the
 *   row block kb (global1 >= nblocks); the item walks its block's rows in order.
 *   okto_norm_reduce_partials is 1-D, an item per column (global >= cols). Any local size.
 *   Their results depend on block_rows only, not on the launch.
 *
 * dweight and dbias are sums over all rows; they are deterministic by construction: the rows
 * are cut into nblocks = ceil(rows / block_rows) blocks, okto_*_bwd_w(b) writes each block's
 * sums (rows in order, compensated) to a float32 scratch part[nblocks, cols], and
 * okto_norm_reduce_partials adds the nblocks partials of each column in block order into the
 * final [cols] gradient (overwrite or accumulate). block_rows is the host's choice: it trades
 * parallelism (nblocks * cols items in the partial kernel) against scratch (nblocks * cols
 * floats) and the length of the reduce's walk (nblocks); e.g. nblocks ~ clamp(4 * device
 * items / cols, 1, min(rows, 1024)), block_rows = ceil(rows / nblocks).
 *
 * Flags: has_w / has_b = 0 means the tensor is absent (weight 1, bias 0); the buffer argument
 * is then never read and may be any buffer (or NULL). accumulate = 0 writes the gradient,
 * 1 adds it to what the output holds. Aliasing: y may be x in the forward passes, dx may be dy
 * when accumulate = 0 (each element is read, then written, by one item, after the row's sums).
 * Sizes: rows, cols, block_rows ulong (block_rows >= 1); eps float (> 0 or the statistics of a
 * constant row divide by zero). */

#define OKTO_NORM_MAXL 256

/* Kahan step: *s + *k is the running sum's value, *k its lost low part (negated, as in
 * cl/reduce.cl: sum = s - k); reset where the sum stops being finite (inf - inf is NaN). */
inline void okto_norm_kadd(float *s, float *k, float v)
{
    float y = v - *k, t = *s + y;
    *k = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Compensated sums of EXPR (an expression in the loop variable v) over v = start, start + step,
 * ... < end, in blocks: 8 terms are summed pairwise (independent adds, no dependent chain),
 * then the block's sum is added compensated; the last terms one by one. The compensation is a
 * chain of 4 dependent adds; paying it once per 8 terms instead of per term makes a row sum
 * ~4x faster on a CPU (layernorm_fwd over 4096 x 1024 floats, measured here: 23 ms with a
 * compensated add per term, 5 ms with plain adds), at the cost of the block's 3 roundings.
 * OKTO_NORM_SUM2 keeps two sums of the same terms' loads. */
#define OKTO_NORM_SUM(s, k, v, start, step, end, EXPR)                                             \
    do {                                                                                           \
        ulong v##_b = (start), v##_s = (step);                                                     \
        for (; v##_b + 7 * v##_s < (end); v##_b += 8 * v##_s) {                                    \
            float a_[8];                                                                           \
            for (int j_ = 0; j_ < 8; j_++) {                                                       \
                ulong v = v##_b + (ulong)j_ * v##_s;                                               \
                a_[j_] = (EXPR);                                                                   \
            }                                                                                      \
            okto_norm_kadd(&(s), &(k),                                                             \
                           ((a_[0] + a_[1]) + (a_[2] + a_[3])) +                                   \
                               ((a_[4] + a_[5]) + (a_[6] + a_[7])));                               \
        }                                                                                          \
        for (ulong v = v##_b; v < (end); v += v##_s)                                               \
            okto_norm_kadd(&(s), &(k), (EXPR));                                                    \
    } while (0)

#define OKTO_NORM_SUM2(s1, k1, s2, k2, v, start, step, end, EXPR1, EXPR2)                          \
    do {                                                                                           \
        ulong v##_b = (start), v##_s = (step);                                                     \
        for (; v##_b + 7 * v##_s < (end); v##_b += 8 * v##_s) {                                    \
            float a_[8], b_[8];                                                                    \
            for (int j_ = 0; j_ < 8; j_++) {                                                       \
                ulong v = v##_b + (ulong)j_ * v##_s;                                               \
                a_[j_] = (EXPR1);                                                                  \
                b_[j_] = (EXPR2);                                                                  \
            }                                                                                      \
            okto_norm_kadd(&(s1), &(k1),                                                           \
                           ((a_[0] + a_[1]) + (a_[2] + a_[3])) +                                   \
                               ((a_[4] + a_[5]) + (a_[6] + a_[7])));                               \
            okto_norm_kadd(&(s2), &(k2),                                                           \
                           ((b_[0] + b_[1]) + (b_[2] + b_[3])) +                                   \
                               ((b_[4] + b_[5]) + (b_[6] + b_[7])));                               \
        }                                                                                          \
        for (ulong v = v##_b; v < (end); v += v##_s) {                                             \
            okto_norm_kadd(&(s1), &(k1), (EXPR1));                                                 \
            okto_norm_kadd(&(s2), &(k2), (EXPR2));                                                 \
        }                                                                                          \
    } while (0)

/* The group's sum of its items' values v (each item passes its own); every item gets it. */
inline float okto_norm_group_sum(__local float *tmp, float v)
{
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    tmp[lid] = v;
    return okto_tree_sum(tmp, lid, l);
}

/* g = dy * weight (or dy) at column c of the row at dyr. */
inline float okto_norm_g(__global const OKTO_T *dy, ulong dyr, __global const OKTO_T *w,
                         ulong w_off, int has_w, ulong c)
{
    float g = OKTO_LD(dy, dyr + c);
    return has_w ? g * OKTO_LD(w, w_off + c) : g;
}

/* Mean and 1/sqrt(var + eps) of row xr (element offset) over cols columns: two passes (mean,
 * then mean of squared deviations), so a row far from 0 loses nothing to cancellation. */
inline float2 okto_norm_row_moments(__global const OKTO_T *x, ulong xr, ulong cols, float eps,
                                    __local float *tmp)
{
    ulong lid = get_local_id(0), l = get_local_size(0);
    float s = 0.0f, k = 0.0f;
    OKTO_NORM_SUM(s, k, c, lid, l, cols, OKTO_LD(x, xr + c));
    float mu = okto_norm_group_sum(tmp, s - k) / (float)cols;
    s = 0.0f;
    k = 0.0f;
    OKTO_NORM_SUM(s, k, c, lid, l, cols, (OKTO_LD(x, xr + c) - mu) * (OKTO_LD(x, xr + c) - mu));
    float var = okto_norm_group_sum(tmp, s - k) / (float)cols;
    return (float2)(mu, 1.0f / sqrt(var + eps));
}

/* y = (x - mean) * rstd * weight + bias by rows; saves mean[r] and rstd[r] = 1/sqrt(var + eps)
 * (biased variance, over cols) as float32 for the backward pass.
 * Row kernel: global = L * ngroups, local = L <= 256. */
__kernel void okto_layernorm_fwd(__global const OKTO_T *x, ulong x_off, __global const OKTO_T *w,
                                 ulong w_off, __global const OKTO_T *b, ulong b_off,
                                 __global OKTO_T *y, ulong y_off, __global float *mean,
                                 ulong mean_off, __global float *rstd, ulong rstd_off, ulong rows,
                                 ulong cols, float eps, int has_w, int has_b)
{
    __local float tmp[OKTO_NORM_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * cols, yr = y_off + r * cols;
        float2 st = okto_norm_row_moments(x, xr, cols, eps, tmp);
        for (ulong c = lid; c < cols; c += l) {
            float h = (OKTO_LD(x, xr + c) - st.x) * st.y;
            if (has_w)
                h *= OKTO_LD(w, w_off + c);
            if (has_b)
                h += OKTO_LD(b, b_off + c);
            OKTO_ST(y, yr + c, h);
        }
        if (lid == 0) {
            mean[mean_off + r] = st.x;
            rstd[rstd_off + r] = st.y;
        }
    }
}

/* dx of layernorm from dy, x and the saved mean, rstd: with xhat = (x - mean) * rstd and
 * g = dy * weight, dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)).
 * Row kernel: global = L * ngroups, local = L <= 256. */
__kernel void okto_layernorm_bwd_dx(__global const OKTO_T *dy, ulong dy_off,
                                    __global const OKTO_T *x, ulong x_off, __global const OKTO_T *w,
                                    ulong w_off, __global const float *mean, ulong mean_off,
                                    __global const float *rstd, ulong rstd_off, __global OKTO_T *dx,
                                    ulong dx_off, ulong rows, ulong cols, int has_w, int accumulate)
{
    __local float tmp[OKTO_NORM_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * cols, dyr = dy_off + r * cols, dxr = dx_off + r * cols;
        float mu = mean[mean_off + r], rs = rstd[rstd_off + r];
        float sg = 0.0f, kg = 0.0f, sgx = 0.0f, kgx = 0.0f;
        OKTO_NORM_SUM2(sg, kg, sgx, kgx, c, lid, l, cols, okto_norm_g(dy, dyr, w, w_off, has_w, c),
                       okto_norm_g(dy, dyr, w, w_off, has_w, c) * (OKTO_LD(x, xr + c) - mu) * rs);
        float mg = okto_norm_group_sum(tmp, sg - kg) / (float)cols;
        float mgx = okto_norm_group_sum(tmp, sgx - kgx) / (float)cols;
        for (ulong c = lid; c < cols; c += l) {
            float g = okto_norm_g(dy, dyr, w, w_off, has_w, c), xh = (OKTO_LD(x, xr + c) - mu) * rs;
            float d = rs * (g - mg - xh * mgx);
            if (accumulate)
                d += OKTO_LD(dx, dxr + c);
            OKTO_ST(dx, dxr + c, d);
        }
    }
}

/* Per-row-block partials of layernorm's dweight = sum_r dy * xhat and dbias = sum_r dy:
 * pw[kb * cols + c] and pb[kb * cols + c] for block kb = rows [kb * block_rows, ...).
 * has_dw / has_db = 0: that scratch is not written (any buffer). 2-D column kernel:
 * global >= (cols, nblocks). */
__kernel void okto_layernorm_bwd_wb(__global const OKTO_T *dy, ulong dy_off,
                                    __global const OKTO_T *x, ulong x_off,
                                    __global const float *mean, ulong mean_off,
                                    __global const float *rstd, ulong rstd_off, __global float *pw,
                                    ulong pw_off, __global float *pb, ulong pb_off, ulong rows,
                                    ulong cols, ulong block_rows, int has_dw, int has_db)
{
    ulong c = get_global_id(0), kb = get_global_id(1);
    if (c >= cols || kb * block_rows >= rows)
        return;
    ulong r0 = kb * block_rows, r1 = min(r0 + block_rows, rows), i = kb * cols + c;
    float sw = 0.0f, kw = 0.0f, sb = 0.0f, kbs = 0.0f;
    OKTO_NORM_SUM2(
        sw, kw, sb, kbs, r, r0, 1, r1,
        OKTO_LD(dy, dy_off + r * cols + c) *
            ((OKTO_LD(x, x_off + r * cols + c) - mean[mean_off + r]) * rstd[rstd_off + r]),
        OKTO_LD(dy, dy_off + r * cols + c));
    if (has_dw)
        pw[pw_off + i] = sw - kw;
    if (has_db)
        pb[pb_off + i] = sb - kbs;
}

/* out[c] (+)= sum over kb = 0 .. nblocks-1, in that order, of part[kb * cols + c]: the final
 * dweight or dbias from the partials above. 1-D column kernel: global >= cols. */
__kernel void okto_norm_reduce_partials(__global const float *part, ulong part_off,
                                        __global OKTO_T *out, ulong out_off, ulong nblocks,
                                        ulong cols, int accumulate)
{
    ulong c = get_global_id(0);
    if (c >= cols)
        return;
    float s = 0.0f, k = 0.0f;
    for (ulong kb = 0; kb < nblocks; kb++)
        okto_norm_kadd(&s, &k, part[part_off + kb * cols + c]);
    float v = s - k;
    if (accumulate)
        v += OKTO_LD(out, out_off + c);
    OKTO_ST(out, out_off + c, v);
}

/* y = x * rstd * weight by rows with rstd = 1/sqrt(mean_c(x^2) + eps), saved as float32.
 * Row kernel: global = L * ngroups, local = L <= 256. */
__kernel void okto_rmsnorm_fwd(__global const OKTO_T *x, ulong x_off, __global const OKTO_T *w,
                               ulong w_off, __global OKTO_T *y, ulong y_off, __global float *rstd,
                               ulong rstd_off, ulong rows, ulong cols, float eps, int has_w)
{
    __local float tmp[OKTO_NORM_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * cols, yr = y_off + r * cols;
        float s = 0.0f, k = 0.0f;
        OKTO_NORM_SUM(s, k, c, lid, l, cols, OKTO_LD(x, xr + c) * OKTO_LD(x, xr + c));
        float rs = 1.0f / sqrt(okto_norm_group_sum(tmp, s - k) / (float)cols + eps);
        for (ulong c = lid; c < cols; c += l) {
            float h = OKTO_LD(x, xr + c) * rs;
            if (has_w)
                h *= OKTO_LD(w, w_off + c);
            OKTO_ST(y, yr + c, h);
        }
        if (lid == 0)
            rstd[rstd_off + r] = rs;
    }
}

/* dx of rmsnorm from dy, x and the saved rstd: with xhat = x * rstd and g = dy * weight,
 * dx = rstd * (g - xhat * mean_c(g * xhat)). Row kernel: global = L * ngroups, local = L. */
__kernel void okto_rmsnorm_bwd_dx(__global const OKTO_T *dy, ulong dy_off, __global const OKTO_T *x,
                                  ulong x_off, __global const OKTO_T *w, ulong w_off,
                                  __global const float *rstd, ulong rstd_off, __global OKTO_T *dx,
                                  ulong dx_off, ulong rows, ulong cols, int has_w, int accumulate)
{
    __local float tmp[OKTO_NORM_MAXL];
    ulong lid = get_local_id(0), l = get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * cols, dyr = dy_off + r * cols, dxr = dx_off + r * cols;
        float rs = rstd[rstd_off + r];
        float s = 0.0f, k = 0.0f;
        OKTO_NORM_SUM(s, k, c, lid, l, cols,
                      okto_norm_g(dy, dyr, w, w_off, has_w, c) * OKTO_LD(x, xr + c) * rs);
        float mgx = okto_norm_group_sum(tmp, s - k) / (float)cols;
        for (ulong c = lid; c < cols; c += l) {
            float d =
                rs * (okto_norm_g(dy, dyr, w, w_off, has_w, c) - OKTO_LD(x, xr + c) * rs * mgx);
            if (accumulate)
                d += OKTO_LD(dx, dxr + c);
            OKTO_ST(dx, dxr + c, d);
        }
    }
}

/* Per-row-block partials of rmsnorm's dweight = sum_r dy * x * rstd, as okto_layernorm_bwd_wb
 * (pw[kb * cols + c]); then okto_norm_reduce_partials. 2-D column kernel:
 * global >= (cols, nblocks). */
__kernel void okto_rmsnorm_bwd_w(__global const OKTO_T *dy, ulong dy_off, __global const OKTO_T *x,
                                 ulong x_off, __global const float *rstd, ulong rstd_off,
                                 __global float *pw, ulong pw_off, ulong rows, ulong cols,
                                 ulong block_rows)
{
    ulong c = get_global_id(0), kb = get_global_id(1);
    if (c >= cols || kb * block_rows >= rows)
        return;
    ulong r0 = kb * block_rows, r1 = min(r0 + block_rows, rows);
    float s = 0.0f, k = 0.0f;
    OKTO_NORM_SUM(s, k, r, r0, 1, r1,
                  OKTO_LD(dy, dy_off + r * cols + c) * OKTO_LD(x, x_off + r * cols + c) *
                      rstd[rstd_off + r]);
    pw[pw_off + kb * cols + c] = s - k;
}
