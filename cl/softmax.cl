/* cl/softmax.cl: row-wise softmax and fused softmax + cross-entropy, of any float dtype
 * (OKTO_T, computed in float), rows of any stride (xrs, yrs: elements from one row to the next).
 * One work-group per row (global = (L, groups), local = (L, 1), L a
 * power of two chosen by the host, at most OKTO_SM_MAXL; the group count is fixed per device
 * and the groups loop over the rows): the L work items stride over the row's columns
 * (coalesced), and trees in local memory give the row's max and then its sum of exp(x - max).
 * Subtracting the max keeps every exp() in (0, 1], so logits of any size stay finite. Each item
 * keeps a Kahan sum of its exps before the tree, as the reductions do (cl/reduce.cl).
 * OKTO_SM_MAXL comes from the host (-D). */

/* Max of the row, then sum of exp(x - max): both for the whole group. */
inline void okto_sm_row_stats(__global const OKTO_T *row, long cols, __local float *v, float *mx,
                              float *sum)
{
    int lid = get_local_id(0), l = (int)get_local_size(0);
    float m = -INFINITY;
    for (long c = lid; c < cols; c += l)
        m = fmax(m, OKTO_LD(row, c));
    v[lid] = m;
    m = okto_tree_max(v, lid, l);
    float s = 0.0f, k = 0.0f;
    for (long c = lid; c < cols; c += l) {
        float y = exp(OKTO_LD(row, c) - m) - k, t = s + y;
        k = (t - s) - y;
        s = t;
    }
    v[lid] = s;
    *mx = m;
    *sum = okto_tree_sum(v, lid, l);
}

/* y = softmax(x) by rows; y may be x (each element is read, then written, by one item, after
 * the stats have been read by everyone). */
__kernel void okto_softmax_rows(__global const OKTO_T *x, ulong xo, long xrs,
                                __global OKTO_T *y, ulong yo, long yrs, long rows, long cols)
{
    __local float v[OKTO_SM_MAXL];
    int lid = get_local_id(0), l = (int)get_local_size(0);
    /* a work-group per row, striding over the rows (the grid is fixed); r is the same for the
     * whole group, so every item reaches the barriers */
    for (long r = get_group_id(1); r < rows; r += get_num_groups(1)) {
        __global const OKTO_T *row = x + xo + r * xrs;
        __global OKTO_T *out = y + yo + r * yrs;
        float m, sum;
        okto_sm_row_stats(row, cols, v, &m, &sum);
        for (long c = lid; c < cols; c += l)
            OKTO_ST(out, c, exp(OKTO_LD(row, c) - m) / sum);
    }
}

/* Fused softmax + cross-entropy for rows of logits x with int32 class labels lab. For each row:
 * loss[r] = -log softmax(x)[label] (float32), computed as (max - x[label]) + log(sum exp(x - max))
 * so large logits lose no precision; and, when has_grad, grad = (softmax(x) - onehot(label)) /
 * total_rows. A label outside [0, cols) gives a NaN loss, no onehot term, and sets the device
 * check flag {1, row, label, cols} (the first such row wins: atomic_cmpxchg) that the run
 * reports. grad may be x: x[label] is read before any item writes. has_loss / has_grad off: that
 * buffer is a placeholder and never written. */
__kernel void okto_softmax_xent_rows(__global const OKTO_T *x, ulong xo, long xrs,
                                     __global const int *lab, ulong lo, __global OKTO_T *grad,
                                     ulong go, long grs,
                                     __global float *loss, ulong losso, __global int *flag,
                                     ulong fo, long rows, long cols, long row0, int has_grad,
                                     int has_loss, float total_rows)
{
    __local float v[OKTO_SM_MAXL];
    int lid = get_local_id(0), l = (int)get_local_size(0);
    for (long r = get_group_id(1); r < rows; r += get_num_groups(1)) { /* as okto_softmax_rows */
        __global const OKTO_T *row = x + xo + r * xrs;
        float m, sum;
        okto_sm_row_stats(row, cols, v, &m, &sum);
        int label = lab[lo + r];
        int valid = label >= 0 && label < cols;
        if (lid == 0 && has_loss)
            loss[losso + r] = valid ? (m - OKTO_LD(row, label)) + log(sum) : NAN;
        if (lid == 0 && !valid && atomic_cmpxchg(flag + fo, 0, 1) == 0) {
            flag[fo + 1] = (int)(row0 + r);
            flag[fo + 2] = label;
            flag[fo + 3] = (int)cols;
        }
        barrier(CLK_GLOBAL_MEM_FENCE); /* x[label] was read before grad (maybe x) is written */
        if (has_grad) {
            __global OKTO_T *gr = grad + go + r * grs;
            for (long c = lid; c < cols; c += l)
                OKTO_ST(gr, c, (exp(OKTO_LD(row, c) - m) / sum - (c == label ? 1.0f : 0.0f)) /
                                   total_rows);
        }
    }
}
