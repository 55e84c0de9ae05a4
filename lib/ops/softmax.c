/* lib/ops/softmax.c: okto_softmax (row-wise) and okto_softmax_xent (fused softmax and
 * cross-entropy loss and gradient). Kernels in cl/softmax.cl, one work-group per row.
 *
 * Both split by rows, one part per compute lane (okto__parts); a part reads and writes only its
 * rows. The loss of softmax_xent is a mean over all rows: each part writes its rows' losses into
 * a rows x 1 scratch tensor, and okto_reduce (MEAN, all) averages them on the device with its
 * tree reduction, so the host never sees the per-row values. The scratch is released after
 * recording: the graph retains every storage it records an access to.
 *
 * Labels: a rows x 1 tensor; row r holds the class index of row r as a float (0.0f, 1.0f, ...,
 * cols - 1; exact for any index below 2^24). A value that is not an integer in [0, cols) makes
 * that row's loss NaN (and so the mean NaN) and leaves the row's gradient without the onehot
 * term: a bad label shows up in the loss instead of reading out of bounds. */
#include "internal.h"

#include <stdint.h>

#define OKTO__SM_MAXL 256 /* OKTO_SM_MAXL in cl/softmax.cl: the local array's size */


static okto_status alias_error(okto_graph *g, const char *op, const char *an, const okto_tensor *a,
                               const char *bn, const okto_tensor *b)
{
    return okto__fail(g->ctx, OKTO_EINVAL,
                      "%s: %s (rows [%zu, %zu)) and %s (rows [%zu, %zu)) are views of one tensor "
                      "that overlap",
                      op, an, a->row0, a->row0 + a->rows, bn, b->row0, b->row0 + b->rows);
}

/* Work-group size for rows of `cols` floats: a power of two up to the row length, the kernel's
 * limit and OKTO__SM_MAXL. */
static okto_status pick_local(okto_graph *g, cl_kernel k, size_t cols, size_t *l)
{
    size_t wg = OKTO__SM_MAXL;
    cl_int err = clGetKernelWorkGroupInfo(k, g->ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg,
                                          &wg, NULL);
    if (err != CL_SUCCESS)
        return okto__fail_cl(g->ctx, err, "clGetKernelWorkGroupInfo", "softmax kernel");
    size_t lim = wg < OKTO__SM_MAXL ? wg : OKTO__SM_MAXL, p = 1;
    while (p * 2 <= lim && p < cols)
        p <<= 1;
    *l = p;
    return OKTO_OK;
}

okto_status okto_softmax(okto_graph *g, okto_tensor *out, const okto_tensor *in)
{
    static const char *fn = "okto_softmax";
    okto_status s = okto__check_graph(g, fn);
    if (s == OKTO_OK)
        s = okto__check_tensor(g, out, fn, "out");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, in, fn, "in");
    if (s != OKTO_OK)
        return s;
    if (out->rows != in->rows || out->cols != in->cols)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_softmax: in is %zux%zu but out is %zux%zu",
                          in->rows, in->cols, out->rows, out->cols);
    if (okto__rows_overlap(out, in) && !okto__same_rows(out, in))
        return alias_error(g, fn, "out", out, "in", in);

    size_t rows = in->rows, cols = in->cols;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols), start = g->ntasks;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        cl_int nr = (cl_int)(r1 - r0), nc = (cl_int)cols;
        size_t l;
        const okto__karg args[] = {OKTO__KT(in, r0), OKTO__KT(out, r0), OKTO__KV(nr),
                                   OKTO__KV(nc)};
        cl_kernel k;
        if ((s = okto__kernel_args(g->ctx, "okto_softmax_rows", fn, 4, args, &k)) != OKTO_OK)
            break;
        if ((s = pick_local(g, k, cols, &l)) != OKTO_OK) {
            clReleaseKernel(k);
            break;
        }
        okto__access acc[2];
        int nacc = 0;
        okto__add_access(acc, &nacc, okto__acc(out, r0, r1, OKTO__W));
        okto__add_access(acc, &nacc, okto__acc(in, r0, r1, OKTO__R));
        double n = (double)nr * (double)nc;
        okto__task t = {.op = "softmax",
                        .shape_key = ((uint64_t)nr << 32) ^ (uint64_t)nc,
                        .part = p,
                        .nparts = nparts,
                        .cls = OKTO__COMPUTE,
                        .flops = 5 * n,
                        .bytes = 3 * n * sizeof(float),
                        .acc = acc,
                        .nacc = nacc,
                        .kernel = k,
                        .work_dim = 2,
                        .global = {l, okto__grid_groups(g->ctx), 1},
                        .local = {l, 1, 1},
                        .has_local = 1};
        int ti = okto__graph_add(g, &t);
        if (ti < 0)
            s = (okto_status)ti;
    }
    if (s != OKTO_OK)
        okto__graph_truncate(g, start);
    return s;
}

static okto_status xent_check(okto_graph *g, okto_tensor *loss, okto_tensor *grad,
                              const okto_tensor *logits, const okto_tensor *labels)
{
    static const char *fn = "okto_softmax_xent";
    okto_status s = okto__check_graph(g, fn);
    if (s == OKTO_OK)
        s = okto__check_tensor(g, logits, fn, "logits");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, labels, fn, "labels");
    if (s == OKTO_OK && loss)
        s = okto__check_tensor(g, loss, fn, "loss");
    if (s == OKTO_OK && grad)
        s = okto__check_tensor(g, grad, fn, "grad");
    if (s != OKTO_OK)
        return s;
    if (!loss && !grad)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_softmax_xent: loss and grad are both NULL");
    if (labels->rows != logits->rows || labels->cols != 1)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_softmax_xent: logits is %zux%zu but labels is %zux%zu (expected "
                          "%zux1)",
                          logits->rows, logits->cols, labels->rows, labels->cols, logits->rows);
    if (loss && (loss->rows != 1 || loss->cols != 1))
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_softmax_xent: logits is %zux%zu but loss is %zux%zu (expected 1x1)",
                          logits->rows, logits->cols, loss->rows, loss->cols);
    if (grad && (grad->rows != logits->rows || grad->cols != logits->cols))
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_softmax_xent: logits is %zux%zu but grad is %zux%zu", logits->rows,
                          logits->cols, grad->rows, grad->cols);
    /* grad may be logits itself; nothing written may overlap anything else */
    if (okto__rows_overlap(grad, logits) && !okto__same_rows(grad, logits))
        return alias_error(g, fn, "grad", grad, "logits", logits);
    if (okto__rows_overlap(grad, labels))
        return alias_error(g, fn, "grad", grad, "labels", labels);
    if (okto__rows_overlap(loss, logits))
        return alias_error(g, fn, "loss", loss, "logits", logits);
    if (okto__rows_overlap(loss, labels))
        return alias_error(g, fn, "loss", loss, "labels", labels);
    if (okto__rows_overlap(loss, grad))
        return alias_error(g, fn, "loss", loss, "grad", grad);
    return OKTO_OK;
}

okto_status okto_softmax_xent(okto_graph *g, okto_tensor *loss, okto_tensor *grad,
                              const okto_tensor *logits, const okto_tensor *labels)
{
    static const char *fn = "okto_softmax_xent";
    okto_status s = xent_check(g, loss, grad, logits, labels);
    if (s != OKTO_OK)
        return s;
    size_t rows = logits->rows, cols = logits->cols;
    okto_tensor *rowloss = NULL;
    if (loss && (s = okto_tensor_create(g->ctx, rows, 1, &rowloss)) != OKTO_OK)
        return s;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols), start = g->ntasks;
    cl_int has_grad = grad != NULL, has_loss = loss != NULL;
    float total = (float)rows;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        cl_int nr = (cl_int)(r1 - r0), nc = (cl_int)cols;
        size_t l;
        /* a missing output's slot gets logits as a placeholder: the kernel never writes it */
        const okto__karg args[] = {OKTO__KT(logits, r0), OKTO__KT(labels, r0),
                                   OKTO__KT(grad ? grad : logits, r0),
                                   OKTO__KT(rowloss ? rowloss : logits, r0), OKTO__KV(nr),
                                   OKTO__KV(nc), OKTO__KV(has_grad), OKTO__KV(has_loss),
                                   OKTO__KV(total)};
        cl_kernel k;
        if ((s = okto__kernel_args(g->ctx, "okto_softmax_xent_rows", fn, 9, args, &k)) !=
            OKTO_OK)
            break;
        if ((s = pick_local(g, k, cols, &l)) != OKTO_OK) {
            clReleaseKernel(k);
            break;
        }
        okto__access acc[4];
        int nacc = 0;
        if (grad)
            okto__add_access(acc, &nacc, okto__acc(grad, r0, r1, OKTO__W));
        if (rowloss)
            okto__add_access(acc, &nacc, okto__acc(rowloss, r0, r1, OKTO__W));
        okto__add_access(acc, &nacc, okto__acc(logits, r0, r1, OKTO__R));
        okto__add_access(acc, &nacc, okto__acc(labels, r0, r1, OKTO__R));
        double n = (double)nr * (double)nc;
        okto__task t = {.op = "softmax_xent",
                        .shape_key = ((uint64_t)nr << 32) ^ (uint64_t)nc ^ (uint64_t)has_grad,
                        .part = p,
                        .nparts = nparts,
                        .cls = OKTO__COMPUTE,
                        .flops = 5 * n,
                        .bytes = (has_grad ? 3 : 2) * n * sizeof(float),
                        .acc = acc,
                        .nacc = nacc,
                        .kernel = k,
                        .work_dim = 2,
                        .global = {l, okto__grid_groups(g->ctx), 1},
                        .local = {l, 1, 1},
                        .has_local = 1};
        int ti = okto__graph_add(g, &t);
        if (ti < 0)
            s = (okto_status)ti;
    }
    /* the mean over rows, on the device (a tree reduction; partitioned when rows is large) */
    if (s == OKTO_OK && loss)
        s = okto_reduce(g, loss, rowloss, OKTO_MEAN, -1);
    if (s != OKTO_OK)
        okto__graph_truncate(g, start);
    okto_tensor_destroy(rowloss); /* the graph holds the storage now */
    return s;
}
