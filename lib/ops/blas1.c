/* lib/ops/blas1.c: fill, copy, scale, axpy, and the copy-lane tasks upload and download.
 * Elementwise work over many rows is split into row parts, one per compute lane. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Records `name` over rows [r0, r1) of each part: args are (t0 RW/W, scalar, [t1 R]). */
static okto_status record_vec(okto_graph *g, const char *op, const char *kname, okto_tensor *y,
                              int ymode, float alpha, int has_alpha, const okto_tensor *x)
{
    size_t rows = y->rows, cols = y->cols;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols), start = g->ntasks;
    okto_status s = OKTO_OK;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        cl_int n = (cl_int)((r1 - r0) * cols);
        okto__karg args[4];
        int na = 0;
        args[na++] = OKTO__KT(y, r0);
        if (has_alpha)
            args[na++] = OKTO__KV(alpha);
        if (x)
            args[na++] = OKTO__KT(x, r0);
        args[na++] = OKTO__KV(n);
        okto__access acc[2] = {okto__acc(y, r0, r1, ymode)};
        if (x)
            acc[1] = okto__acc(x, r0, r1, OKTO__R);
        okto__task t = {.op = op, .part = p, .nparts = nparts, .flops = (double)n,
                        .bytes = (double)n * sizeof(float) * (x ? 3 : 2), .acc = acc,
                        .nacc = x ? 2 : 1};
        s = okto__record_1d(g, kname, op, t, (size_t)n, na, args);
    }
    if (s != OKTO_OK)
        okto__graph_truncate(g, start);
    return s;
}

static okto_status check1(okto_graph *g, const okto_tensor *x, const char *op, const char *arg)
{
    okto_status s = okto__check_graph(g, op);
    return s != OKTO_OK ? s : okto__check_tensor(g, x, op, arg);
}

static okto_status same_shape(okto_graph *g, const char *op, const okto_tensor *a,
                              const char *an, const okto_tensor *b, const char *bn)
{
    if (a->rows == b->rows && a->cols == b->cols)
        return OKTO_OK;
    return okto__fail(g->ctx, OKTO_EINVAL, "%s: %s is %zux%zu but %s is %zux%zu", op, an, a->rows,
                      a->cols, bn, b->rows, b->cols);
}

okto_status okto_fill(okto_graph *g, okto_tensor *x, float value)
{
    okto_status s = check1(g, x, "okto_fill", "x");
    return s != OKTO_OK ? s : record_vec(g, "fill", "okto_fill", x, OKTO__W, value, 1, NULL);
}

okto_status okto_scale(okto_graph *g, okto_tensor *x, float alpha)
{
    okto_status s = check1(g, x, "okto_scale", "x");
    return s != OKTO_OK ? s : record_vec(g, "scale", "okto_scale", x, OKTO__RW, alpha, 1, NULL);
}

okto_status okto_axpy(okto_graph *g, okto_tensor *y, float alpha, const okto_tensor *x)
{
    okto_status s = check1(g, y, "okto_axpy", "y");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, x, "okto_axpy", "x");
    if (s == OKTO_OK)
        s = same_shape(g, "okto_axpy", y, "y", x, "x");
    return s != OKTO_OK ? s : record_vec(g, "axpy", "okto_axpy", y, OKTO__RW, alpha, 1, x);
}

/* ---- copies: buffer-to-buffer and host transfers --------------------------------------- */

typedef struct xfer {
    cl_mem dst_mem, src_mem;     /* device side */
    size_t dst_off, src_off, bytes;
    float *host_dst;             /* download */
    const float *host_src;       /* upload */
} xfer;

static cl_int enqueue_copy(okto__task *t, const okto__exec *x, cl_uint nwait,
                           const cl_event *wait, cl_event *done)
{
    const xfer *c = t->data;
    return clEnqueueCopyBuffer(x->queue, c->src_mem, c->dst_mem, c->src_off, c->dst_off, c->bytes,
                               nwait, nwait ? wait : NULL, done);
}

static cl_int enqueue_upload(okto__task *t, const okto__exec *x, cl_uint nwait,
                             const cl_event *wait, cl_event *done)
{
    const xfer *c = t->data;
    return clEnqueueWriteBuffer(x->queue, c->dst_mem, CL_FALSE, c->dst_off, c->bytes, c->host_src,
                                nwait, nwait ? wait : NULL, done);
}

static cl_int enqueue_download(okto__task *t, const okto__exec *x, cl_uint nwait,
                               const cl_event *wait, cl_event *done)
{
    const xfer *c = t->data;
    return clEnqueueReadBuffer(x->queue, c->src_mem, CL_FALSE, c->src_off, c->bytes, c->host_dst,
                               nwait, nwait ? wait : NULL, done);
}

static okto_status record_xfer(okto_graph *g, const char *op, okto__enqueue_fn fn,
                               okto__task_class cls, const xfer *c, okto__access *acc, int nacc)
{
    xfer *d = malloc(sizeof *d);
    if (!d)
        return okto__fail(g->ctx, OKTO_ENOMEM, "%s: out of host memory", op);
    *d = *c;
    okto__task t = {.op = op, .shape_key = c->bytes, .cls = cls, .bytes = (double)c->bytes * 2,
                    .acc = acc, .nacc = nacc, .enqueue = fn, .data = d};
    int ti = okto__graph_add(g, &t);
    return ti < 0 ? (okto_status)ti : OKTO_OK;
}

okto_status okto_copy(okto_graph *g, okto_tensor *dst, const okto_tensor *src)
{
    okto_status s = check1(g, dst, "okto_copy", "dst");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, src, "okto_copy", "src");
    if (s == OKTO_OK)
        s = same_shape(g, "okto_copy", dst, "dst", src, "src");
    if (s != OKTO_OK)
        return s;
    if (okto__rows_overlap(dst, src))
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_copy: dst rows [%zu, %zu) and src rows [%zu, %zu) of one tensor "
                          "overlap", dst->row0, dst->row0 + dst->rows, src->row0,
                          src->row0 + src->rows);
    size_t rows = dst->rows, cols = dst->cols;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols), start = g->ntasks;
    for (int p = 0; p < nparts; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        xfer c = {.dst_mem = dst->st->mem, .src_mem = src->st->mem,
                  .dst_off = (dst->row0 + r0) * cols * sizeof(float),
                  .src_off = (src->row0 + r0) * cols * sizeof(float),
                  .bytes = (r1 - r0) * cols * sizeof(float)};
        okto__access acc[2] = {okto__acc(dst, r0, r1, OKTO__W), okto__acc(src, r0, r1, OKTO__R)};
        if ((s = record_xfer(g, "copy", enqueue_copy, OKTO__COMPUTE, &c, acc, 2)) != OKTO_OK) {
            okto__graph_truncate(g, start);
            return s;
        }
        g->tasks[g->ntasks - 1].part = p;
        g->tasks[g->ntasks - 1].nparts = nparts;
    }
    return OKTO_OK;
}

okto_status okto_upload(okto_graph *g, okto_tensor *t, const float *src)
{
    okto_status s = check1(g, t, "okto_upload", "t");
    if (s != OKTO_OK)
        return s;
    if (!src)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_upload: src must not be NULL");
    xfer c = {.dst_mem = t->st->mem, .dst_off = t->row0 * t->cols * sizeof(float),
              .bytes = t->rows * t->cols * sizeof(float), .host_src = src};
    okto__access acc = okto__acc(t, 0, t->rows, OKTO__W);
    return record_xfer(g, "upload", enqueue_upload, OKTO__COPY, &c, &acc, 1);
}

okto_status okto_download(okto_graph *g, float *dst, const okto_tensor *t)
{
    okto_status s = check1(g, t, "okto_download", "t");
    if (s != OKTO_OK)
        return s;
    if (!dst)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_download: dst must not be NULL");
    xfer c = {.src_mem = t->st->mem, .src_off = t->row0 * t->cols * sizeof(float),
              .bytes = t->rows * t->cols * sizeof(float), .host_dst = dst};
    okto__access acc = okto__acc(t, 0, t->rows, OKTO__R);
    return record_xfer(g, "download", enqueue_download, OKTO__COPY, &c, &acc, 1);
}
