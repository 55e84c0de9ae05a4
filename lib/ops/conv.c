/* lib/ops/conv.c: okto_conv2d and okto_conv2d_backward: 2-D convolution over NCHW (groups = 1)
 * as im2col + GEMM (kernels in cl/conv.cl, the GEMMs through okto_matmul's batched path).
 *
 * Forward. cols [N, K, OH OW] (K = C KH KW) holds each image's patches (cl/conv.cl's per-image
 * layout), so y[n] = W [Cout, K] x cols[n] is image n of the NCHW output: one batched matmul
 * with W broadcast over the images (one CLBlastSgemmStridedBatched call, W's stride 0) writes y
 * as it is laid out, and the bias is added in place. The alternative, one GEMM over every image
 * at once (cols [K, N OH OW], W x cols = [Cout, N OH OW] in CNHW, then a transposing copy into
 * NCHW) measured slower on the 2-core PoCL machine (batch 32, 32 x 32 images, 3 x 3, pad 1, 32
 * -> 32 channels, forward, best of 9 under a shared load: 194-232 ms batched against 343-456 ms
 * one GEMM; 16 -> 32: 124-165 against 167-218 ms): a [32, 288] x [288, 32768] product has too
 * few rows for row panels, so it goes split-K, while the batched call splits by images.
 *
 * Small images (OH OW <= OKTO__CONV_ONE_P) take the one-GEMM layout instead: cols [K, N OH OW],
 * y_CNHW = W x cols (one matmul), then one pass permutes it into NCHW and adds the bias; the
 * backward permutes dy to CNHW once and runs dcols = W^T dy_CNHW and dW = dy_CNHW cols^T as one
 * matmul each (no per-image partials, no reduction over n).
 *
 * Backward. dcols[n] = W^T x dy[n] (one batched matmul, W broadcast), then col2im gathers dx
 * (each input pixel sums what reaches it in (kh, kw) order: no atomics); dW: the per-image
 * products dy[n] x cols[n]^T into a [N, Cout, K] float32 temporary (one batched matmul over
 * the recomputed columns) summed over n by okto_reduce (a fixed tree: the same bits every run);
 * dbias: per-plane sums (an item per plane), then one item per channel sums them in n
 * order.
 *
 * Dtypes. Everything runs in float32: f16 and bf16 inputs are converted into float temporaries
 * first and results converted back (CLBlast has no bf16 GEMM, and PoCL no cl_khr_fp16 for its
 * f16 one), so conv.cl is one program whatever the dtype. Layouts: any strides; the kernels
 * take contiguous NCHW, so other views are copied (or computed into a temporary and copied
 * back).
 *
 * Parts. im2col, the bias add and col2im split by ranges of images across the compute lanes
 * (each part writes its images' columns or pixels only), and the batched matmuls split by
 * image ranges themselves; the bias gradient is a reduction over images, one task. */
#include "op.h"

#include <string.h>

static okto_status conv_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_CONV2D = {.backward = conv_grad,
    .name = "conv2d",
    .family = "conv",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "NCHW of any strides (copied to contiguous for im2col); im2col + batched matmul",
    .dtype_note = "f16/bf16 converted to f32, computed in f32, converted back",
    .partitioned = 1};
const okto__op_desc okto__desc_CONV2D_BIAS = {.name = "conv2d.bias",
                                              .family = "conv",
                                              .dtypes = OKTO__DT_FLOATS,
                                              .layouts = "contiguous NCHW (internal)",
                                              .partitioned = 1};
const okto__op_desc okto__desc_CONV2D_BWD = {
    .name = "conv2d.backward",
    .family = "conv",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "as conv2d; dx through col2im, dw through batched matmul + reduce",
    .dtype_note = "f16/bf16 converted to f32, computed in f32, converted back",
    .partitioned = 1};
const okto__op_desc okto__desc_CONV2D_BWD_BIAS = {
    .name = "conv2d.backward.bias",
    .family = "conv",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "as conv2d; per-plane sums, then per channel in image order",
    .dtype_note = "f16/bf16 converted to f32, computed in f32, converted back",
    .partitioned = 0};

typedef struct conv_geom {
    size_t N, C, H, W, Cout, KH, KW, OH, OW;
    int sh, sw, ph, pw, dh, dw;
    int one; /* the one-GEMM column layout [K, N OH OW] (small images), else per image */
} conv_geom;

/* Images of at most this many output pixels take the one-GEMM layout: with a few pixels per
 * image the per-image products are tiny ([Cout, K] x [K, 16] for 4 x 4) and a batched call
 * spends its time per product; one [Cout, K] x [K, N OH OW] product (and dW as one product
 * over every image, no reduction over n) measured faster on PoCL for the digits CNN (batch 64,
 * 8 x 8 then 4 x 4 images, 16 and 32 channels). Larger images keep the batched call (above). */
#define OKTO__CONV_ONE_P 64

static size_t conv_k(const conv_geom *c) { return c->C * c->KH * c->KW; }
static size_t conv_p(const conv_geom *c) { return c->OH * c->OW; }

/* ---- argument checks --------------------------------------------------------------------------- */

/* Output size along one dimension: floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1; 0 when
 * the window is larger than the padded input. */
static size_t out_size(size_t in, size_t k, int stride, int pad, int dil)
{
    size_t span = (size_t)dil * (k - 1) + 1, padded = in + 2 * (size_t)pad;
    return padded < span ? 0 : (padded - span) / (size_t)stride + 1;
}

static okto_status check_geom(okto__rec *r, const okto_tensor *x, const okto_tensor *w, int sh,
                              int sw, int ph, int pw, int dh, int dw, conv_geom *c)
{
    if (x->rank != 4 || w->rank != 4)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "x is %s, w is %s: both must be 4-D (x [N, C, H, W], w [Cout, C, "
                              "KH, KW])",
                              OKTO__DESC(x), OKTO__DESC(w));
    if (w->dtype != x->dtype)
        return okto__rec_fail(r, OKTO_EINVAL, "x is %s, w is %s: dtypes differ", OKTO__DESC(x),
                              OKTO__DESC(w));
    if (w->shape[1] != x->shape[1])
        return okto__rec_fail(r, OKTO_EINVAL,
                              "x is %s but w is %s: w's dimension 1 must be x's channels (groups "
                              "= 1)",
                              OKTO__DESC(x), OKTO__DESC(w));
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || ph < 0 || pw < 0)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "stride (%d, %d) and dilation (%d, %d) must be >= 1, padding (%d, "
                              "%d) >= 0",
                              sh, sw, dh, dw, ph, pw);
    *c = (conv_geom){x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0],
                     w->shape[2], w->shape[3], 0,           0,           sh,
                     sw,          ph,          pw,          dh,          dw, 0};
    c->OH = out_size(c->H, c->KH, sh, ph, dh);
    c->OW = out_size(c->W, c->KW, sw, pw, dw);
    c->one = c->OH * c->OW <= OKTO__CONV_ONE_P;
    if (!c->OH || !c->OW)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "w is %s: its %zux%zu window (dilation %d, %d: %zux%zu) is larger "
                              "than x %s padded by (%d, %d) (%zux%zu)",
                              OKTO__DESC(w), c->KH, c->KW, dh, dw, (size_t)dh * (c->KH - 1) + 1,
                              (size_t)dw * (c->KW - 1) + 1, OKTO__DESC(x), ph, pw,
                              c->H + 2 * (size_t)ph, c->W + 2 * (size_t)pw);
    /* the kernels index planes with ints */
    if (c->H * c->W >= (1u << 31) || conv_k(c) >= (1u << 31) || conv_p(c) >= (1u << 31))
        return okto__rec_fail(r, OKTO_ENOTSUP, "x is %s, w is %s: planes of 2^31 elements or more",
                              OKTO__DESC(x), OKTO__DESC(w));
    return OKTO_OK;
}

static okto_status check_y(okto__rec *r, const okto_tensor *y, const char *name,
                           const okto_tensor *x, const conv_geom *c)
{
    if (y->rank != 4 || y->dtype != x->dtype || y->shape[0] != c->N || y->shape[1] != c->Cout ||
        y->shape[2] != c->OH || y->shape[3] != c->OW)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s; with x %s it must be %s[%zu,%zu,%zu,%zu]",
                              name, OKTO__DESC(y), OKTO__DESC(x), okto_dtype_name(x->dtype), c->N,
                              c->Cout, c->OH, c->OW);
    return OKTO_OK;
}

static okto_status check_bias(okto__rec *r, const okto_tensor *b, const char *name,
                              const okto_tensor *x, const conv_geom *c)
{
    if (b->dtype != x->dtype || okto__numel(b) != c->Cout || b->shape[b->rank - 1] != c->Cout)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s; it must be %s[%zu] (w's dimension 0)",
                              name, OKTO__DESC(b), okto_dtype_name(x->dtype), c->Cout);
    return OKTO_OK;
}

/* ---- float32 working copies -------------------------------------------------------------------- */

/* t as contiguous float32: itself, a contiguous copy, or a converted one. */
static okto_status as_f32(okto__rec *r, const okto_tensor *t, okto_tensor *out)
{
    if (t->dtype == OKTO_F32)
        return okto__rec_layout(r, t, 0, out);
    okto_status s = okto__rec_temp(r, OKTO_F32, t->rank, t->shape, out);
    return s == OKTO_OK ? okto_cast(r->g, out, t) : s;
}

/* out = v, or out += v with acc: v is a float32 temporary of out's shape. */
static okto_status store(okto__rec *r, okto_tensor *out, const okto_tensor *v, int acc)
{
    if (!acc)
        return okto_cast(r->g, out, v);
    if (out->dtype == OKTO_F32)
        return okto_axpy(r->g, out, 1.0f, v);
    okto_tensor t;
    okto_status s = okto__rec_temp(r, OKTO_F32, out->rank, out->shape, &t);
    if (s == OKTO_OK)
        s = okto_cast(r->g, &t, out);
    if (s == OKTO_OK)
        s = okto_axpy(r->g, &t, 1.0f, v);
    return s == OKTO_OK ? okto_cast(r->g, out, &t) : s;
}

/* a contiguous view of t in another shape (t contiguous) */
static void reshaped(const okto_tensor *t, int rank, const size_t *shape, okto_tensor *out)
{
    *out = *t;
    out->heap = 0;
    out->rank = rank;
    int64_t st = 1;
    for (int i = OKTO_MAX_RANK - 1; i >= 0; i--) {
        out->shape[i] = i < rank ? shape[i] : 1;
        out->stride[i] = i < rank ? st : 0;
        if (i < rank)
            st *= (int64_t)shape[i];
    }
}

/* ---- tasks ------------------------------------------------------------------------------------- */

static void geom_args(okto__tb *t, const conv_geom *c, size_t n)
{
    okto__tb_arg_ulong(t, n);
    okto__tb_arg_int(t, (int)c->C);
    okto__tb_arg_int(t, (int)c->H);
    okto__tb_arg_int(t, (int)c->W);
    okto__tb_arg_int(t, (int)c->KH);
    okto__tb_arg_int(t, (int)c->KW);
    okto__tb_arg_int(t, c->sh);
    okto__tb_arg_int(t, c->sw);
    okto__tb_arg_int(t, c->ph);
    okto__tb_arg_int(t, c->pw);
    okto__tb_arg_int(t, c->dh);
    okto__tb_arg_int(t, c->dw);
    okto__tb_arg_int(t, (int)c->OH);
    okto__tb_arg_int(t, (int)c->OW);
    /* ld and nstride: the one-GEMM layout [K, N, P] or the per-image one [N, K, P] */
    okto__tb_arg_ulong(t, c->one ? c->N * conv_p(c) : conv_p(c));
    okto__tb_arg_ulong(t, c->one ? conv_p(c) : conv_k(c) * conv_p(c));
}

static uint64_t geom_key(const conv_geom *c, size_t n)
{
    return (uint64_t)c->one << 63 ^ (uint64_t)n << 48 ^ (uint64_t)c->C << 36 ^ (uint64_t)c->H << 24 ^ (uint64_t)c->W << 12 ^
           (uint64_t)c->KH << 8 ^ (uint64_t)c->KW << 4 ^ (uint64_t)(c->sh * 7 + c->ph * 3 + c->dh);
}

static int image_parts(const okto__rec *r, const conv_geom *c, double work)
{
    return okto__rec_parts(r, c->N, work);
}

/* cols [N, K, P] from x32 (contiguous f32 NCHW), by ranges of images. */
static okto_status record_im2col(okto__rec *r, const conv_geom *c, const okto_tensor *x,
                                 const okto_tensor *cols)
{
    size_t K = conv_k(c), P = conv_p(c);
    int nparts = image_parts(r, c, (double)(c->N * K * P));
    okto_status s = OKTO_OK;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t n0 = okto__part_row(c->N, p, nparts), n = okto__part_row(c->N, p + 1, nparts) - n0;
        okto_tensor xp, cp;
        okto__view_slice(x, 0, n0, n, &xp);
        okto__view_slice(cols, c->one, n0, n, &cp);
        okto__tb t;
        okto__tb_init(&t, r, OKTO__OP_CONV2D);
        okto__tb_kernel(&t, "conv", OKTO_F32, NULL, "okto_im2col");
        okto__tb_arg_tensor(&t, &xp);
        okto__tb_arg_tensor(&t, &cp);
        geom_args(&t, c, n);
        okto__tb_range_1d(&t, K * n * c->OH);
        okto__tb_access(&t, &xp, OKTO__R);
        okto__tb_access(&t, &cp, OKTO__W);
        okto__tb_cost(&t, 0, 4.0 * (double)(n * K * P) * 2, geom_key(c, n));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    return s;
}

/* y = x + bias per channel (bias NULL: y = x), by ranges of images: x and y contiguous f32,
 * each NCHW ([N, Cout, P]) or CNHW ([Cout, N, P], cnhw bit 0 for x, bit 1 for y); in place
 * when x is y with one layout. */
static okto_status record_bias_add(okto__rec *r, const conv_geom *c, const okto_tensor *x,
                                   const okto_tensor *bias, const okto_tensor *y, int cnhw)
{
    size_t P = conv_p(c);
    int nparts = image_parts(r, c, (double)(c->N * c->Cout * P));
    int64_t nchw[2] = {(int64_t)(c->Cout * P), (int64_t)P}, cn[2] = {(int64_t)P,
                                                                      (int64_t)(c->N * P)};
    const int64_t *xs = cnhw & 1 ? cn : nchw, *ys = cnhw & 2 ? cn : nchw;
    okto_status s = OKTO_OK;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t n0 = okto__part_row(c->N, p, nparts), n = okto__part_row(c->N, p + 1, nparts) - n0;
        okto_tensor xp, yp;
        okto__view_slice(x, cnhw & 1, n0, n, &xp);
        okto__view_slice(y, (cnhw & 2) >> 1, n0, n, &yp);
        okto__tb t;
        okto__tb_init(&t, r, OKTO__OP_CONV2D_BIAS);
        okto__tb_kernel(&t, "conv", OKTO_F32, NULL, "okto_bias_add");
        okto__tb_arg_tensor(&t, &xp);
        okto__tb_arg_tensor(&t, bias ? bias : &xp);
        okto__tb_arg_tensor(&t, &yp);
        okto__tb_arg_ulong(&t, n);
        okto__tb_arg_ulong(&t, c->Cout);
        okto__tb_arg_ulong(&t, P);
        okto__tb_arg_long(&t, xs[0]);
        okto__tb_arg_long(&t, xs[1]);
        okto__tb_arg_long(&t, ys[0]);
        okto__tb_arg_long(&t, ys[1]);
        okto__tb_arg_int(&t, bias != NULL);
        okto__tb_range_1d(&t, n * c->Cout);
        int inplace = x->st == y->st && x->offset == y->offset;
        if (inplace) {
            okto__tb_access(&t, &yp, OKTO__RW);
        } else {
            okto__tb_access(&t, &xp, OKTO__R);
            okto__tb_access(&t, &yp, OKTO__W);
        }
        if (bias)
            okto__tb_access(&t, bias, OKTO__R);
        double e = (double)(n * c->Cout * P);
        okto__tb_cost(&t, e, 8.0 * e,
                      (uint64_t)cnhw << 62 ^ (uint64_t)n << 40 ^ (uint64_t)c->Cout << 20 ^ P);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    return s;
}

/* dx (contiguous f32 NCHW) from dcols [N, K, P], by ranges of images. */
static okto_status record_col2im(okto__rec *r, const conv_geom *c, const okto_tensor *dcols,
                                 const okto_tensor *dx, int acc)
{
    size_t K = conv_k(c), P = conv_p(c);
    int nparts = image_parts(r, c, (double)(c->N * K * P));
    okto_status s = OKTO_OK;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t n0 = okto__part_row(c->N, p, nparts), n = okto__part_row(c->N, p + 1, nparts) - n0;
        okto_tensor cp, xp;
        okto__view_slice(dcols, c->one, n0, n, &cp);
        okto__view_slice(dx, 0, n0, n, &xp);
        okto__tb t;
        okto__tb_init(&t, r, OKTO__OP_CONV2D_BWD);
        okto__tb_kernel(&t, "conv", OKTO_F32, NULL, "okto_col2im");
        okto__tb_arg_tensor(&t, &cp);
        okto__tb_arg_tensor(&t, &xp);
        geom_args(&t, c, n);
        okto__tb_arg_int(&t, acc);
        okto__tb_range_1d(&t, n * c->C * c->H);
        okto__tb_access(&t, &cp, OKTO__R);
        okto__tb_access(&t, &xp, acc ? OKTO__RW : OKTO__W);
        okto__tb_cost(&t, (double)(n * K * P), 4.0 * (double)(n * K * P + n * c->C * c->H * c->W),
                      geom_key(c, n) ^ (uint64_t)acc);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    return s;
}

/* db (f32, contiguous) = sum of dy (contiguous f32 NCHW) over images and pixels, per channel:
 * per-plane sums into a [Cout, N] temporary, then per channel in image order. */
static okto_status record_bias_grad(okto__rec *r, const conv_geom *c, const okto_tensor *dy,
                                    const okto_tensor *db, int acc)
{
    size_t P = conv_p(c);
    okto_tensor part;
    okto_status s = okto__rec_temp(r, OKTO_F32, 2, (size_t[]){c->Cout, c->N}, &part);
    if (s != OKTO_OK)
        return s;
    okto__tb t;
    okto__tb_init(&t, r, OKTO__OP_CONV2D_BWD_BIAS);
    okto__tb_kernel(&t, "conv", OKTO_F32, NULL, "okto_bias_grad_partial");
    okto__tb_arg_tensor(&t, dy);
    okto__tb_arg_tensor(&t, &part);
    okto__tb_arg_ulong(&t, c->N);
    okto__tb_arg_ulong(&t, c->Cout);
    okto__tb_arg_ulong(&t, P);
    okto__tb_arg_long(&t, (int64_t)(c->Cout * P));
    okto__tb_arg_long(&t, (int64_t)P);
    okto__tb_range_1d(&t, c->N * c->Cout);
    okto__tb_access(&t, dy, OKTO__R);
    okto__tb_access(&t, &part, OKTO__W);
    double e = (double)(c->N * c->Cout * P);
    okto__tb_cost(&t, e, 4.0 * e, (uint64_t)c->N << 40 ^ (uint64_t)c->Cout << 20 ^ P);
    if ((s = okto__tb_commit(&t)) != OKTO_OK)
        return s;
    okto__tb_init(&t, r, OKTO__OP_CONV2D_BWD_BIAS);
    okto__tb_kernel(&t, "conv", OKTO_F32, NULL, "okto_bias_grad_reduce");
    okto__tb_arg_tensor(&t, &part);
    okto__tb_arg_tensor(&t, db);
    okto__tb_arg_ulong(&t, c->N);
    okto__tb_arg_ulong(&t, c->Cout);
    okto__tb_arg_int(&t, acc);
    okto__tb_range_1d(&t, c->Cout);
    okto__tb_access(&t, &part, OKTO__R);
    okto__tb_access(&t, db, acc ? OKTO__RW : OKTO__W);
    okto__tb_cost(&t, (double)(c->N * c->Cout), 4.0 * (double)(c->N * c->Cout + c->Cout),
                  (uint64_t)c->N << 20 ^ c->Cout ^ (uint64_t)acc << 60);
    return okto__tb_commit(&t);
}

/* ---- the public calls -------------------------------------------------------------------------- */

okto_status okto_conv2d(okto_graph *g, okto_tensor *y, const okto_tensor *x, const okto_tensor *w,
                        const okto_tensor *bias, int stride_h, int stride_w, int pad_h, int pad_w,
                        int dil_h, int dil_w)
{
    okto__rec r;
    conv_geom c;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_CONV2D, "okto_conv2d");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, y, "y", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, w, "w", OKTO__DT_FLOATS);
    if (s == OKTO_OK && bias)
        s = okto__rec_tensor(&r, bias, "bias", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_geom(&r, x, w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, &c);
    if (s == OKTO_OK)
        s = check_y(&r, y, "y", x, &c);
    if (s == OKTO_OK && bias)
        s = check_bias(&r, bias, "bias", x, &c);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, y, "y", x, "x", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, y, "y", w, "w", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, y, "y", bias, "bias", 0);
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    size_t K = conv_k(&c), P = conv_p(&c);
    okto_tensor x32, w32, b32, cols, y32, w2, y3, c3;
    s = as_f32(&r, x, &x32);
    if (s == OKTO_OK)
        s = as_f32(&r, w, &w32);
    if (s == OKTO_OK && bias)
        s = as_f32(&r, bias, &b32);
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_F32, 3,
                           c.one ? (size_t[]){K, c.N, P} : (size_t[]){c.N, K, P}, &cols);
    int direct = y->dtype == OKTO_F32 && okto__contiguous(y);
    if (s == OKTO_OK) {
        if (direct)
            y32 = *y, y32.heap = 0;
        else
            s = okto__rec_temp(&r, OKTO_F32, 4, y->shape, &y32);
    }
    if (s == OKTO_OK)
        s = record_im2col(&r, &c, &x32, &cols);
    if (s == OKTO_OK && c.one) {
        /* ycn [Cout, N P] = W cols, then permuted into NCHW with the bias added */
        okto_tensor ycn, y2;
        s = okto__rec_temp(&r, OKTO_F32, 3, (size_t[]){c.Cout, c.N, P}, &ycn);
        if (s == OKTO_OK) {
            reshaped(&w32, 2, (size_t[]){c.Cout, K}, &w2);
            reshaped(&cols, 2, (size_t[]){K, c.N * P}, &c3);
            reshaped(&ycn, 2, (size_t[]){c.Cout, c.N * P}, &y2);
            s = okto_matmul(g, &y2, &w2, &c3, 0);
        }
        if (s == OKTO_OK)
            s = record_bias_add(&r, &c, &ycn, bias ? &b32 : NULL, &y32, 1);
    } else if (s == OKTO_OK) {
        reshaped(&w32, 2, (size_t[]){c.Cout, K}, &w2);
        reshaped(&y32, 3, (size_t[]){c.N, c.Cout, P}, &y3);
        c3 = cols;
        s = okto_matmul(g, &y3, &w2, &c3, 0);
        if (s == OKTO_OK && bias)
            s = record_bias_add(&r, &c, &y32, &b32, &y32, 0);
    }
    if (s == OKTO_OK && !direct)
        s = okto_cast(g, y, &y32);
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_CONV2D, .nin = 3, .nout = 1,
                                                 .t = {x, w, bias, y}, .saved = 3u,
                                                 .overwrite = 1,
                                                 .i = {stride_h, stride_w, pad_h, pad_w, dil_h,
                                                       dil_w}});
    return okto__rec_end(&r, s);
}

static okto_status conv_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dx = okto__grad_in(gr, 0), *dw = okto__grad_in(gr, 1), *db = okto__grad_in(gr, 2);
    const int *i = n->i;
    if (!dx && !dw && !db)
        return OKTO_OK;
    return okto_conv2d_backward(okto__grad_graph(gr), dx, dw, db, okto__grad_out(gr, 0), &n->t[0],
                                &n->t[1], i[0], i[1], i[2], i[3], i[4], i[5], OKTO_ACCUMULATE);
}

okto_status okto_conv2d_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dw,
                                 okto_tensor *dbias, const okto_tensor *dy, const okto_tensor *x,
                                 const okto_tensor *w, int stride_h, int stride_w, int pad_h,
                                 int pad_w, int dil_h, int dil_w, unsigned flags)
{
    okto__rec r;
    conv_geom c;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_CONV2D_BWD, "okto_conv2d_backward");
    if (s == OKTO_OK && (flags & ~(unsigned)OKTO_ACCUMULATE))
        s = okto__rec_fail(&r, OKTO_EINVAL, "unknown flags 0x%x (OKTO_ACCUMULATE is the one)",
                           flags & ~(unsigned)OKTO_ACCUMULATE);
    if (s == OKTO_OK && !dx && !dw && !dbias)
        s = okto__rec_fail(&r, OKTO_EINVAL, "dx, dw and dbias are all NULL");
    okto_tensor *outs[3] = {dx, dw, dbias};
    const char *onames[3] = {"dx", "dw", "dbias"};
    for (int i = 0; i < 3 && s == OKTO_OK; i++)
        if (outs[i])
            s = okto__rec_output(&r, outs[i], onames[i], OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dy, "dy", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, w, "w", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_geom(&r, x, w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, &c);
    if (s == OKTO_OK)
        s = check_y(&r, dy, "dy", x, &c);
    if (s == OKTO_OK && dx && (!okto__same_shape(dx, x) || dx->dtype != x->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL, "x is %s but dx is %s", OKTO__DESC(x), OKTO__DESC(dx));
    if (s == OKTO_OK && dw && (!okto__same_shape(dw, w) || dw->dtype != w->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL, "w is %s but dw is %s", OKTO__DESC(w), OKTO__DESC(dw));
    if (s == OKTO_OK && dbias)
        s = check_bias(&r, dbias, "dbias", x, &c);
    const okto_tensor *ins[3] = {dy, x, w};
    const char *inames[3] = {"dy", "x", "w"};
    for (int i = 0; i < 3 && s == OKTO_OK; i++) {
        for (int j = 0; j < 3 && s == OKTO_OK; j++)
            s = okto__rec_no_alias(&r, outs[i], onames[i], ins[j], inames[j], 0);
        for (int j = i + 1; j < 3 && s == OKTO_OK; j++)
            s = okto__rec_no_alias(&r, outs[i], onames[i], outs[j], onames[j], 0);
    }
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    size_t K = conv_k(&c), P = conv_p(&c);
    okto_tensor dy32, dy3, dycn;
    s = as_f32(&r, dy, &dy32);
    if (s == OKTO_OK && c.one && (dx || dw)) {
        /* the one-GEMM layout: dy permuted to [Cout, N P] once for both products */
        s = okto__rec_temp(&r, OKTO_F32, 3, (size_t[]){c.Cout, c.N, P}, &dycn);
        if (s == OKTO_OK)
            s = record_bias_add(&r, &c, &dy32, NULL, &dycn, 2);
        if (s == OKTO_OK)
            reshaped(&dycn, 2, (size_t[]){c.Cout, c.N * P}, &dy3);
    } else if (s == OKTO_OK) {
        reshaped(&dy32, 3, (size_t[]){c.N, c.Cout, P}, &dy3);
    }
    const size_t *cshape = c.one ? (size_t[]){K, c.N, P} : (size_t[]){c.N, K, P};
    if (s == OKTO_OK && dx) {
        /* dcols[n] = W^T dy[n], then col2im */
        okto_tensor w32, w2, dcols, dx32;
        s = as_f32(&r, w, &w32);
        if (s == OKTO_OK)
            s = okto__rec_temp(&r, OKTO_F32, 3, cshape, &dcols);
        if (s == OKTO_OK) {
            okto_tensor dc = dcols;
            if (c.one)
                reshaped(&dcols, 2, (size_t[]){K, c.N * P}, &dc);
            reshaped(&w32, 2, (size_t[]){c.Cout, K}, &w2);
            s = okto_matmul(g, &dc, &w2, &dy3, OKTO_TRANS_A);
        }
        int direct = dx->dtype == OKTO_F32 && okto__contiguous(dx);
        if (s == OKTO_OK) {
            if (direct)
                dx32 = *dx, dx32.heap = 0;
            else
                s = okto__rec_temp(&r, OKTO_F32, 4, dx->shape, &dx32);
        }
        if (s == OKTO_OK)
            s = record_col2im(&r, &c, &dcols, &dx32, direct && acc);
        if (s == OKTO_OK && !direct)
            s = store(&r, dx, &dx32, acc);
    }
    if (s == OKTO_OK && dw) {
        /* per image: the products dy[n] cols[n]^T summed over n; one-GEMM layout: dW =
         * dy_CNHW [Cout, N P] x cols^T, one product over every image (accumulating in place) */
        okto_tensor x32, cols, partial, dw32, dw2, c2;
        s = as_f32(&r, x, &x32);
        if (s == OKTO_OK)
            s = okto__rec_temp(&r, OKTO_F32, 3, cshape, &cols);
        if (s == OKTO_OK)
            s = record_im2col(&r, &c, &x32, &cols);
        int direct = (!acc || c.one) && dw->dtype == OKTO_F32 && okto__contiguous(dw);
        if (s == OKTO_OK) {
            if (direct)
                dw32 = *dw, dw32.heap = 0;
            else
                s = okto__rec_temp(&r, OKTO_F32, 4, dw->shape, &dw32);
        }
        if (s == OKTO_OK)
            reshaped(&dw32, 2, (size_t[]){c.Cout, K}, &dw2);
        if (s == OKTO_OK && c.one) {
            reshaped(&cols, 2, (size_t[]){K, c.N * P}, &c2);
            s = okto_matmul(g, &dw2, &dy3, &c2,
                            OKTO_TRANS_B | (direct && acc ? OKTO_ACCUMULATE : 0u));
        } else if (s == OKTO_OK) {
            s = okto__rec_temp(&r, OKTO_F32, 3, (size_t[]){c.N, c.Cout, K}, &partial);
            if (s == OKTO_OK)
                s = okto_matmul(g, &partial, &dy3, &cols, OKTO_TRANS_B);
            if (s == OKTO_OK)
                s = okto_reduce(g, &dw2, &partial, OKTO_REDUCE_SUM, 0);
        }
        if (s == OKTO_OK && !direct)
            s = store(&r, dw, &dw32, acc);
    }
    if (s == OKTO_OK && dbias) {
        int direct = dbias->dtype == OKTO_F32 && okto__contiguous(dbias);
        okto_tensor db32;
        if (direct)
            db32 = *dbias, db32.heap = 0;
        else
            s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){c.Cout}, &db32);
        if (s == OKTO_OK)
            s = record_bias_grad(&r, &c, &dy32, &db32, direct && acc);
        if (s == OKTO_OK && !direct) {
            okto_tensor v;
            reshaped(&db32, dbias->rank, dbias->shape, &v);
            s = store(&r, dbias, &v, acc);
        }
    }
    return okto__rec_end(&r, s);
}
