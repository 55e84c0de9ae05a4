/* cl/conv.cl: the pieces of conv2d around the GEMM (im2col + GEMM; the host runs the GEMM with
 * CLBlast): im2col, col2im for the input gradient, a per-channel bias add and its gradient.
 *
 * Geometry (groups = 1). x is NCHW [N, C, H, W], contiguous from its offset; the kernel window
 * is KH x KW with stride (sh, sw), zero padding (ph, pw) and dilation (dh, dw); output rows
 * and columns OH x OW come from the host, normally OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1
 * (floor; likewise OW). Preconditions (the host's to refuse): C, H, W, KH, KW, sh, sw, dh, dw
 * >= 1, ph, pw >= 0, OH, OW >= 1; in particular a kernel larger than the padded input
 * (H + 2 ph < dh (KH - 1) + 1) gives OH < 1 and must be refused before launch. Any OH, OW >= 1
 * is computed consistently (window taps outside the input read the zero padding), so a
 * ceil-mode OH works too.
 *
 * The column matrix. Row r = (c KH + kh) KW + kw of K = C KH KW rows; column (n, p) with
 * p = oh OW + ow; element cols[r * ld + n * nstride + p]. Two layouts, one kernel:
 *   per image  [N, K, OH OW]: ld = OH OW, nstride = K OH OW. out[n] = W[Cout, K] x cols[n] is
 *              then the NCHW output image n, so ONE strided-batched GEMM (CLBlast
 *              GemmStridedBatched: A = W, stride 0; B = cols, stride K OH OW; C = y, stride
 *              Cout OH OW) writes y in NCHW directly. Backward: dcols[n] = W^T x dy[n] (same
 *              batched call), dW = sum_n dy[n] x cols[n]^T (a GEMM per n with beta = 1, in n
 *              order: deterministic).
 *   one GEMM   [K, N OH OW]: ld = N OH OW, nstride = OH OW. W x cols is [Cout, N OH OW], i.e.
 *              CNHW (the host permutes, or keeps CNHW: bias_add and bias_grad take (sn, sc)
 *              strides for either); dW = dy_CNHW x cols^T is a single GEMM.
 * cols has the data dtype (OKTO_T); CLBlast has f32 and f16 GEMMs, no bf16 (the host converts).
 *
 * Launch. im2col, col2im, bias_add, bias_grad_reduce are one work item per row of contiguous
 * memory (rows named at each kernel), 1-D, any local size: the fast launch has global >= rows
 * (padded: items past the end do nothing); a smaller grid also works (items loop over rows).
 * Per-element index arithmetic is kept out of the inner loops (a division per element costs
 * ~10-30x on PoCL). No __local memory. */

#define OKTO_CONV_TW 32 /* col2im's tile of input columns, summed in private floats */

inline int okto_conv_floordiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* cols (layout above) from x. Rows: (r, n, oh) for r < K, n < N, oh < OH, in that order, so the
 * one-GEMM layout is written front to back; each item writes OW contiguous elements. cols is
 * overwritten. */
__kernel void okto_im2col(__global const OKTO_T *x, ulong x_off, __global OKTO_T *cols,
                          ulong cols_off, ulong N, int C, int H, int W, int KH, int KW, int sh,
                          int sw, int ph, int pw, int dh, int dw, int OH, int OW, ulong ld,
                          ulong nstride)
{
    const ulong rows = (ulong)C * KH * KW * N * OH;
    for (size_t row = get_global_id(0); row < rows; row += get_global_size(0)) {
        const int oh = (int)(row % OH);
        const ulong rn = row / OH, n = rn % N;
        const int r = (int)(rn / N), kw = r % KW, kh = r / KW % KH, c = r / (KW * KH);
        const int ih = oh * sh - ph + kh * dh;
        const long out = (long)cols_off + (long)(r * ld + n * nstride) + (long)oh * OW;
        if (ih < 0 || ih >= H) {
            for (int ow = 0; ow < OW; ow++)
                OKTO_ST(cols, out + ow, 0.0f);
            continue;
        }
        const long in = (long)x_off + (long)(((n * C + c) * H + ih) * W);
        int iw = kw * dw - pw; /* for ow = 0; + sw per column */
        for (int ow = 0; ow < OW; ow++, iw += sw)
            OKTO_ST(cols, out + ow, iw >= 0 && iw < W ? OKTO_LD(x, in + iw) : 0.0f);
    }
}

/* dx from the column gradient dcols (same layout): dx[n, c, ih, iw] = sum of the entries of
 * dcols that im2col would have read from x[n, c, ih, iw], gathered in (kh, kw) order, so every
 * pixel sums in one fixed order (no atomics). Rows: (n, c, ih), W contiguous pixels each, taken
 * in tiles of OKTO_CONV_TW summed in float. accumulate: 0 dx = grad, 1 dx += grad. */
__kernel void okto_col2im(__global const OKTO_T *cols, ulong cols_off, __global OKTO_T *dx,
                          ulong dx_off, ulong N, int C, int H, int W, int KH, int KW, int sh,
                          int sw, int ph, int pw, int dh, int dw, int OH, int OW, ulong ld,
                          ulong nstride, int accumulate)
{
    const ulong rows = N * C * H;
    for (size_t row = get_global_id(0); row < rows; row += get_global_size(0)) {
        const int ih = (int)(row % H);
        const ulong nc = row / H, n = nc / C;
        const int c = (int)(nc % C);
        const long out = (long)dx_off + (long)(row * W);
        for (int iw0 = 0; iw0 < W; iw0 += OKTO_CONV_TW) {
            const int tw = min(OKTO_CONV_TW, W - iw0);
            float acc[OKTO_CONV_TW];
            for (int u = 0; u < tw; u++)
                acc[u] = 0.0f;
            for (int kh = 0; kh < KH; kh++) {
                const int t = ih + ph - kh * dh; /* = oh * sh for the output row that reads ih */
                if (t < 0 || t % sh)
                    continue;
                const int oh = t / sh;
                if (oh >= OH)
                    continue;
                for (int kw = 0; kw < KW; kw++) {
                    /* the output columns whose tap kw lands in the tile: iw = ow sw + base */
                    const int base = kw * dw - pw;
                    const int lo = max(0, okto_conv_floordiv(iw0 - base + sw - 1, sw));
                    const int hi = min(OW - 1, okto_conv_floordiv(iw0 + tw - 1 - base, sw));
                    const long src = (long)cols_off +
                                     (long)((ulong)((c * KH + kh) * KW + kw) * ld + n * nstride) +
                                     (long)oh * OW;
                    int u = lo * sw + base - iw0;
                    for (int ow = lo; ow <= hi; ow++, u += sw)
                        acc[u] += OKTO_LD(cols, src + ow);
                }
            }
            for (int u = 0; u < tw; u++) {
                const long i = out + iw0 + u;
                OKTO_ST(dx, i, accumulate ? OKTO_LD(dx, i) + acc[u] : acc[u]);
            }
        }
    }
}

/* y = x + bias[c] over planes of HW contiguous elements (has_bias 0: y = x, a plain copy):
 * plane (n, c) starts at n xsn + c xsc in x (from x_off) and at n ysn + c ysc in y (from y_off).
 * NCHW: sn = C HW, sc = HW; CNHW, the one-GEMM output: sn = HW, sc = N HW; so with x CNHW and
 * y NCHW it is the one-GEMM path's permute (and bias) in one pass. y may be x only with the
 * same offset and strides (in place). Rows: the N C planes, (n, c) with c fastest. */
__kernel void okto_bias_add(__global const OKTO_T *x, ulong x_off, __global const OKTO_T *bias,
                            ulong bias_off, __global OKTO_T *y, ulong y_off, ulong N, ulong C,
                            ulong HW, long xsn, long xsc, long ysn, long ysc, int has_bias)
{
    for (size_t row = get_global_id(0); row < N * C; row += get_global_size(0)) {
        const ulong n = row / C, c = row % C;
        const long px = (long)x_off + (long)n * xsn + (long)c * xsc;
        const long py = (long)y_off + (long)n * ysn + (long)c * ysc;
        const float b = has_bias ? OKTO_LD(bias, bias_off + c) : 0.0f;
        for (ulong i = 0; i < HW; i++)
            OKTO_ST(y, py + (long)i, OKTO_LD(x, px + (long)i) + b);
    }
}

/* Bias gradient, step 1: part[part_off + c N + n] = sum of plane (n, c) of dy (planes as in
 * bias_add), float32, overwritten. One item per plane (rows: the N C planes, g = c N + n), a
 * Kahan sum in pixel order: no __local memory and no barrier (a work-group per plane with a
 * tree in __local memory measured ~10x slower on PoCL, whose barriers split the kernel into
 * per-item loops), and the bits depend on nothing but the data. */
__kernel void okto_bias_grad_partial(__global const OKTO_T *dy, ulong dy_off, __global float *part,
                                     ulong part_off, ulong N, ulong C, ulong HW, long sn, long sc)
{
    for (size_t g = get_global_id(0); g < N * C; g += get_global_size(0)) {
        const ulong c = g / N, n = g % N;
        const long p = (long)dy_off + (long)n * sn + (long)c * sc;
        float s = 0.0f, k = 0.0f;
        for (ulong i = 0; i < HW; i++) {
            float y = OKTO_LD(dy, p + (long)i) - k, t = s + y;
            k = (t - s) - y;
            s = t;
        }
        part[part_off + g] = s;
    }
}

/* Bias gradient, step 2: db[c] = sum over n of part[c N + n], in n order (Kahan). One item per
 * channel (rows: C). accumulate: 0 db = grad, 1 db += grad. */
__kernel void okto_bias_grad_reduce(__global const float *part, ulong part_off, __global OKTO_T *db,
                                    ulong db_off, ulong N, ulong C, int accumulate)
{
    for (size_t c = get_global_id(0); c < C; c += get_global_size(0)) {
        float s = 0.0f, k = 0.0f;
        for (ulong n = 0; n < N; n++) {
            float y = part[part_off + c * N + n] - k, t = s + y;
            k = (t - s) - y;
            s = t;
        }
        OKTO_ST(db, db_off + c, accumulate ? OKTO_LD(db, db_off + c) + s : s);
    }
}
