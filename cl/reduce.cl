/* cl/reduce.cl: sum, max and min reductions of a rows x cols block (row-major, contiguous from
 * the offset). Two shapes of kernel, each in three flavours (sum, max, min; MEAN is a sum
 * divided by the count):
 *
 *   okto_reduce_rows_*  reduces along a row (over columns): out is rows x ngroups. Work-group
 *                       (g, r) takes row r's column chunk g; its L work items stride over the
 *                       chunk (neighbours read neighbours: coalesced), then a tree in local
 *                       memory combines the L values. global = (L * ngroups, rows), local (L, 1).
 *   okto_reduce_cols_*  reduces along a column (over rows): out is ngroups x cols. Work-group
 *                       (gc, g) takes TC columns and row chunk g; TR work items per column
 *                       stride down the rows, then a tree over the TR values of each column.
 *                       global = (cols rounded up to TC, TR * ngroups), local (TC, TR).
 *
 * Sums are never one long running sum: each work item keeps a compensated (Kahan) sum of its
 * own few hundred elements at most, and work items, groups and parts are combined by trees, so
 * the error stays a few ulps of the result whatever the size. The host picks the local size
 * (any size up to OKTO_RED_MAXL is correct: the tree handles sizes that are not powers of two)
 * and rounds the global size up; the result is divided by `div` as it is written (1 except for
 * the last step of a MEAN). Max and min propagate NaN. */

#define OKTO_RED_MAXL 256

inline float okto_red_max2(float a, float b) { return (a > b || isnan(a)) ? a : b; }
inline float okto_red_min2(float a, float b) { return (a < b || isnan(a)) ? a : b; }

inline int okto_red_pow2ceil(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Per-work-item accumulators. Kahan: k_ holds the low bits lost by the last add; it is reset
 * where the sum is not finite (inf - inf would otherwise turn an infinite sum into NaN). */
#define OKTO_RED_DECL_sum float s_ = 0.0f, k_ = 0.0f;
#define OKTO_RED_ADD_sum(v)                                                                        \
    {                                                                                              \
        float y_ = (v) - k_, t_ = s_ + y_;                                                         \
        k_ = isfinite(t_) ? (t_ - s_) - y_ : 0.0f;                                                 \
        s_ = t_;                                                                                   \
    }
#define OKTO_RED_TREE_sum(a, b) ((a) + (b))
#define OKTO_RED_DECL_max float s_ = -INFINITY;
#define OKTO_RED_ADD_max(v) s_ = okto_red_max2(s_, (v));
#define OKTO_RED_TREE_max(a, b) okto_red_max2((a), (b))
#define OKTO_RED_DECL_min float s_ = INFINITY;
#define OKTO_RED_ADD_min(v) s_ = okto_red_min2(s_, (v));
#define OKTO_RED_TREE_min(a, b) okto_red_min2((a), (b))

/* (OpenCL defines min and max as macros: an op name reaches a nested macro only pasted into
 * another name, never on its own, or it would be expanded.) */

/* Tree over the tr values v[lr * tc + lc] of each column lc, into v[lc]. All work items of the
 * group must call it (it holds barriers); the caller has stored its value already. */
#define OKTO_RED_TREE(COMBINE, v, lr, lc, tr, tc)                                                  \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                  \
    for (int s = okto_red_pow2ceil(tr) >> 1; s > 0; s >>= 1) {                                     \
        if ((lr) < s && (lr) + s < (tr))                                                           \
            v[(lr) * (tc) + (lc)] =                                                                \
                COMBINE(v[(lr) * (tc) + (lc)], v[((lr) + s) * (tc) + (lc)]);                       \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    }

#define OKTO_RED_KERNELS(OP)                                                                       \
    __kernel void okto_reduce_rows_##OP(__global const float *x, int xo, __global float *y,        \
                                        int yo, int rows, int cols, int ngroups, float div)        \
    {                                                                                              \
        __local float v[OKTO_RED_MAXL];                                                            \
        int lid = get_local_id(0), l = (int)get_local_size(0);                                     \
        int g = get_group_id(0), r = get_global_id(1);                                             \
        int chunk = (cols + ngroups - 1) / ngroups;                                                \
        int c0 = g * chunk, c1 = min(c0 + chunk, cols);                                            \
        OKTO_RED_DECL_##OP                                                                         \
        if (r < rows) {                                                                            \
            __global const float *row = x + xo + (size_t)r * (size_t)cols;                         \
            for (int c = c0 + lid; c < c1; c += l)                                                 \
                OKTO_RED_ADD_##OP(row[c])                                                          \
        }                                                                                          \
        v[lid] = s_;                                                                               \
        OKTO_RED_TREE(OKTO_RED_TREE_##OP, v, lid, 0, l, 1)                                         \
        if (lid == 0 && r < rows)                                                                  \
            y[yo + r * ngroups + g] = v[0] / div;                                                  \
    }                                                                                              \
                                                                                                   \
    __kernel void okto_reduce_cols_##OP(__global const float *x, int xo, __global float *y,        \
                                        int yo, int rows, int cols, int ngroups, float div)        \
    {                                                                                              \
        __local float v[OKTO_RED_MAXL];                                                            \
        int lc = get_local_id(0), lr = get_local_id(1);                                            \
        int tc = (int)get_local_size(0), tr = (int)get_local_size(1);                              \
        int c = get_global_id(0), g = get_group_id(1);                                             \
        int chunk = (rows + ngroups - 1) / ngroups;                                                \
        int r0 = g * chunk, r1 = min(r0 + chunk, rows);                                            \
        OKTO_RED_DECL_##OP                                                                         \
        if (c < cols)                                                                              \
            for (int r = r0 + lr; r < r1; r += tr)                                                 \
                OKTO_RED_ADD_##OP(x[xo + (size_t)r * (size_t)cols + c])                            \
        v[lr * tc + lc] = s_;                                                                      \
        OKTO_RED_TREE(OKTO_RED_TREE_##OP, v, lr, lc, tr, tc)                                       \
        if (lr == 0 && c < cols)                                                                   \
            y[yo + g * cols + c] = v[lc] / div;                                                    \
    }

OKTO_RED_KERNELS(sum)
OKTO_RED_KERNELS(max)
OKTO_RED_KERNELS(min)

#undef OKTO_RED_KERNELS
#undef OKTO_RED_TREE
#undef OKTO_RED_DECL_sum
#undef OKTO_RED_ADD_sum
#undef OKTO_RED_TREE_sum
#undef OKTO_RED_DECL_max
#undef OKTO_RED_ADD_max
#undef OKTO_RED_TREE_max
#undef OKTO_RED_DECL_min
#undef OKTO_RED_ADD_min
#undef OKTO_RED_TREE_min
