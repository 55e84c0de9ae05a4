/* cl/reduce.cl: sum, max and min reductions of a rows x cols block (row-major, contiguous from
 * the offset), of any data dtype (OKTO_T in, OKTO_T2 out: cl/common.h), in float. Three shapes of kernel, each in three flavours (sum, max, min; MEAN is a sum
 * divided by the count). Each walks `tasks` (a row chunk, a column tile by a row chunk: the
 * host's logical groups, whose count depends on the shape) with a group-stride loop over a
 * grid that is fixed per device (the host launches every kernel with one global size for its
 * local size, whatever the shape: PoCL 3.1 can release the wrong cached work-group function
 * when one kernel and local size run with two grid widths; see lib/ops/reduce.c). A group's
 * loop count is the same for all its work items, so they all reach every barrier.
 *
 *   okto_reduce_rows_*  reduces along a row (over columns): out is rows x ngroups. Task
 *                       t = r * ngroups + g takes row r's column chunk g (a multiple of 4
 *                       floats long, the last one shorter); the group's L work items stride
 *                       over the chunk's float4s (neighbours read neighbours: coalesced), then
 *                       a tree in local memory combines the L values. local (L, 1).
 *   okto_reduce_cols_*  reduces along a column (over rows): out is ngroups x cols. Each work
 *                       item owns a quad of 4 neighbouring columns (one float4 per row, the
 *                       last quad masked when cols is not a multiple of 4). Task
 *                       t = g * ntiles + tile takes TC quads and row chunk g; TR work items per
 *                       quad stride down the rows, then a tree over the TR float4s of each
 *                       quad. local (TC, TR).
 *   okto_reduce_colt_*  the same tasks with TC = OKTO_RED_TILE, TR = 1, for a CPU: one work
 *                       item per group keeps the tile's float4 sums in private arrays and walks
 *                       the chunk 8 rows at a time, each row across the tile (per quad, the
 *                       same operations in the same order as okto_reduce_cols_* with TR = 1).
 *
 * Loads are OKTO_LD4 (vload4 for floats; any alignment: a part or a row may start anywhere). A work item may
 * read many thousands of elements (on a CPU the host gives each work-group a long stretch:
 * PoCL runs a work item's loop as plain code, one work item after another), so its sum is kept
 * in blocks: 8 float4s at a time are summed pairwise (3 levels, independent loads),
 * and the block's float4 goes into a compensated (Kahan) float4 sum. Work items, groups and
 * parts are then combined by trees, so the error stays a few ulps of the sum of |x| whatever
 * the size, and the compensation (with its isfinite test) costs once per 32 elements, not per
 * element. With blocked = 0 (the host's aggregation tasks, which read few, large partials)
 * every float4 is added compensated: a plain block sum of those would cost an ulp of the
 * result. Any local size up to OKTO_RED_MAXL is correct (the tree handles sizes that are not
 * powers of two); the result is divided by `div` as it is written (1 except for the last step
 * of a MEAN). Max and min propagate NaN. */

/* OKTO_RED_MAXL (the local arrays' size) and OKTO_RED_TILE (quads a task of okto_reduce_colt_*
 * covers) come from the host (lib/ops/reduce.c) as -D options. */

inline float okto_red_max2(float a, float b) { return (a > b || isnan(a)) ? a : b; }
inline float okto_red_min2(float a, float b) { return (a < b || isnan(a)) ? a : b; }
inline float4 okto_red_max4(float4 a, float4 b) { return select(b, a, (a > b) | isnan(a)); }
inline float4 okto_red_min4(float4 a, float4 b) { return select(b, a, (a < b) | isnan(a)); }


/* Per-work-item float4 accumulators, per op: the identity, a combine of two float4s (the block
 * tree), the accumulate of one float4, and the float the four lanes come to.
 * Kahan: k_ holds the low bits lost by the last add (s_ - k_ is the better sum); it is reset
 * where the sum is not finite (inf - inf would otherwise turn an infinite sum into NaN). */
#define OKTO_RED_ID_sum 0.0f
#define OKTO_RED_DECL_sum float4 s_ = 0.0f, k_ = 0.0f
#define OKTO_RED_C4_sum(a, b) ((a) + (b))
#define OKTO_RED_ADD_sum(v)                                                                        \
    do {                                                                                           \
        float4 y_ = (v)-k_, t_ = s_ + y_;                                                          \
        k_ = select((float4)0.0f, (t_ - s_) - y_, isfinite(t_));                                   \
        s_ = t_;                                                                                   \
    } while (0)
#define OKTO_RED_FINAL_sum (((s_.x - k_.x) + (s_.y - k_.y)) + ((s_.z - k_.z) + (s_.w - k_.w)))
#define OKTO_RED_VFINAL_sum (s_ - k_)
#define OKTO_RED_TREE_sum(a, b) ((a) + (b))
#define OKTO_RED_GET_sum(i) float4 s_ = S_[i], k_ = K_[i]
#define OKTO_RED_PUT_sum(i) (S_[i] = s_, K_[i] = k_)

#define OKTO_RED_ID_max (-INFINITY)
#define OKTO_RED_DECL_max float4 s_ = -INFINITY
#define OKTO_RED_C4_max(a, b) okto_red_max4((a), (b))
#define OKTO_RED_ADD_max(v) s_ = okto_red_max4(s_, (v))
#define OKTO_RED_FINAL_max okto_red_max2(okto_red_max2(s_.x, s_.y), okto_red_max2(s_.z, s_.w))
#define OKTO_RED_VFINAL_max s_
#define OKTO_RED_TREE_max(a, b) okto_red_max2((a), (b))
#define OKTO_RED_GET_max(i) float4 s_ = S_[i]
#define OKTO_RED_PUT_max(i) (S_[i] = s_)

#define OKTO_RED_ID_min INFINITY
#define OKTO_RED_DECL_min float4 s_ = INFINITY
#define OKTO_RED_C4_min(a, b) okto_red_min4((a), (b))
#define OKTO_RED_ADD_min(v) s_ = okto_red_min4(s_, (v))
#define OKTO_RED_FINAL_min okto_red_min2(okto_red_min2(s_.x, s_.y), okto_red_min2(s_.z, s_.w))
#define OKTO_RED_VFINAL_min s_
#define OKTO_RED_TREE_min(a, b) okto_red_min2((a), (b))
#define OKTO_RED_GET_min(i) float4 s_ = S_[i]
#define OKTO_RED_PUT_min(i) (S_[i] = s_)

/* (OpenCL defines min and max as macros: an op name reaches a nested macro only pasted into
 * another name, never on its own, or it would be expanded.) */

/* One block: the 8 float4s at base + i * step (i < 8) from p, summed pairwise, accumulated. */
#define OKTO_RED_BLOCK(C4, ADD, LOAD, base, step)                                                  \
    do {                                                                                           \
        float4 a0_ = LOAD(base), a1_ = LOAD((base) + (step)), a2_ = LOAD((base) + 2 * (step)),     \
               a3_ = LOAD((base) + 3 * (step)), a4_ = LOAD((base) + 4 * (step)),                   \
               a5_ = LOAD((base) + 5 * (step)), a6_ = LOAD((base) + 6 * (step)),                   \
               a7_ = LOAD((base) + 7 * (step));                                                    \
        ADD(C4(C4(C4(a0_, a1_), C4(a2_, a3_)), C4(C4(a4_, a5_), C4(a6_, a7_))));                   \
    } while (0)

/* Tree over the tr values v[lr * tc + lc] of each column lc, into v[lc]. All work items of the
 * group must call it (it holds barriers); the caller has stored its value already. */
#define OKTO_RED_TREE(COMBINE, v, lr, lc, tr, tc)                                                  \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                  \
    for (int s = okto_pow2ceil(tr) >> 1; s > 0; s >>= 1) {                                     \
        if ((lr) < s && (lr) + s < (tr))                                                           \
            v[(lr) * (tc) + (lc)] = COMBINE(v[(lr) * (tc) + (lc)], v[((lr) + s) * (tc) + (lc)]);   \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    }

/* Loads for the two kernels: float4 number q of a row chunk p; row r of a column quad p (the
 * masked one reads only the m columns that exist). */
#define OKTO_RED_LOAD_ROW(q) OKTO_LD4((q), p)
#define OKTO_RED_LOAD_COL(r) OKTO_LD4(0, p + (size_t)(r) * (size_t)cols)
#define OKTO_RED_LOAD_TILE(r) OKTO_LD4(i, p + (size_t)(r) * (size_t)cols)

#define OKTO_RED_KERNELS(OP)                                                                       \
    __kernel void okto_reduce_rows_##OP(__global const OKTO_T *x, ulong xo, __global OKTO_T2 *y, \
                                        ulong yo, long rows, long cols, long ngroups, float div,  \
                                        int blocked)                                               \
    {                                                                                              \
        __local float v[OKTO_RED_MAXL];                                                            \
        int lid = get_local_id(0), l = (int)get_local_size(0);                                     \
        long chunk = ((cols + ngroups - 1) / ngroups + 3) & ~3L, ntasks = rows * ngroups;            \
        for (long t = get_group_id(0); t < ntasks; t += (long)get_num_groups(0)) {                   \
            long r = t / ngroups, g = t - r * ngroups;                                              \
            long c0 = min(g * chunk, cols), c1 = min(c0 + chunk, cols);                             \
            __global const OKTO_T *p = x + xo + (size_t)r * (size_t)cols + c0;                      \
            long nq = (c1 - c0) >> 2, q = lid;                                                      \
            OKTO_RED_DECL_##OP;                                                                    \
            for (; blocked && q + 7 * l < nq; q += 8 * l)                                          \
                OKTO_RED_BLOCK(OKTO_RED_C4_##OP, OKTO_RED_ADD_##OP, OKTO_RED_LOAD_ROW, q, l);      \
            for (; q < nq; q += l)                                                                 \
                OKTO_RED_ADD_##OP(OKTO_LD4(q, p));                                                   \
            for (long e = 4 * nq + lid; e < c1 - c0; e += l)                                        \
                OKTO_RED_ADD_##OP(                                                                 \
                    ((float4)(OKTO_LD(p, e), OKTO_RED_ID_##OP, OKTO_RED_ID_##OP, OKTO_RED_ID_##OP)));       \
            v[lid] = OKTO_RED_FINAL_##OP;                                                          \
            OKTO_RED_TREE(OKTO_RED_TREE_##OP, v, lid, 0, l, 1)                                     \
            if (lid == 0)                                                                          \
                OKTO_ST2(y, yo + t, v[0] / div);                                                            \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    __kernel void okto_reduce_cols_##OP(__global const OKTO_T *x, ulong xo, __global OKTO_T2 *y, \
                                        ulong yo, long rows, long cols, long ngroups, float div,  \
                                        int blocked)                                               \
    {                                                                                              \
        __local float4 v[OKTO_RED_MAXL];                                                           \
        int lc = get_local_id(0), lr = get_local_id(1);                                            \
        int tc = (int)get_local_size(0), tr = (int)get_local_size(1);                              \
        long chunk = (rows + ngroups - 1) / ngroups, ntiles = ((cols + 3) / 4 + tc - 1) / tc;       \
        long ntasks = ntiles * ngroups;                                                             \
        for (long t = get_group_id(0); t < ntasks; t += (long)get_num_groups(0)) {                   \
            long g = t / ntiles, c = 4 * ((t - g * ntiles) * tc + lc);                              \
            long r0 = min(g * chunk, rows), r1 = min(r0 + chunk, rows);                  \
            int m = (int)min(cols - c, 4L);       \
            __global const OKTO_T *p = x + xo + c;                                                  \
            OKTO_RED_DECL_##OP;                                                                    \
            if (m == 4) {                                                                          \
                long r = r0 + lr;                                                                   \
                for (; blocked && r + 7 * tr < r1; r += 8 * tr)                                    \
                    OKTO_RED_BLOCK(OKTO_RED_C4_##OP, OKTO_RED_ADD_##OP, OKTO_RED_LOAD_COL, r, tr); \
                for (; r < r1; r += tr)                                                            \
                    OKTO_RED_ADD_##OP(OKTO_RED_LOAD_COL(r));                                       \
            } else if (m > 0) {                                                                    \
                for (long r = r0 + lr; r < r1; r += tr) {                                           \
                    __global const OKTO_T *q = p + (size_t)r * (size_t)cols;                        \
                    float4 a = OKTO_RED_ID_##OP;                                                   \
                    a.x = OKTO_LD(q, 0);                                                                    \
                    if (m > 1)                                                                     \
                        a.y = OKTO_LD(q, 1);                                                                \
                    if (m > 2)                                                                     \
                        a.z = OKTO_LD(q, 2);                                                                \
                    OKTO_RED_ADD_##OP(a);                                                          \
                }                                                                                  \
            }                                                                                      \
            v[lr * tc + lc] = OKTO_RED_VFINAL_##OP;                                                \
            OKTO_RED_TREE(OKTO_RED_C4_##OP, v, lr, lc, tr, tc)                                     \
            if (lr == 0 && m > 0) {                                                                \
                float4 w = v[lc] / div;                                                            \
                __global OKTO_T2 *o = y + yo + g * cols + c;                                         \
                OKTO_ST2(o, 0, w.x);                                                                        \
                if (m > 1)                                                                         \
                    OKTO_ST2(o, 1, w.y);                                                                    \
                if (m > 2)                                                                         \
                    OKTO_ST2(o, 2, w.z);                                                                    \
                if (m > 3)                                                                         \
                    OKTO_ST2(o, 3, w.w);                                                                    \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    __kernel void okto_reduce_colt_##OP(__global const OKTO_T *x, ulong xo, __global OKTO_T2 *y, \
                                        ulong yo, long rows, long cols, long ngroups, float div,  \
                                        int blocked)                                               \
    {                                                                                              \
        float4 S_[OKTO_RED_TILE], K_[OKTO_RED_TILE];                                               \
        long chunk = (rows + ngroups - 1) / ngroups, quads = (cols + 3) / 4;                        \
        long ntiles = (quads + OKTO_RED_TILE - 1) / OKTO_RED_TILE, ntasks = ntiles * ngroups;       \
        for (long t = get_global_id(0); t < ntasks; t += (long)get_global_size(0)) {                 \
            long g = t / ntiles, q0 = (t - g * ntiles) * OKTO_RED_TILE;                             \
            long q1 = min(q0 + OKTO_RED_TILE, quads);                                            \
            int nf = (int)(min(q1, cols >> 2) - q0);                 \
            long r0 = min(g * chunk, rows), r1 = min(r0 + chunk, rows), r = r0;                     \
            __global const OKTO_T *p = x + xo + 4 * q0;                                             \
            for (int i = 0; i < nf; i++) {                                                         \
                OKTO_RED_DECL_##OP;                                                                \
                OKTO_RED_PUT_##OP(i);                                                              \
            }                                                                                      \
            for (; blocked && r + 7 < r1; r += 8)                                                  \
                for (int i = 0; i < nf; i++) {                                                     \
                    OKTO_RED_GET_##OP(i);                                                          \
                    OKTO_RED_BLOCK(OKTO_RED_C4_##OP, OKTO_RED_ADD_##OP, OKTO_RED_LOAD_TILE, r, 1); \
                    OKTO_RED_PUT_##OP(i);                                                          \
                }                                                                                  \
            for (; r < r1; r++)                                                                    \
                for (int i = 0; i < nf; i++) {                                                     \
                    OKTO_RED_GET_##OP(i);                                                          \
                    OKTO_RED_ADD_##OP(OKTO_RED_LOAD_TILE(r));                                      \
                    OKTO_RED_PUT_##OP(i);                                                          \
                }                                                                                  \
            __global OKTO_T2 *o = y + yo + g * cols + 4 * q0;                                        \
            for (int i = 0; i < nf; i++) {                                                         \
                OKTO_RED_GET_##OP(i);                                                              \
                OKTO_ST4_2(OKTO_RED_VFINAL_##OP / div, i, o);                                         \
            }                                                                                      \
            int m = (int)(cols - 4 * (q0 + nf));                                                          \
            if (nf < q1 - q0) { /* the last quad, m < 4 columns */                                 \
                __global const OKTO_T *pm = p + 4 * nf;                                             \
                OKTO_RED_DECL_##OP;                                                                \
                for (long r = r0; r < r1; r++) {                                                    \
                    __global const OKTO_T *q = pm + (size_t)r * (size_t)cols;                       \
                    float4 a = OKTO_RED_ID_##OP;                                                   \
                    a.x = OKTO_LD(q, 0);                                                                    \
                    if (m > 1)                                                                     \
                        a.y = OKTO_LD(q, 1);                                                                \
                    if (m > 2)                                                                     \
                        a.z = OKTO_LD(q, 2);                                                                \
                    OKTO_RED_ADD_##OP(a);                                                          \
                }                                                                                  \
                float4 w = OKTO_RED_VFINAL_##OP / div;                                             \
                OKTO_ST2(o, 4 * nf, w.x);                                                                   \
                if (m > 1)                                                                         \
                    OKTO_ST2(o, 4 * nf + 1, w.y);                                                           \
                if (m > 2)                                                                         \
                    OKTO_ST2(o, 4 * nf + 2, w.z);                                                           \
            }                                                                                      \
        }                                                                                          \
    }

OKTO_RED_KERNELS(sum)
OKTO_RED_KERNELS(max)
OKTO_RED_KERNELS(min)

#undef OKTO_RED_KERNELS
#undef OKTO_RED_TILE
#undef OKTO_RED_TREE
#undef OKTO_RED_BLOCK
#undef OKTO_RED_LOAD_ROW
#undef OKTO_RED_LOAD_COL
#undef OKTO_RED_LOAD_TILE
#undef OKTO_RED_ID_sum
#undef OKTO_RED_DECL_sum
#undef OKTO_RED_C4_sum
#undef OKTO_RED_ADD_sum
#undef OKTO_RED_FINAL_sum
#undef OKTO_RED_VFINAL_sum
#undef OKTO_RED_TREE_sum
#undef OKTO_RED_GET_sum
#undef OKTO_RED_PUT_sum
#undef OKTO_RED_ID_max
#undef OKTO_RED_DECL_max
#undef OKTO_RED_C4_max
#undef OKTO_RED_ADD_max
#undef OKTO_RED_FINAL_max
#undef OKTO_RED_VFINAL_max
#undef OKTO_RED_TREE_max
#undef OKTO_RED_GET_max
#undef OKTO_RED_PUT_max
#undef OKTO_RED_ID_min
#undef OKTO_RED_DECL_min
#undef OKTO_RED_C4_min
#undef OKTO_RED_ADD_min
#undef OKTO_RED_FINAL_min
#undef OKTO_RED_VFINAL_min
#undef OKTO_RED_TREE_min
#undef OKTO_RED_GET_min
#undef OKTO_RED_PUT_min
