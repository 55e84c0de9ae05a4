/* cl/pool.cl: 2-D pooling over NCHW: max pool (saving the argmax) and its backward, average
 * pool and its backward, global average pooling and its backward.
 *
 * Geometry. x and dx are [NC, H, W] (N C planes, contiguous from the offset), y and dy
 * [NC, OH, OW]; window KH x KW, stride (sh, sw), padding (ph, pw), dilation (dh, dw) for max
 * pool (average pool has none, as in PyTorch). OH and OW come from the host: floor mode
 * OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1, or PyTorch's ceil mode (ceil, less one when the
 * last window would start in the right padding); the kernels compute any OH, OW >= 1
 * consistently. Preconditions (the host's to refuse): all sizes >= 1, ph, pw >= 0, padding at
 * most half the (effective) window, ph <= (dh (KH - 1) + 1) / 2 (PyTorch's rule: every window
 * then holds an input pixel), OH, OW >= 1 (a window larger than the padded input has no
 * output), H W < 2^31 (argmax is an int plane index). A window with no input pixel (only
 * possible past those rules) gives max -inf with argmax -1, average 0.
 *
 * Launch. All but gap_fwd are one work item per row of contiguous memory (rows named at each
 * kernel), 1-D, any local size: the fast launch has global >= rows (padded; items past the end
 * do nothing); a smaller grid also works (items loop over rows). Per-element index arithmetic is
 * kept out of the inner loops. The backward kernels are gathers (each input pixel sums what
 * reaches it in (kh, kw) order, in tiles of OKTO_POOL_TW pixels summed in private floats):
 * deterministic, no atomics. gap_fwd is a work-group per plane. __local: gap_fwd's 256 floats. */

#define OKTO_POOL_TW 32
#define OKTO_POOL_MAXL 256

inline int okto_pool_floordiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Max pool forward: y = the window's max (padding is -inf), argmax = ih W + iw of the first max
 * in (kh, kw) order; a NaN wins over numbers and a later NaN over an earlier one (PyTorch's
 * rule). y and argmax (int32 [NC, OH, OW] from arg_off) are overwritten. Rows: (nc, oh). */
__kernel void okto_maxpool2d_fwd(__global const OKTO_T *x, ulong x_off, __global OKTO_T *y,
                                 ulong y_off, __global int *argmax, ulong arg_off, ulong NC, int H,
                                 int W, int OH, int OW, int KH, int KW, int sh, int sw, int ph,
                                 int pw, int dh, int dw)
{
    for (size_t row = get_global_id(0); row < NC * OH; row += get_global_size(0)) {
        const int oh = (int)(row % OH);
        const long in = (long)x_off + (long)(row / OH) * H * W, out = (long)(row * OW);
        const int ih0 = oh * sh - ph;
        for (int ow = 0; ow < OW; ow++) {
            const int iw0 = ow * sw - pw;
            float best = -INFINITY;
            int bi = -1;
            for (int kh = 0; kh < KH; kh++) {
                const int ih = ih0 + kh * dh;
                if (ih < 0 || ih >= H)
                    continue;
                for (int kw = 0; kw < KW; kw++) {
                    const int iw = iw0 + kw * dw;
                    if (iw < 0 || iw >= W)
                        continue;
                    const float v = OKTO_LD(x, in + ih * W + iw);
                    if (bi < 0 || v > best || isnan(v)) {
                        best = v;
                        bi = ih * W + iw;
                    }
                }
            }
            OKTO_ST(y, (long)y_off + out + ow, best);
            argmax[arg_off + out + ow] = bi;
        }
    }
}

/* Max pool backward: dx[nc, ih, iw] = sum of dy over the windows whose argmax is (ih, iw).
 * Rows: (nc, ih). accumulate: 0 dx = grad, 1 dx += grad. */
__kernel void okto_maxpool2d_bwd(__global const OKTO_T *dy, ulong dy_off,
                                 __global const int *argmax, ulong arg_off, __global OKTO_T *dx,
                                 ulong dx_off, ulong NC, int H, int W, int OH, int OW, int KH,
                                 int KW, int sh, int sw, int ph, int pw, int dh, int dw,
                                 int accumulate)
{
    for (size_t row = get_global_id(0); row < NC * H; row += get_global_size(0)) {
        const int ih = (int)(row % H);
        const ulong nc = row / H;
        const long out = (long)dx_off + (long)(row * W);
        for (int iw0 = 0; iw0 < W; iw0 += OKTO_POOL_TW) {
            const int tw = min(OKTO_POOL_TW, W - iw0);
            float acc[OKTO_POOL_TW];
            for (int u = 0; u < tw; u++)
                acc[u] = 0.0f;
            for (int kh = 0; kh < KH; kh++) {
                const int t = ih + ph - kh * dh; /* = oh sh for the window row whose tap kh is ih */
                if (t < 0 || t % sh)
                    continue;
                const int oh = t / sh;
                if (oh >= OH)
                    continue;
                const long orow = (long)((nc * OH + oh) * OW);
                for (int kw = 0; kw < KW; kw++) {
                    /* windows ow whose tap kw lands in the tile: iw = ow sw + base */
                    const int base = kw * dw - pw;
                    const int lo = max(0, okto_pool_floordiv(iw0 - base + sw - 1, sw));
                    const int hi = min(OW - 1, okto_pool_floordiv(iw0 + tw - 1 - base, sw));
                    int u = lo * sw + base - iw0;
                    for (int ow = lo; ow <= hi; ow++, u += sw)
                        if (argmax[arg_off + orow + ow] == ih * W + iw0 + u)
                            acc[u] += OKTO_LD(dy, (long)dy_off + orow + ow);
                }
            }
            for (int u = 0; u < tw; u++) {
                const long i = out + iw0 + u;
                OKTO_ST(dx, i, accumulate ? OKTO_LD(dx, i) + acc[u] : acc[u]);
            }
        }
    }
}

/* Average pool window bounds, PyTorch's: [s, e) clipped to the padded input first (that length
 * is the count_include_pad divisor), then to the input (the other divisor). */
inline void okto_pool_span(int o, int stride, int pad, int k, int in, int *s0, int *e0, int *len)
{
    int s = o * stride - pad, e = min(s + k, in + pad);
    *len = e - s;
    *s0 = max(s, 0);
    *e0 = min(e, in);
}

/* Average pool forward: y = sum of the window's input pixels / divisor, the divisor being the
 * window's size within the padded input when count_include_pad (PyTorch's default: padding
 * counts as zeros, but a ceil-mode window's part past the padding does not), else the number of
 * input pixels in it. No divisor_override. y is overwritten. Rows: (nc, oh). */
__kernel void okto_avgpool2d_fwd(__global const OKTO_T *x, ulong x_off, __global OKTO_T *y,
                                 ulong y_off, ulong NC, int H, int W, int OH, int OW, int KH,
                                 int KW, int sh, int sw, int ph, int pw, int count_include_pad)
{
    for (size_t row = get_global_id(0); row < NC * OH; row += get_global_size(0)) {
        const int oh = (int)(row % OH);
        const long in = (long)x_off + (long)(row / OH) * H * W,
                   out = (long)y_off + (long)(row * OW);
        int hs, he, hl;
        okto_pool_span(oh, sh, ph, KH, H, &hs, &he, &hl);
        for (int ow = 0; ow < OW; ow++) {
            int ws, we, wl;
            okto_pool_span(ow, sw, pw, KW, W, &ws, &we, &wl);
            float s = 0.0f;
            for (int ih = hs; ih < he; ih++)
                for (int iw = ws; iw < we; iw++)
                    s += OKTO_LD(x, in + ih * W + iw);
            const int div = count_include_pad ? hl * wl : (he - hs) * (we - ws);
            OKTO_ST(y, out + ow, div > 0 ? s / (float)div : 0.0f);
        }
    }
}

/* Average pool backward: dx[nc, ih, iw] = sum over the windows holding (ih, iw) of dy / that
 * window's divisor (as the forward). Rows: (nc, ih). accumulate: 0 dx = grad, 1 dx += grad. */
__kernel void okto_avgpool2d_bwd(__global const OKTO_T *dy, ulong dy_off, __global OKTO_T *dx,
                                 ulong dx_off, ulong NC, int H, int W, int OH, int OW, int KH,
                                 int KW, int sh, int sw, int ph, int pw, int count_include_pad,
                                 int accumulate)
{
    for (size_t row = get_global_id(0); row < NC * H; row += get_global_size(0)) {
        const int ih = (int)(row % H);
        const ulong nc = row / H;
        const long out = (long)dx_off + (long)(row * W);
        for (int iw0 = 0; iw0 < W; iw0 += OKTO_POOL_TW) {
            const int tw = min(OKTO_POOL_TW, W - iw0);
            float acc[OKTO_POOL_TW];
            for (int u = 0; u < tw; u++)
                acc[u] = 0.0f;
            for (int kh = 0; kh < KH; kh++) {
                const int t = ih + ph - kh;
                if (t < 0 || t % sh)
                    continue;
                const int oh = t / sh;
                if (oh >= OH)
                    continue;
                int hs, he, hl;
                okto_pool_span(oh, sh, ph, KH, H, &hs, &he, &hl);
                const long orow = (long)dy_off + (long)((nc * OH + oh) * OW);
                for (int kw = 0; kw < KW; kw++) {
                    const int base = kw - pw;
                    const int lo = max(0, okto_pool_floordiv(iw0 - base + sw - 1, sw));
                    const int hi = min(OW - 1, okto_pool_floordiv(iw0 + tw - 1 - base, sw));
                    int u = lo * sw + base - iw0;
                    for (int ow = lo; ow <= hi; ow++, u += sw) {
                        int ws, we, wl;
                        okto_pool_span(ow, sw, pw, KW, W, &ws, &we, &wl);
                        const int div = count_include_pad ? hl * wl : (he - hs) * (we - ws);
                        acc[u] += OKTO_LD(dy, orow + ow) / (float)div;
                    }
                }
            }
            for (int u = 0; u < tw; u++) {
                const long i = out + iw0 + u;
                OKTO_ST(dx, i, accumulate ? OKTO_LD(dx, i) + acc[u] : acc[u]);
            }
        }
    }
}

/* Global average pooling forward: y[nc] = mean of plane nc (HW contiguous elements), y [NC]
 * (= [N, C, 1, 1]) overwritten. A work-group per plane (groups loop over the NC planes, so any
 * number of groups); local size L a power of two 1 .. 256: items stride over the plane by L,
 * each with a Kahan sum, then a tree in __local memory. Bits depend on L, not on the number
 * of groups. */
__kernel void okto_gap_fwd(__global const OKTO_T *x, ulong x_off, __global OKTO_T *y, ulong y_off,
                           ulong NC, ulong HW)
{
    __local float red[OKTO_POOL_MAXL];
    const int lid = get_local_id(0), L = get_local_size(0);
    if (L > OKTO_POOL_MAXL)
        return;
    for (size_t r = get_group_id(0); r < NC; r += get_num_groups(0)) {
        const long p = (long)x_off + (long)(r * HW);
        float s = 0.0f, k = 0.0f;
        for (ulong i = lid; i < HW; i += L) {
            float v = OKTO_LD(x, p + (long)i) - k, t = s + v;
            k = (t - s) - v;
            s = t;
        }
        red[lid] = s;
        s = okto_tree_sum(red, lid, L);
        if (lid == 0)
            OKTO_ST(y, y_off + r, s / (float)HW);
    }
}

/* Global average pooling backward: dx[nc, i] = dy[nc] / HW. Rows: the NC planes.
 * accumulate: 0 dx = grad, 1 dx += grad. */
__kernel void okto_gap_bwd(__global const OKTO_T *dy, ulong dy_off, __global OKTO_T *dx,
                           ulong dx_off, ulong NC, ulong HW, int accumulate)
{
    for (size_t r = get_global_id(0); r < NC; r += get_global_size(0)) {
        const float g = OKTO_LD(dy, dy_off + r) / (float)HW;
        const long p = (long)dx_off + (long)(r * HW);
        for (ulong i = 0; i < HW; i++)
            OKTO_ST(dx, p + (long)i, accumulate ? OKTO_LD(dx, p + (long)i) + g : g);
    }
}
