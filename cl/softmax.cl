/* cl/softmax.cl: row-wise softmax and fused softmax + cross-entropy. One work-group per row
 * (global = (L, rows), local = (L, 1), L chosen by the host, at most OKTO_SM_MAXL, any size):
 * the L work items stride over the row's columns (coalesced), and trees in local memory give
 * the row's max and then its sum of exp(x - max). Subtracting the max keeps every exp() in
 * (0, 1], so logits of any size stay finite. Each item keeps a Kahan sum of its exps before the
 * tree, as the reductions do (cl/reduce.cl). */

#define OKTO_SM_MAXL 256

inline int okto_sm_pow2ceil(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Tree over v[0 .. l) into v[0]; every item of the group must call it (barriers). */
inline float okto_sm_tree_max(__local float *v, int lid, int l)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = okto_sm_pow2ceil(l) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < l)
            v[lid] = fmax(v[lid], v[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = v[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* v is reused next: everyone has read v[0] */
    return r;
}

inline float okto_sm_tree_sum(__local float *v, int lid, int l)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = okto_sm_pow2ceil(l) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < l)
            v[lid] += v[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = v[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Max of the row, then sum of exp(x - max): both for the whole group. */
inline void okto_sm_row_stats(__global const float *row, int cols, __local float *v, float *mx,
                              float *sum)
{
    int lid = get_local_id(0), l = (int)get_local_size(0);
    float m = -INFINITY;
    for (int c = lid; c < cols; c += l)
        m = fmax(m, row[c]);
    v[lid] = m;
    m = okto_sm_tree_max(v, lid, l);
    float s = 0.0f, k = 0.0f;
    for (int c = lid; c < cols; c += l) {
        float y = exp(row[c] - m) - k, t = s + y;
        k = (t - s) - y;
        s = t;
    }
    v[lid] = s;
    *mx = m;
    *sum = okto_sm_tree_sum(v, lid, l);
}

/* y = softmax(x) by rows; y may be x (each element is read, then written, by one item, after
 * the stats have been read by everyone). */
__kernel void okto_softmax_rows(__global const float *x, int xo, __global float *y, int yo,
                                int rows, int cols)
{
    __local float v[OKTO_SM_MAXL];
    int lid = get_local_id(0), l = (int)get_local_size(0);
    /* a work-group per row, striding over the rows (the grid is fixed, lib/kernels.c); r is
     * the same for the whole group, so every item reaches the barriers */
    for (int r = get_group_id(1); r < rows; r += get_num_groups(1)) {
        __global const float *row = x + xo + (size_t)r * (size_t)cols;
        __global float *out = y + yo + (size_t)r * (size_t)cols;
        float m, sum;
        okto_sm_row_stats(row, cols, v, &m, &sum);
        for (int c = lid; c < cols; c += l)
            out[c] = exp(row[c] - m) / sum;
    }
}

/* Fused softmax + cross-entropy for rows of logits x with class labels lab (one float per row,
 * an integer in [0, cols)). For each row: loss[r] = -log softmax(x)[label], computed as
 * (max - x[label]) + log(sum exp(x - max)) so large logits lose no precision; and, when
 * has_grad, grad = (softmax(x) - onehot(label)) / total_rows. A label that is not an integer in
 * [0, cols) gives a NaN loss and no onehot term. grad may be x: x[label] is read before any
 * item writes. has_loss / has_grad off: that buffer is a placeholder and never written. */
__kernel void okto_softmax_xent_rows(__global const float *x, int xo, __global const float *lab,
                                     int lo, __global float *grad, int go, __global float *loss,
                                     int losso, int rows, int cols, int has_grad, int has_loss,
                                     float total_rows)
{
    __local float v[OKTO_SM_MAXL];
    int lid = get_local_id(0), l = (int)get_local_size(0);
    for (int r = get_group_id(1); r < rows; r += get_num_groups(1)) { /* as okto_softmax_rows */
        __global const float *row = x + xo + (size_t)r * (size_t)cols;
        float m, sum;
        okto_sm_row_stats(row, cols, v, &m, &sum);
        float lf = lab[lo + r];
        int valid = lf >= 0.0f && lf < (float)cols && lf == floor(lf);
        int label = valid ? (int)lf : -1;
        if (has_loss && lid == 0)
            loss[losso + r] = valid ? (m - row[label]) + log(sum) : NAN;
        barrier(CLK_GLOBAL_MEM_FENCE); /* x[label] was read before grad (maybe x) is written */
        if (has_grad) {
            __global float *gr = grad + go + (size_t)r * (size_t)cols;
            for (int c = lid; c < cols; c += l)
                gr[c] = (exp(row[c] - m) / sum - (c == label ? 1.0f : 0.0f)) / total_rows;
        }
    }
}
