/* cl/attention.cl: fused scaled dot-product attention, forward and backward (FlashAttention-2's
 * split: one pass over key tiles per query row with an online softmax; the backward recomputes
 * the probabilities from the saved logsumexp). The T x T score matrix never exists in global
 * memory: a work-group holds one tile of keys and values (or queries and output gradients) in
 * __local memory and each work item keeps its own row's scores for that tile only.
 *
 * Tensors. q, o, dout, dq are [B, H, Tq, D]; k, v, dk, dv are [B, H, Tk, D]. Each is addressed
 * through its own (offset, stride_b, stride_h, stride_t) in elements with D contiguous, so the
 * host passes views: e.g. from a fused projection [B, T, 3, H, D], q = (off 0, T*3*H*D, D,
 * 3*H*D), k = (off H*D, same strides), v = (off 2*H*D, same strides). lse and delta are float32
 * [B, H, Tq], contiguous from their offset.
 *
 * Semantics. o_i = sum_j softmax_j(scale * q_i . k_j) v_j over the keys visible to query i;
 * lse_i = log sum_j exp(scale * q_i . k_j) (natural log). scale is the host's (1/sqrt(D) by
 * default). causal: key j is visible to query i iff j <= i + (Tk - Tq): the ends of the two
 * sequences aligned (bottom-right, as FlashAttention >= 2.1 and PyTorch's causal_lower_right).
 * For Tq == Tk that is j <= i, PyTorch's is_causal; for Tq != Tk PyTorch's is_causal is
 * top-left aligned instead, so a host that wants PyTorch parity refuses causal with Tq != Tk.
 * A query that sees no key (causal, Tq > Tk, i < Tq - Tk) gets o = 0, lse = -inf and zero
 * gradients. Non-causal: any Tq, Tk >= 1.
 *
 * Preconditions (the host's to refuse): 1 <= D <= OKTO_ATT_DMAX (128), B, H, Tq, Tk >= 1, the
 * views in bounds; the output views (o; dq, dk, dv) overlap neither each other nor an input
 * (input views may overlap: they are only read). One H for q and k/v: sharing k/v across
 * heads (MQA/GQA) would need dk/dv summed over the heads sharing them, which these kernels do
 * not do. Kernels given D out of range return at once and write nothing.
 *
 * Launch, 1-D. attn_fwd, attn_bwd_dq, attn_bwd_dkdv are work-group-per-tile kernels: a tile
 * is L consecutive query rows (fwd, dq) or key rows (dkdv), one per work item, L = the local
 * size, any value 1 .. 256 (64 is what was measured; L = 1 is correct but reloads the key tile
 * for every query). There are B * H * ceil(Tq / L) tiles (dkdv: ceil(Tk / L)); groups loop
 * over them (t += get_num_groups(0)), so any number of groups works: one per tile, or a fixed
 * few (e.g. 4 x compute units). Results depend neither on the number of groups nor on L
 * (each row's sums run in one fixed order). attn_bwd_delta is one item per row (below).
 *
 * __local: OKTO_ATT_LMEM floats (4096 = 16 KB) per group, static. Key/query tiles hold
 * nr = min(64, 4096 / (2 D)) rows in fwd and dq (16 rows at D = 128, 32 at D = 64) and
 * min(64, 4096 / (2 D + 2)) in dkdv. A device with less __local memory builds with
 * -DOKTO_ATT_LMEM=<floats> (smaller tiles, same results up to the forward's rescaling order).
 * Private: 3 x OKTO_ATT_DMAX + 64 floats per item (fwd, dq), 4 x OKTO_ATT_DMAX (dkdv).
 *
 * -DOKTO_ATT_D=<D> (optional) fixes the head dim at compile time: loops get a constant trip
 * count and private arrays shrink to D, which GPUs keep in registers. Such a program must be
 * launched with that D (any other D returns at once). It gives the same bits as the generic
 * build.
 *
 * Determinism: no atomics; every output element is written by one work item that sums in a
 * fixed order (keys in index order in fwd and dq, queries in index order in dkdv).
 * Backward order: attn_bwd_delta, then attn_bwd_dq and attn_bwd_dkdv (independent of each
 * other). accumulate: 0 overwrites dq / dk / dv, 1 adds the gradient to them. */

#ifndef OKTO_ATT_LMEM
#define OKTO_ATT_LMEM 4096
#endif
#define OKTO_ATT_RMAX 64 /* most rows in a tile: the private score array's size */
#ifdef OKTO_ATT_D
#define OKTO_ATT_DMAX OKTO_ATT_D
#define OKTO_ATT_DIM(d) OKTO_ATT_D
#else
#define OKTO_ATT_DMAX 128
#define OKTO_ATT_DIM(d) (d)
#endif

/* element (b, h, t, 0) of a [B, H, T, D] view */
inline long okto_att_at(ulong off, long sb, long sh, long st, ulong b, ulong h, ulong t)
{
    return (long)off + (long)b * sb + (long)h * sh + (long)t * st;
}

/* a . b in a fixed order: four lanes over d = 4m + lane, then the lanes, then the tail */
inline float okto_att_dot(const float *a, __local const float *b, int n)
{
    float4 s4 = (float4)(0.0f);
    int n4 = n >> 2;
    for (int m = 0; m < n4; m++)
        s4 += vload4(m, a) * vload4(m, b);
    float s = (s4.x + s4.y) + (s4.z + s4.w);
    for (int d = n4 << 2; d < n; d++)
        s += a[d] * b[d];
    return s;
}

/* y += c * x over n floats */
inline void okto_att_axpy(float *y, float c, __local const float *x, int n)
{
    int n4 = n >> 2;
    for (int m = 0; m < n4; m++)
        vstore4(vload4(m, y) + c * vload4(m, x), m, y);
    for (int d = n4 << 2; d < n; d++)
        y[d] += c * x[d];
}

/* Keys visible to query i: [0, okto_att_nvis). */
inline ulong okto_att_nvis(ulong i, ulong Tq, ulong Tk, int causal)
{
    if (!causal)
        return Tk;
    long e = (long)i + (long)Tk - (long)Tq + 1;
    return e <= 0 ? 0 : min((ulong)e, Tk);
}

/* A [n, D] tile of rows t0 .. t0 + n of a view into a local array, converted to float; every
 * item of the group calls it. */
inline void okto_att_load(__local float *dst, __global const OKTO_T *x, ulong off, long sb, long sh,
                          long st, ulong b, ulong h, ulong t0, int n, int D)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    long base = okto_att_at(off, sb, sh, st, b, h, t0);
    for (int e = lid; e < n * D; e += L) {
        int j = e / D, d = e - j * D;
        dst[e] = OKTO_LD(x, base + (long)j * st + d);
    }
}

/* Forward. o and lse are overwritten. */
__kernel void okto_attn_fwd(__global const OKTO_T *q, ulong q_off, long q_sb, long q_sh, long q_st,
                            __global const OKTO_T *k, ulong k_off, long k_sb, long k_sh, long k_st,
                            __global const OKTO_T *v, ulong v_off, long v_sb, long v_sh, long v_st,
                            __global OKTO_T *o, ulong o_off, long o_sb, long o_sh, long o_st,
                            __global float *lse, ulong lse_off, ulong B, ulong H, ulong Tq,
                            ulong Tk, int D, float scale, int causal)
{
    __local float lm[OKTO_ATT_LMEM];
    const int dd = OKTO_ATT_DIM(D);
    if (D != dd || D < 1 || D > OKTO_ATT_DMAX)
        return;
    const int lid = get_local_id(0), L = get_local_size(0);
    const int nr = min(OKTO_ATT_RMAX, OKTO_ATT_LMEM / (2 * dd));
    __local float *ks = lm, *vs = lm + nr * dd;
    float qr[OKTO_ATT_DMAX], acc[OKTO_ATT_DMAX], s[OKTO_ATT_RMAX];
    const ulong nqt = (Tq + L - 1) / L;
    /* t is the same for the whole group, so every item reaches the barriers */
    for (ulong t = get_group_id(0); t < B * H * nqt; t += get_num_groups(0)) {
        const ulong bh = t / nqt, b = bh / H, h = bh % H, q0 = (t % nqt) * L, i = q0 + lid;
        const int live = i < Tq;
        const ulong kend = okto_att_nvis(min(q0 + L, Tq) - 1, Tq, Tk, causal); /* the tile's */
        const ulong nvis = live ? okto_att_nvis(i, Tq, Tk, causal) : 0;        /* the row's */
        float m = -INFINITY, l = 0.0f;
        if (live) {
            long qa = okto_att_at(q_off, q_sb, q_sh, q_st, b, h, i);
            for (int d = 0; d < dd; d++) {
                qr[d] = OKTO_LD(q, qa + d) * scale;
                acc[d] = 0.0f;
            }
        }
        for (ulong k0 = 0; k0 < kend; k0 += nr) {
            const int n = (int)min((ulong)nr, kend - k0);
            barrier(CLK_LOCAL_MEM_FENCE); /* everyone is done with the previous tile */
            okto_att_load(ks, k, k_off, k_sb, k_sh, k_st, b, h, k0, n, dd);
            okto_att_load(vs, v, v_off, v_sb, v_sh, v_st, b, h, k0, n, dd);
            barrier(CLK_LOCAL_MEM_FENCE);
            const int nv = nvis > k0 ? (int)min((ulong)n, nvis - k0) : 0;
            if (nv > 0) {
                /* online softmax: rescale what was summed under the old max once per tile */
                float mt = m;
                for (int j = 0; j < nv; j++) {
                    s[j] = okto_att_dot(qr, ks + j * dd, dd);
                    mt = fmax(mt, s[j]);
                }
                const float c = exp(m - mt); /* 0 on the first tile (m = -inf) */
                l *= c;
                for (int d = 0; d < dd; d++)
                    acc[d] *= c;
                for (int j = 0; j < nv; j++) {
                    const float p = exp(s[j] - mt);
                    l += p;
                    okto_att_axpy(acc, p, vs + j * dd, dd);
                }
                m = mt;
            }
        }
        if (live) {
            long oa = okto_att_at(o_off, o_sb, o_sh, o_st, b, h, i);
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            for (int d = 0; d < dd; d++)
                OKTO_ST(o, oa + d, acc[d] * inv);
            lse[lse_off + bh * Tq + i] = l > 0.0f ? m + log(l) : -INFINITY;
        }
    }
}

/* Backward, step 1: delta[b, h, i] = sum_d dout[b, h, i, d] * o[b, h, i, d] (float32,
 * overwritten), the softmax backward's row term (sum_j P dP = dout . o). One item per row
 * (B * H * Tq rows), any local size: the fast launch has global >= rows (padded; items past the
 * end do nothing), and a smaller grid also works (items then loop over rows). */
__kernel void okto_attn_bwd_delta(__global const OKTO_T *o, ulong o_off, long o_sb, long o_sh,
                                  long o_st, __global const OKTO_T *g, ulong g_off, long g_sb,
                                  long g_sh, long g_st, __global float *delta, ulong delta_off,
                                  ulong B, ulong H, ulong Tq, int D)
{
    for (size_t r = get_global_id(0); r < B * H * Tq; r += get_global_size(0)) {
        const ulong bh = r / Tq, i = r % Tq, b = bh / H, h = bh % H;
        long oa = okto_att_at(o_off, o_sb, o_sh, o_st, b, h, i);
        long ga = okto_att_at(g_off, g_sb, g_sh, g_st, b, h, i);
        float s = 0.0f;
        for (int d = 0; d < D; d++)
            s += OKTO_LD(o, oa + d) * OKTO_LD(g, ga + d);
        delta[delta_off + r] = s;
    }
}

/* Backward, dq: a work item per query row, over key tiles (as the forward):
 * dq_i = scale * sum_j P_ij (dout_i . v_j - delta_i) k_j with P_ij = exp(scale q_i . k_j -
 * lse_i). g is dout. */
__kernel void okto_attn_bwd_dq(__global const OKTO_T *q, ulong q_off, long q_sb, long q_sh,
                               long q_st, __global const OKTO_T *k, ulong k_off, long k_sb,
                               long k_sh, long k_st, __global const OKTO_T *v, ulong v_off,
                               long v_sb, long v_sh, long v_st, __global const OKTO_T *g,
                               ulong g_off, long g_sb, long g_sh, long g_st,
                               __global const float *lse, ulong lse_off,
                               __global const float *delta, ulong delta_off, __global OKTO_T *dq,
                               ulong dq_off, long dq_sb, long dq_sh, long dq_st, ulong B, ulong H,
                               ulong Tq, ulong Tk, int D, float scale, int causal, int accumulate)
{
    __local float lm[OKTO_ATT_LMEM];
    const int dd = OKTO_ATT_DIM(D);
    if (D != dd || D < 1 || D > OKTO_ATT_DMAX)
        return;
    const int lid = get_local_id(0), L = get_local_size(0);
    const int nr = min(OKTO_ATT_RMAX, OKTO_ATT_LMEM / (2 * dd));
    __local float *ks = lm, *vs = lm + nr * dd;
    float qr[OKTO_ATT_DMAX], gr[OKTO_ATT_DMAX], acc[OKTO_ATT_DMAX];
    const ulong nqt = (Tq + L - 1) / L;
    for (ulong t = get_group_id(0); t < B * H * nqt; t += get_num_groups(0)) {
        const ulong bh = t / nqt, b = bh / H, h = bh % H, q0 = (t % nqt) * L, i = q0 + lid;
        const int live = i < Tq;
        const ulong kend = okto_att_nvis(min(q0 + L, Tq) - 1, Tq, Tk, causal);
        const ulong nvis = live ? okto_att_nvis(i, Tq, Tk, causal) : 0;
        float li = 0.0f, di = 0.0f;
        if (live) {
            long qa = okto_att_at(q_off, q_sb, q_sh, q_st, b, h, i);
            long ga = okto_att_at(g_off, g_sb, g_sh, g_st, b, h, i);
            for (int d = 0; d < dd; d++) {
                qr[d] = OKTO_LD(q, qa + d) * scale;
                gr[d] = OKTO_LD(g, ga + d);
                acc[d] = 0.0f;
            }
            li = lse[lse_off + bh * Tq + i];
            di = delta[delta_off + bh * Tq + i];
        }
        for (ulong k0 = 0; k0 < kend; k0 += nr) {
            const int n = (int)min((ulong)nr, kend - k0);
            barrier(CLK_LOCAL_MEM_FENCE);
            okto_att_load(ks, k, k_off, k_sb, k_sh, k_st, b, h, k0, n, dd);
            okto_att_load(vs, v, v_off, v_sb, v_sh, v_st, b, h, k0, n, dd);
            barrier(CLK_LOCAL_MEM_FENCE);
            const int nv = nvis > k0 ? (int)min((ulong)n, nvis - k0) : 0;
            for (int j = 0; j < nv; j++) {
                __local const float *kj = ks + j * dd;
                const float p = exp(okto_att_dot(qr, kj, dd) - li);
                const float ds = p * (okto_att_dot(gr, vs + j * dd, dd) - di);
                okto_att_axpy(acc, ds, kj, dd);
            }
        }
        if (live) {
            long a = okto_att_at(dq_off, dq_sb, dq_sh, dq_st, b, h, i);
            for (int d = 0; d < dd; d++) {
                float gv = scale * acc[d];
                OKTO_ST(dq, a + d, accumulate ? OKTO_LD(dq, a + d) + gv : gv);
            }
        }
    }
}

/* Backward, dk and dv: a work item per key row j, over query tiles from the first query that
 * sees the tile (causal): dv_j = sum_i P_ij dout_i, dk_j = scale * sum_i P_ij (dout_i . v_j -
 * delta_i) q_i. Tiles are B * H * ceil(Tk / L). */
__kernel void okto_attn_bwd_dkdv(__global const OKTO_T *q, ulong q_off, long q_sb, long q_sh,
                                 long q_st, __global const OKTO_T *k, ulong k_off, long k_sb,
                                 long k_sh, long k_st, __global const OKTO_T *v, ulong v_off,
                                 long v_sb, long v_sh, long v_st, __global const OKTO_T *g,
                                 ulong g_off, long g_sb, long g_sh, long g_st,
                                 __global const float *lse, ulong lse_off,
                                 __global const float *delta, ulong delta_off, __global OKTO_T *dk,
                                 ulong dk_off, long dk_sb, long dk_sh, long dk_st,
                                 __global OKTO_T *dv, ulong dv_off, long dv_sb, long dv_sh,
                                 long dv_st, ulong B, ulong H, ulong Tq, ulong Tk, int D,
                                 float scale, int causal, int accumulate)
{
    __local float lm[OKTO_ATT_LMEM];
    const int dd = OKTO_ATT_DIM(D);
    if (D != dd || D < 1 || D > OKTO_ATT_DMAX)
        return;
    const int lid = get_local_id(0), L = get_local_size(0);
    const int nr = min(OKTO_ATT_RMAX, OKTO_ATT_LMEM / (2 * dd + 2));
    __local float *qs = lm, *gs = lm + nr * dd, *ls = lm + 2 * nr * dd, *dls = ls + nr;
    float kr[OKTO_ATT_DMAX], vr[OKTO_ATT_DMAX], dka[OKTO_ATT_DMAX], dva[OKTO_ATT_DMAX];
    const long shift = (long)Tk - (long)Tq; /* query i sees key j iff i >= j - shift */
    const ulong nkt = (Tk + L - 1) / L;
    for (ulong t = get_group_id(0); t < B * H * nkt; t += get_num_groups(0)) {
        const ulong bh = t / nkt, b = bh / H, h = bh % H, j0 = (t % nkt) * L, j = j0 + lid;
        const int live = j < Tk;
        /* the first query that sees key j0 (the tile's), and key j (the row's) */
        const long f0 = causal ? (long)j0 - shift : 0, fj = causal ? (long)j - shift : 0;
        const ulong istart = f0 <= 0 ? 0 : (ulong)f0, ifirst = fj <= 0 ? 0 : (ulong)fj;
        if (live) {
            long ka = okto_att_at(k_off, k_sb, k_sh, k_st, b, h, j);
            long va = okto_att_at(v_off, v_sb, v_sh, v_st, b, h, j);
            for (int d = 0; d < dd; d++) {
                kr[d] = OKTO_LD(k, ka + d) * scale;
                vr[d] = OKTO_LD(v, va + d);
                dka[d] = 0.0f;
                dva[d] = 0.0f;
            }
        }
        for (ulong i0 = istart; i0 < Tq; i0 += nr) {
            const int n = (int)min((ulong)nr, Tq - i0);
            barrier(CLK_LOCAL_MEM_FENCE);
            okto_att_load(qs, q, q_off, q_sb, q_sh, q_st, b, h, i0, n, dd);
            okto_att_load(gs, g, g_off, g_sb, g_sh, g_st, b, h, i0, n, dd);
            for (int r = lid; r < n; r += L) {
                ls[r] = lse[lse_off + bh * Tq + i0 + r];
                dls[r] = delta[delta_off + bh * Tq + i0 + r];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            const int r0 = ifirst > i0 ? (int)min((ulong)n, ifirst - i0) : 0;
            for (int r = live ? r0 : n; r < n; r++) {
                __local const float *qi = qs + r * dd, *gi = gs + r * dd;
                /* the dot products first: kr and vr are read while dka / dva are written */
                const float p = exp(okto_att_dot(kr, qi, dd) - ls[r]);
                const float ds = p * (okto_att_dot(vr, gi, dd) - dls[r]);
                okto_att_axpy(dva, p, gi, dd);
                okto_att_axpy(dka, ds, qi, dd);
            }
        }
        if (live) {
            long ka = okto_att_at(dk_off, dk_sb, dk_sh, dk_st, b, h, j);
            long va = okto_att_at(dv_off, dv_sb, dv_sh, dv_st, b, h, j);
            for (int d = 0; d < dd; d++) {
                float gk = scale * dka[d], gv = dva[d];
                OKTO_ST(dk, ka + d, accumulate ? OKTO_LD(dk, ka + d) + gk : gk);
                OKTO_ST(dv, va + d, accumulate ? OKTO_LD(dv, va + d) + gv : gv);
            }
        }
    }
}
