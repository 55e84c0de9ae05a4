/* lib/ops/softmax_ext.c: okto_softmax_backward, okto_log_softmax and okto_log_softmax_backward
 * over the last dimension (okto_softmax itself is lib/ops/softmax.c's). Kernels in
 * cl/softmax_ext.cl: row kernels over contiguous rows, split into row parts across the compute
 * lanes; the backward ops take the forward's output y, not x. */
#include "rowkit.h"

const okto__op_desc okto__desc_SOFTMAX_BACKWARD = {.name = "softmax.backward",
                                                   .family = "softmax",
                                                   .dtypes = OKTO__DT_FLOATS,
                                                   .layouts = "any strides (copied)",
                                                   .partitioned = 1};
static okto_status log_softmax_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_LOG_SOFTMAX = {.backward = log_softmax_grad,
                                              .name = "log_softmax",
                                              .family = "softmax",
                                              .dtypes = OKTO__DT_FLOATS,
                                              .layouts = "any strides (copied)",
                                              .partitioned = 1};
const okto__op_desc okto__desc_LOG_SOFTMAX_BACKWARD = {.name = "log_softmax.backward",
                                                       .family = "softmax",
                                                       .dtypes = OKTO__DT_FLOATS,
                                                       .layouts = "any strides (copied)",
                                                       .partitioned = 1};

/* out = kernel(a[, b]) by rows: the forward (a = x) or a backward (a = y, b = dy, out = dx; the
 * kernels take y first, then dy). */
static okto_status smx(okto_graph *g, okto__op op, const char *fn, const char *kname,
                       okto_tensor *out, const char *oname, const okto_tensor *a, const char *aname,
                       const okto_tensor *b, const char *bname, int bwd, unsigned flags)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, op, fn);
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    if (s == OKTO_OK && bwd)
        s = okto__rk_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, oname, OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, a, aname, OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rk_same(&r, a, aname, out, oname, 1);
    if (s == OKTO_OK && bwd && (s = okto__rec_tensor(&r, b, bname, OKTO__DT_FLOATS)) == OKTO_OK)
        s = okto__rk_same(&r, a, aname, b, bname, 1);
    /* forward: y may be x; backward: dx may be dy (not y: y is read after dx is written) */
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, oname, bwd ? b : a, bwd ? bname : aname, !acc);
    if (s == OKTO_OK && bwd)
        s = okto__rec_no_alias(&r, out, oname, a, aname, 0);
    okto_tensor a2, b2;
    okto__rk_out o = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, a, &a2);
    if (s == OKTO_OK && bwd)
        s = okto__rk_in2d(&r, b, &b2);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, out, 1, acc, &o);
    size_t rows = s == OKTO_OK ? a2.shape[0] : 0, cols = s == OKTO_OK ? a2.shape[1] : 0;
    int nparts = s == OKTO_OK ? okto__rec_parts(&r, rows, (double)rows * (double)cols) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts), l;
        okto_tensor ai, bi, oi;
        okto__view_slice(&a2, 0, r0, r1 - r0, &ai);
        okto__view_slice(&o.m, 0, r0, r1 - r0, &oi);
        if (bwd)
            okto__view_slice(&b2, 0, r0, r1 - r0, &bi);
        okto__tb t;
        okto__tb_init(&t, &r, op);
        okto__tb_kernel(&t, "softmax_ext", a->dtype, NULL, kname);
        if ((s = t.status) != OKTO_OK || (s = okto__rk_local(&r, t.kid, cols, &l)) != OKTO_OK)
            break;
        okto__tb_arg_tensor(&t, &ai);
        if (bwd)
            okto__tb_arg_tensor(&t, &bi);
        okto__tb_arg_tensor(&t, &oi);
        okto__tb_arg_ulong(&t, r1 - r0);
        okto__tb_arg_ulong(&t, cols);
        if (bwd)
            okto__tb_arg_int(&t, acc);
        okto__rk_range_rows(&t, l);
        okto__tb_access(&t, &ai, OKTO__R);
        if (bwd)
            okto__tb_access(&t, &bi, OKTO__R);
        okto__tb_access(&t, &oi, acc ? OKTO__RW : OKTO__W);
        double n = (double)(r1 - r0) * (double)cols;
        okto__tb_cost(&t, 6 * n, (bwd ? 3 : 2) * n * (double)okto_dtype_size(a->dtype),
                      ((uint64_t)(r1 - r0) << 32) ^ (uint64_t)cols);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &o, s);
    if (s == OKTO_OK && !bwd)
        s = okto__ad_record(&r, &(okto__ad_call){.op = op, .nin = 1, .nout = 1, .t = {a, out},
                                                 .saved = 2u, .overwrite = 1});
    return okto__rec_end(&r, s);
}

/* y = log_softmax(x): the gradient reads y */
static okto_status log_softmax_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dx = okto__grad_in(gr, 0);
    if (!dx)
        return OKTO_OK;
    return okto_log_softmax_backward(okto__grad_graph(gr), dx, okto__grad_out(gr, 0), &n->t[1],
                                     OKTO_ACCUMULATE);
}

okto_status okto_softmax_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                  const okto_tensor *y, unsigned flags)
{
    return smx(g, OKTO__OP_SOFTMAX_BACKWARD, "okto_softmax_backward", "okto_softmax_bwd", dx, "dx",
               y, "y", dy, "dy", 1, flags);
}

okto_status okto_log_softmax(okto_graph *g, okto_tensor *y, const okto_tensor *x)
{
    return smx(g, OKTO__OP_LOG_SOFTMAX, "okto_log_softmax", "okto_log_softmax_fwd", y, "y", x, "x",
               NULL, NULL, 0, 0);
}

okto_status okto_log_softmax_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                      const okto_tensor *y, unsigned flags)
{
    return smx(g, OKTO__OP_LOG_SOFTMAX_BACKWARD, "okto_log_softmax_backward",
               "okto_log_softmax_bwd", dx, "dx", y, "y", dy, "dy", 1, flags);
}
