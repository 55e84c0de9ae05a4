/* cl/dropout.cl: dropout over n contiguous elements (OKTO_T) with its mask drawn from
 * okto_philox, so the forward and the backward regenerate the same mask and nothing is saved.
 *
 * p is the probability of DROPPING an element (PyTorch's convention): an element is kept when
 * u >= p, u = okto_u01 of its random word (24 bits: keep probability 1 - p to within 2^-24),
 * and a kept element is scaled by 1 / (1 - p), so E[y] = x. p <= 0 is the identity (y = x
 * exactly, no random numbers drawn); p >= 1 drops everything (y = 0).
 *
 * The mask of element i (0-based in the tensor, the offset not counted) is word i % 4 of
 * okto_philox(key = (seed[0], seed[1]), counter = (q, q >> 32, stream, 0)) with q = i / 4.
 * It depends on (seed, stream, i) only: the same in forward and backward, on every device and
 * launch. The seed is read from a device buffer (two uint32 words, seed_off in uints) because a
 * recorded graph is replayed every step with the host rewriting (or a device task advancing)
 * only that buffer; stream, by value, tells the dropout sites of one graph apart (give each
 * site its own, e.g. its index in the graph), so one seed buffer serves them all.
 *
 * Launch: 1-D, one item per 4 consecutive elements (one Philox call): global >= ceil(n / 4),
 * any local size; items past the end return. */

/* The keep/drop decision of element 4 * q + j for j = 0..3, in a 4-bit mask. */
inline uint okto_dropout_mask4(__global const uint *seed, ulong seed_off, uint stream, ulong q,
                               float p)
{
    uint4 r = okto_philox((uint2)(seed[seed_off], seed[seed_off + 1]),
                          (uint4)((uint)q, (uint)(q >> 32), stream, 0u));
    return (okto_u01(r.x) >= p ? 1u : 0u) | (okto_u01(r.y) >= p ? 2u : 0u) |
           (okto_u01(r.z) >= p ? 4u : 0u) | (okto_u01(r.w) >= p ? 8u : 0u);
}

/* y = mask * x / (1 - p). y may be x. */
__kernel void okto_dropout_fwd(__global const OKTO_T *x, ulong x_off, __global OKTO_T *y,
                               ulong y_off, ulong n, float p, __global const uint *seed,
                               ulong seed_off, uint stream)
{
    ulong q = get_global_id(0), i0 = 4 * q;
    if (i0 >= n)
        return;
    uint m = p > 0.0f ? okto_dropout_mask4(seed, seed_off, stream, q, p) : 15u;
    float scale = p > 0.0f ? (p < 1.0f ? 1.0f / (1.0f - p) : 0.0f) : 1.0f;
    for (uint j = 0; j < 4 && i0 + j < n; j++) {
        float v = OKTO_LD(x, x_off + i0 + j);
        OKTO_ST(y, y_off + i0 + j, (m >> j) & 1u ? v * scale : 0.0f);
    }
}

/* dx (+)= mask * dy / (1 - p), the mask regenerated from (seed, stream). dx may be dy when
 * accumulate = 0. */
__kernel void okto_dropout_bwd(__global const OKTO_T *dy, ulong dy_off, __global OKTO_T *dx,
                               ulong dx_off, ulong n, float p, __global const uint *seed,
                               ulong seed_off, uint stream, int accumulate)
{
    ulong q = get_global_id(0), i0 = 4 * q;
    if (i0 >= n)
        return;
    uint m = p > 0.0f ? okto_dropout_mask4(seed, seed_off, stream, q, p) : 15u;
    float scale = p > 0.0f ? (p < 1.0f ? 1.0f / (1.0f - p) : 0.0f) : 1.0f;
    for (uint j = 0; j < 4 && i0 + j < n; j++) {
        float g = (m >> j) & 1u ? OKTO_LD(dy, dy_off + i0 + j) * scale : 0.0f;
        if (accumulate)
            g += OKTO_LD(dx, dx_off + i0 + j);
        OKTO_ST(dx, dx_off + i0 + j, g);
    }
}

/* seed += 1 as one 64-bit value (seed[0] the low word, seed[1] the high one): a fresh mask for
 * every step of a replayed graph (okto_seed_advance). Item 0 does it; launch any grid. */
__kernel void okto_seed_advance(__global uint *seed, ulong seed_off)
{
    if (get_global_id(0) != 0)
        return;
    uint lo = seed[seed_off] + 1u;
    seed[seed_off] = lo;
    if (lo == 0u)
        seed[seed_off + 1] += 1u;
}
