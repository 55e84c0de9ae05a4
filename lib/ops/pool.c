/* lib/ops/pool.c: 2-D pooling over NCHW: okto_max_pool2d (with the argmax its backward takes),
 * okto_avg_pool2d and okto_global_avg_pool2d, and their backward ops. Kernels in cl/pool.cl.
 *
 * Semantics are PyTorch's defaults: floor mode (OH = (H + 2 ph - KH) / sh + 1), padding at most
 * half the window (so every window holds an input pixel), max pool's padding -inf and the first
 * maximum in (kh, kw) order as its argmax (a NaN wins, as in PyTorch), average pool's
 * count_include_pad = true (the divisor is the window's size within the padded input: padding
 * counts as zeros). Global average pooling is its own op (the mean of each plane, the kernel a
 * work-group per plane) rather than okto_reduce over two axes, which would take two passes and
 * a temporary.
 *
 * The backward kernels gather (each input pixel sums what reaches it in window order): no
 * atomics, the same bits every run. Layouts: the kernels take contiguous [N C, H, W] planes;
 * other views are copied first, outputs of other strides computed into a temporary and copied
 * back. Every float dtype, stored as it is and computed in float. Parts: ranges of planes
 * across the compute lanes (each part writes its planes only). */
#include "op.h"

#define OKTO__POOL_L 64 /* gap_fwd's work-group: fixed, since its bits depend on it */

static okto_status pool_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_MAXPOOL2D = {.backward = pool_grad,
    .name = "max_pool2d",
    .family = "pool",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "NCHW of any strides (copied to contiguous); argmax i32, optional",
    .partitioned = 1};
const okto__op_desc okto__desc_MAXPOOL2D_BWD = {.name = "max_pool2d.backward",
                                                .family = "pool",
                                                .dtypes = OKTO__DT_FLOATS,
                                                .layouts = "as max_pool2d; argmax i32",
                                                .partitioned = 1};
const okto__op_desc okto__desc_AVGPOOL2D = {.backward = pool_grad,
    .name = "avg_pool2d",
    .family = "pool",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "NCHW of any strides (copied to contiguous); count_include_pad as PyTorch",
    .partitioned = 1};
const okto__op_desc okto__desc_AVGPOOL2D_BWD = {.name = "avg_pool2d.backward",
                                                .family = "pool",
                                                .dtypes = OKTO__DT_FLOATS,
                                                .layouts = "as avg_pool2d",
                                                .partitioned = 1};
const okto__op_desc okto__desc_GAP2D = {.backward = pool_grad,.name = "global_avg_pool2d",
                                        .family = "pool",
                                        .dtypes = OKTO__DT_FLOATS,
                                        .layouts = "NCHW of any strides (copied); y [N, C, 1, 1]",
                                        .partitioned = 1};
const okto__op_desc okto__desc_GAP2D_BWD = {.name = "global_avg_pool2d.backward",
                                            .family = "pool",
                                            .dtypes = OKTO__DT_FLOATS,
                                            .layouts = "as global_avg_pool2d",
                                            .partitioned = 1};

typedef struct pool_geom {
    size_t NC, H, W, OH, OW;
    int KH, KW, sh, sw, ph, pw;
} pool_geom;

/* ---- argument checks --------------------------------------------------------------------------- */

static okto_status check_flags(okto__rec *r, unsigned flags)
{
    if (flags & ~(unsigned)OKTO_ACCUMULATE)
        return okto__rec_fail(r, OKTO_EINVAL, "unknown flags 0x%x (OKTO_ACCUMULATE is the one)",
                              flags & ~(unsigned)OKTO_ACCUMULATE);
    return OKTO_OK;
}

/* The window on x [N, C, H, W] (x is the input, or dx in a backward) and the output shape. */
static okto_status check_window(okto__rec *r, const okto_tensor *x, const char *xname, int kh,
                                int kw, int sh, int sw, int ph, int pw, pool_geom *p)
{
    if (x->rank != 4)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s; it must be 4-D [N, C, H, W]", xname,
                              OKTO__DESC(x));
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "window %dx%d and stride (%d, %d) must be >= 1, padding (%d, %d) "
                              ">= 0",
                              kh, kw, sh, sw, ph, pw);
    if (2 * ph > kh || 2 * pw > kw)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "padding (%d, %d) is over half the %dx%d window (PyTorch's rule: "
                              "every window must hold an input pixel)",
                              ph, pw, kh, kw);
    *p = (pool_geom){
        x->shape[0] * x->shape[1], x->shape[2], x->shape[3], 0, 0, kh, kw, sh, sw, ph, pw};
    size_t ph2 = p->H + 2 * (size_t)ph, pw2 = p->W + 2 * (size_t)pw;
    if (ph2 < (size_t)kh || pw2 < (size_t)kw)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "the %dx%d window is larger than %s %s padded by (%d, %d) "
                              "(%zux%zu)",
                              kh, kw, xname, OKTO__DESC(x), ph, pw, ph2, pw2);
    p->OH = (ph2 - (size_t)kh) / (size_t)sh + 1;
    p->OW = (pw2 - (size_t)kw) / (size_t)sw + 1;
    if (p->H * p->W >= (1u << 31) || p->OH * p->OW >= (1u << 31))
        return okto__rec_fail(r, OKTO_ENOTSUP, "%s is %s: planes of 2^31 elements or more", xname,
                              OKTO__DESC(x));
    return OKTO_OK;
}

/* y [N, C, OH, OW] of x's dtype (dt: the dtype it must have) */
static okto_status check_out(okto__rec *r, const okto_tensor *y, const char *name,
                             const okto_tensor *x, const char *xname, okto_dtype dt,
                             const pool_geom *p)
{
    if (y->rank != 4 || y->dtype != dt || y->shape[0] != x->shape[0] ||
        y->shape[1] != x->shape[1] || y->shape[2] != p->OH || y->shape[3] != p->OW)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s; with %s %s it must be %s[%zu,%zu,%zu,%zu]",
                              name, OKTO__DESC(y), xname, OKTO__DESC(x), okto_dtype_name(dt),
                              x->shape[0], x->shape[1], p->OH, p->OW);
    return OKTO_OK;
}

/* ---- layouts ----------------------------------------------------------------------------------- */

/* An output as the kernels write it: itself when contiguous, else a temporary (filled from it
 * when accumulated into) that output_end copies back. */
static okto_status output_begin(okto__rec *r, okto_tensor *t, int acc, okto_tensor *out)
{
    if (t && okto__contiguous(t)) {
        *out = *t;
        out->heap = 0;
        return OKTO_OK;
    }
    okto_status s = okto__rec_temp(r, t->dtype, t->rank, t->shape, out);
    if (s == OKTO_OK && acc)
        s = okto_copy(r->g, out, t);
    return s;
}

static okto_status output_end(okto__rec *r, okto_tensor *t, const okto_tensor *v)
{
    return okto__same_view(t, v) ? OKTO_OK : okto_copy(r->g, t, v);
}

/* ---- the window kernels ------------------------------------------------------------------------ */

enum { P_MAX_FWD, P_MAX_BWD, P_AVG_FWD, P_AVG_BWD };

/* One of the four window kernels over planes, split into ranges of planes. in and out are
 * contiguous [NC, ., .] views (x, y; or dy, dx); arg is argmax (max pool) or NULL. */
static okto_status record_window(okto__rec *r, okto__op op, int kind, const pool_geom *p,
                                 const okto_tensor *in, const okto_tensor *out,
                                 const okto_tensor *arg, int acc)
{
    static const char *const names[] = {"okto_maxpool2d_fwd", "okto_maxpool2d_bwd",
                                        "okto_avgpool2d_fwd", "okto_avgpool2d_bwd"};
    int bwd = kind == P_MAX_BWD || kind == P_AVG_BWD;
    size_t rows_per_plane = bwd ? p->H : p->OH;
    double work = (double)p->NC * (double)(p->OH * p->OW) * (double)(p->KH * p->KW);
    int nparts = okto__rec_parts(r, p->NC, work);
    okto_tensor in3, out3, arg3;
    size_t in_hw = bwd ? p->OH * p->OW : p->H * p->W, out_hw = bwd ? p->H * p->W : p->OH * p->OW;
    /* the planes as [NC, hw] so parts are row ranges */
    okto__view_flat(in, 0, p->NC * in_hw, &in3);
    okto__view_flat(out, 0, p->NC * out_hw, &out3);
    if (arg)
        okto__view_flat(arg, 0, p->NC * p->OH * p->OW, &arg3);
    okto_status s = OKTO_OK;
    for (int q = 0; q < nparts && s == OKTO_OK; q++) {
        size_t c0 = okto__part_row(p->NC, q, nparts),
               nc = okto__part_row(p->NC, q + 1, nparts) - c0;
        okto_tensor ip, op_, ap;
        okto__view_flat(&in3, c0 * in_hw, (c0 + nc) * in_hw, &ip);
        okto__view_flat(&out3, c0 * out_hw, (c0 + nc) * out_hw, &op_);
        if (arg)
            okto__view_flat(&arg3, c0 * p->OH * p->OW, (c0 + nc) * p->OH * p->OW, &ap);
        okto__tb t;
        okto__tb_init(&t, r, op);
        okto__tb_kernel(&t, "pool", in->dtype, NULL, names[kind]);
        okto__tb_arg_tensor(&t, &ip);
        if (kind == P_MAX_BWD)
            okto__tb_arg_tensor(&t, &ap);
        okto__tb_arg_tensor(&t, &op_);
        if (kind == P_MAX_FWD)
            okto__tb_arg_tensor(&t, &ap);
        okto__tb_arg_ulong(&t, nc);
        okto__tb_arg_int(&t, (int)p->H);
        okto__tb_arg_int(&t, (int)p->W);
        okto__tb_arg_int(&t, (int)p->OH);
        okto__tb_arg_int(&t, (int)p->OW);
        okto__tb_arg_int(&t, p->KH);
        okto__tb_arg_int(&t, p->KW);
        okto__tb_arg_int(&t, p->sh);
        okto__tb_arg_int(&t, p->sw);
        okto__tb_arg_int(&t, p->ph);
        okto__tb_arg_int(&t, p->pw);
        if (kind == P_MAX_FWD || kind == P_MAX_BWD) {
            okto__tb_arg_int(&t, 1); /* dilation */
            okto__tb_arg_int(&t, 1);
        } else {
            okto__tb_arg_int(&t, 1); /* count_include_pad, PyTorch's default */
        }
        if (bwd)
            okto__tb_arg_int(&t, acc);
        okto__tb_range_1d(&t, nc * rows_per_plane);
        okto__tb_access(&t, &ip, OKTO__R);
        if (arg)
            okto__tb_access(&t, &ap, kind == P_MAX_FWD ? OKTO__W : OKTO__R);
        okto__tb_access(&t, &op_, bwd && acc ? OKTO__RW : OKTO__W);
        double es = (double)okto_dtype_size(in->dtype);
        okto__tb_cost(&t, work * (double)nc / (double)p->NC,
                      es * (double)nc * (double)(in_hw + out_hw) +
                          (arg ? 4.0 * nc * p->OH * p->OW : 0),
                      (uint64_t)nc << 40 ^ (uint64_t)p->H << 28 ^ (uint64_t)p->W << 16 ^
                          (uint64_t)(p->KH * 16 + p->KW) << 4 ^ (uint64_t)(p->sh * 3 + p->ph) ^
                          (uint64_t)acc << 62);
        okto__tb_part(&t, q, nparts);
        s = okto__tb_commit(&t);
    }
    return s;
}

/* ---- max pool ---------------------------------------------------------------------------------- */

okto_status okto_max_pool2d(okto_graph *g, okto_tensor *y, okto_tensor *argmax,
                            const okto_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    okto__rec r;
    pool_geom p;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_MAXPOOL2D, "okto_max_pool2d");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, y, "y", OKTO__DT_FLOATS);
    if (s == OKTO_OK && argmax)
        s = okto__rec_output(&r, argmax, "argmax", OKTO__DT_BIT(OKTO_I32));
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_window(&r, x, "x", kh, kw, sh, sw, ph, pw, &p);
    if (s == OKTO_OK)
        s = check_out(&r, y, "y", x, "x", x->dtype, &p);
    if (s == OKTO_OK && argmax)
        s = check_out(&r, argmax, "argmax", x, "x", OKTO_I32, &p);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, y, "y", x, "x", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, argmax, "argmax", x, "x", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, argmax, "argmax", y, "y", 0);
    okto_tensor xv, yv, av;
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, x, 0, &xv);
    if (s == OKTO_OK)
        s = output_begin(&r, y, 0, &yv);
    if (s == OKTO_OK) {
        if (argmax)
            s = output_begin(&r, argmax, 0, &av);
        else
            s = okto__rec_temp(&r, OKTO_I32, 4, y->shape, &av);
    }
    if (s == OKTO_OK)
        s = record_window(&r, OKTO__OP_MAXPOOL2D, P_MAX_FWD, &p, &xv, &yv, &av, 0);
    if (s == OKTO_OK)
        s = output_end(&r, y, &yv);
    if (s == OKTO_OK && argmax)
        s = output_end(&r, argmax, &av);
    /* the gradient routes through the argmax (kept whether or not the caller asked) */
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_MAXPOOL2D, .nin = 1, .nout = 1,
                                                 .naux = 1, .t = {x, y, &av}, .saved = 4u,
                                                 .overwrite = 1,
                                                 .i = {kh, kw, sh, sw, ph, pw}});
    return okto__rec_end(&r, s);
}

okto_status okto_max_pool2d_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                     const okto_tensor *argmax, int kh, int kw, int sh, int sw,
                                     int ph, int pw, unsigned flags)
{
    okto__rec r;
    pool_geom p;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_MAXPOOL2D_BWD, "okto_max_pool2d_backward");
    if (s == OKTO_OK)
        s = check_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, dx, "dx", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dy, "dy", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, argmax, "argmax", OKTO__DT_BIT(OKTO_I32));
    if (s == OKTO_OK)
        s = check_window(&r, dx, "dx", kh, kw, sh, sw, ph, pw, &p);
    if (s == OKTO_OK)
        s = check_out(&r, dy, "dy", dx, "dx", dx->dtype, &p);
    if (s == OKTO_OK)
        s = check_out(&r, argmax, "argmax", dx, "dx", OKTO_I32, &p);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dx, "dx", dy, "dy", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dx, "dx", argmax, "argmax", 0);
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    okto_tensor gv, av, xv;
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, dy, 0, &gv);
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, argmax, 0, &av);
    if (s == OKTO_OK)
        s = output_begin(&r, dx, acc, &xv);
    if (s == OKTO_OK)
        s = record_window(&r, OKTO__OP_MAXPOOL2D_BWD, P_MAX_BWD, &p, &gv, &xv, &av, acc);
    if (s == OKTO_OK)
        s = output_end(&r, dx, &xv);
    return okto__rec_end(&r, s);
}

/* ---- average pool ------------------------------------------------------------------------------ */

okto_status okto_avg_pool2d(okto_graph *g, okto_tensor *y, const okto_tensor *x, int kh, int kw,
                            int sh, int sw, int ph, int pw)
{
    okto__rec r;
    pool_geom p;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_AVGPOOL2D, "okto_avg_pool2d");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, y, "y", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_window(&r, x, "x", kh, kw, sh, sw, ph, pw, &p);
    if (s == OKTO_OK)
        s = check_out(&r, y, "y", x, "x", x->dtype, &p);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, y, "y", x, "x", 0);
    okto_tensor xv, yv;
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, x, 0, &xv);
    if (s == OKTO_OK)
        s = output_begin(&r, y, 0, &yv);
    if (s == OKTO_OK)
        s = record_window(&r, OKTO__OP_AVGPOOL2D, P_AVG_FWD, &p, &xv, &yv, NULL, 0);
    if (s == OKTO_OK)
        s = output_end(&r, y, &yv);
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_AVGPOOL2D, .nin = 1, .nout = 1,
                                                 .t = {x, y}, .overwrite = 1,
                                                 .i = {kh, kw, sh, sw, ph, pw}});
    return okto__rec_end(&r, s);
}

okto_status okto_avg_pool2d_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy, int kh,
                                     int kw, int sh, int sw, int ph, int pw, unsigned flags)
{
    okto__rec r;
    pool_geom p;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_AVGPOOL2D_BWD, "okto_avg_pool2d_backward");
    if (s == OKTO_OK)
        s = check_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, dx, "dx", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dy, "dy", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_window(&r, dx, "dx", kh, kw, sh, sw, ph, pw, &p);
    if (s == OKTO_OK)
        s = check_out(&r, dy, "dy", dx, "dx", dx->dtype, &p);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dx, "dx", dy, "dy", 0);
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    okto_tensor gv, xv;
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, dy, 0, &gv);
    if (s == OKTO_OK)
        s = output_begin(&r, dx, acc, &xv);
    if (s == OKTO_OK)
        s = record_window(&r, OKTO__OP_AVGPOOL2D_BWD, P_AVG_BWD, &p, &gv, &xv, NULL, acc);
    if (s == OKTO_OK)
        s = output_end(&r, dx, &xv);
    return okto__rec_end(&r, s);
}

/* ---- global average pool ----------------------------------------------------------------------- */

/* x [N, C, H, W] and y [N, C, 1, 1] or [N, C] of one dtype */
static okto_status check_gap(okto__rec *r, const okto_tensor *x, const char *xn,
                             const okto_tensor *y, const char *yn)
{
    if (x->rank != 4)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s; it must be 4-D [N, C, H, W]", xn,
                              OKTO__DESC(x));
    int ok = y->dtype == x->dtype && y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1] &&
             (y->rank == 2 || (y->rank == 4 && y->shape[2] == 1 && y->shape[3] == 1));
    if (!ok)
        return okto__rec_fail(
            r, OKTO_EINVAL, "%s is %s; with %s %s it must be %s[%zu,%zu,1,1] or %s[%zu,%zu]", yn,
            OKTO__DESC(y), xn, OKTO__DESC(x), okto_dtype_name(x->dtype), x->shape[0], x->shape[1],
            okto_dtype_name(x->dtype), x->shape[0], x->shape[1]);
    return OKTO_OK;
}

static okto_status record_gap(okto__rec *r, int bwd, size_t NC, size_t HW, const okto_tensor *in,
                              const okto_tensor *out, int acc)
{
    okto_tensor in2, out2;
    okto__view_flat(in, 0, NC * (bwd ? 1 : HW), &in2);
    okto__view_flat(out, 0, NC * (bwd ? HW : 1), &out2);
    int nparts = okto__rec_parts(r, NC, (double)(NC * HW));
    okto_status s = OKTO_OK;
    for (int q = 0; q < nparts && s == OKTO_OK; q++) {
        size_t c0 = okto__part_row(NC, q, nparts), c1 = okto__part_row(NC, q + 1, nparts);
        size_t ie = bwd ? 1 : HW, oe = bwd ? HW : 1;
        okto_tensor ip, op_;
        okto__view_flat(&in2, c0 * ie, c1 * ie, &ip);
        okto__view_flat(&out2, c0 * oe, c1 * oe, &op_);
        okto__tb t;
        okto__tb_init(&t, r, bwd ? OKTO__OP_GAP2D_BWD : OKTO__OP_GAP2D);
        okto__tb_kernel(&t, "pool", in->dtype, NULL, bwd ? "okto_gap_bwd" : "okto_gap_fwd");
        okto__tb_arg_tensor(&t, &ip);
        okto__tb_arg_tensor(&t, &op_);
        okto__tb_arg_ulong(&t, c1 - c0);
        okto__tb_arg_ulong(&t, HW);
        if (bwd) {
            okto__tb_arg_int(&t, acc);
            okto__tb_range_1d(&t, c1 - c0);
        } else {
            size_t l = OKTO__POOL_L, global = l * okto__rec_device(r)->grid_groups;
            okto__tb_range(&t, 1, &global, &l);
        }
        okto__tb_access(&t, &ip, OKTO__R);
        okto__tb_access(&t, &op_, bwd && acc ? OKTO__RW : OKTO__W);
        double e = (double)((c1 - c0) * HW);
        okto__tb_cost(&t, e, (double)okto_dtype_size(in->dtype) * (e + (double)(c1 - c0)),
                      (uint64_t)(c1 - c0) << 32 ^ HW ^ (uint64_t)acc << 62);
        okto__tb_part(&t, q, nparts);
        s = okto__tb_commit(&t);
    }
    return s;
}

okto_status okto_global_avg_pool2d(okto_graph *g, okto_tensor *y, const okto_tensor *x)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_GAP2D, "okto_global_avg_pool2d");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, y, "y", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_gap(&r, x, "x", y, "y");
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, y, "y", x, "x", 0);
    okto_tensor xv, yv;
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, x, 0, &xv);
    if (s == OKTO_OK)
        s = output_begin(&r, y, 0, &yv);
    if (s == OKTO_OK)
        s = record_gap(&r, 0, x->shape[0] * x->shape[1], x->shape[2] * x->shape[3], &xv, &yv, 0);
    if (s == OKTO_OK)
        s = output_end(&r, y, &yv);
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_GAP2D, .nin = 1, .nout = 1,
                                                 .t = {x, y}, .overwrite = 1});
    return okto__rec_end(&r, s);
}

static okto_status pool_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_graph *g = okto__grad_graph(gr);
    okto_tensor *dx = okto__grad_in(gr, 0);
    const okto_tensor *dy = okto__grad_out(gr, 0);
    const int *i = n->i;
    if (!dx)
        return OKTO_OK;
    switch (n->op) {
    case OKTO__OP_MAXPOOL2D:
        return okto_max_pool2d_backward(g, dx, dy, &n->t[2], i[0], i[1], i[2], i[3], i[4], i[5],
                                        OKTO_ACCUMULATE);
    case OKTO__OP_AVGPOOL2D:
        return okto_avg_pool2d_backward(g, dx, dy, i[0], i[1], i[2], i[3], i[4], i[5],
                                        OKTO_ACCUMULATE);
    default: return okto_global_avg_pool2d_backward(g, dx, dy, OKTO_ACCUMULATE);
    }
}

okto_status okto_global_avg_pool2d_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                            unsigned flags)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_GAP2D_BWD, "okto_global_avg_pool2d_backward");
    if (s == OKTO_OK)
        s = check_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, dx, "dx", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dy, "dy", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_gap(&r, dx, "dx", dy, "dy");
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dx, "dx", dy, "dy", 0);
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    okto_tensor gv, xv;
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, dy, 0, &gv);
    if (s == OKTO_OK)
        s = output_begin(&r, dx, acc, &xv);
    if (s == OKTO_OK)
        s = record_gap(&r, 1, dx->shape[0] * dx->shape[1], dx->shape[2] * dx->shape[3], &gv, &xv,
                       acc);
    if (s == OKTO_OK)
        s = output_end(&r, dx, &xv);
    return okto__rec_end(&r, s);
}
