/* lib/ops/transfer.c: copy-lane tasks between host memory and a tensor (okto_upload,
 * okto_download, and okto_host_task: read, a host function, write back). The tensor must be
 * contiguous: one clEnqueue{Write,Read}Buffer, no staging. */
#include "op.h"

#include <stdlib.h>
#include <string.h>

const okto__op_desc okto__desc_UPLOAD = {.name = "upload",
                                         .family = "transfer",
                                         .dtypes = OKTO__DT_ALL,
                                         .layouts = "contiguous",
                                         .call = "clEnqueueWriteBuffer"};
const okto__op_desc okto__desc_DOWNLOAD = {.name = "download",
                                           .family = "transfer",
                                           .dtypes = OKTO__DT_ALL,
                                           .layouts = "contiguous",
                                           .call = "clEnqueueReadBuffer"};

typedef struct xfer {
    cl_mem mem;
    size_t off, bytes; /* in bytes */
    void *host;
} xfer;

static cl_int enqueue_upload(const okto__exec *x)
{
    const xfer *c = x->data;
    return clEnqueueWriteBuffer(x->queue, c->mem, CL_FALSE, c->off, c->bytes, c->host, x->nwait,
                                x->nwait ? x->wait : NULL, x->done);
}

static cl_int enqueue_download(const okto__exec *x)
{
    const xfer *c = x->data;
    return clEnqueueReadBuffer(x->queue, c->mem, CL_FALSE, c->off, c->bytes, c->host, x->nwait,
                               x->nwait ? x->wait : NULL, x->done);
}

static okto_status transfer(okto_graph *g, okto_tensor *t, void *host, int up, const char *fn)
{
    okto__rec r;
    okto__op op = up ? OKTO__OP_UPLOAD : OKTO__OP_DOWNLOAD;
    okto_status s = okto__rec_begin(&r, g, op, fn);
    if (s == OKTO_OK)
        s = up ? okto__rec_output(&r, t, "t", OKTO__DT_ALL)
               : okto__rec_tensor(&r, t, "t", OKTO__DT_ALL);
    if (s == OKTO_OK && !host)
        s = okto__rec_fail(&r, OKTO_EINVAL, "%s must not be NULL", up ? "src" : "dst");
    if (s == OKTO_OK && !okto__contiguous(t))
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "t (%s) is not contiguous (okto_contiguous makes a "
                           "contiguous copy to download)",
                           OKTO__DESC(t));
    if (s == OKTO_OK) {
        size_t es = okto_dtype_size(t->dtype);
        xfer c = {t->st->mem, (t->st->base + t->offset) * es, okto__numel(t) * es, host};
        okto__tb tb;
        okto__tb_init(&tb, &r, op);
        tb.copy = 1;
        tb.dtype = t->dtype;
        okto__tb_enqueue(&tb, up ? enqueue_upload : enqueue_download, &c, sizeof c);
        okto__tb_access(&tb, t, up ? OKTO__W : OKTO__R);
        okto__tb_cost(&tb, 0, (double)c.bytes * 2, c.bytes);
        s = okto__tb_commit(&tb);
    }
    /* an upload over a value on the tape cuts its gradient there */
    if (s == OKTO_OK && up)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_UPLOAD, .nout = 1, .t = {t},
                                                 .overwrite = 1});
    return okto__rec_end(&r, s);
}

okto_status okto_upload(okto_graph *g, okto_tensor *t, const void *src)
{
    return transfer(g, t, (void *)src, 1, "okto_upload");
}

okto_status okto_download(okto_graph *g, void *dst, const okto_tensor *t)
{
    return transfer(g, (okto_tensor *)t, dst, 0, "okto_download");
}

/* ---- okto_host_task ---------------------------------------------------------------------------- */
const okto__op_desc okto__desc_HOST = {.name = "host",
                                       .family = "transfer",
                                       .dtypes = OKTO__DT_ALL,
                                       .layouts = "contiguous",
                                       .call = "clEnqueueReadBuffer"};

typedef struct host_task {
    cl_mem mem;
    size_t off, bytes;
    void *host;
    okto_host_fn fn;
    void *user;
} host_task;

typedef struct host_call {
    okto_host_fn fn;
    void *user;
    cl_event finish; /* the callback's reference, handed to fn */
} host_call;

static void CL_CALLBACK host_ready(cl_event e, cl_int status, void *p)
{
    (void)e;
    host_call *c = p;
    if (status < 0) { /* the read failed: fail the write after it too */
        clSetUserEventStatus(c->finish, status);
        clReleaseEvent(c->finish);
    } else {
        c->fn(c->user, c->finish);
    }
    free(c);
}

/* read -> (callback: fn, which completes finish) -> write waiting on finish; the write's event
 * is the task's, the read's its start. */
static cl_int enqueue_host(const okto__exec *x)
{
    const host_task *h = x->data;
    cl_int err;
    cl_event fin = clCreateUserEvent(okto__ctx_cl(x->ctx), &err), read = NULL;
    if (err != CL_SUCCESS)
        return err;
    host_call *c = malloc(sizeof *c);
    if (!c) {
        clReleaseEvent(fin);
        return CL_OUT_OF_HOST_MEMORY;
    }
    *c = (host_call){h->fn, h->user, fin};
    err = clEnqueueReadBuffer(x->queue, h->mem, CL_FALSE, h->off, h->bytes, h->host, x->nwait,
                              x->nwait ? x->wait : NULL, &read);
    if (err == CL_SUCCESS) {
        clRetainEvent(fin); /* the callback's */
        cl_int e2 = clSetEventCallback(read, CL_COMPLETE, host_ready, c);
        if (e2 != CL_SUCCESS) {
            clReleaseEvent(fin);
            free(c);
            c = NULL;
            clSetUserEventStatus(fin, e2); /* the write below fails, nothing waits forever */
            err = e2;
        }
        cl_int e3 = clEnqueueWriteBuffer(x->queue, h->mem, CL_FALSE, h->off, h->bytes, h->host, 1,
                                         &fin, x->done);
        if (err == CL_SUCCESS)
            err = e3;
        clFlush(x->queue); /* the read must reach the device for the callback to come */
    } else {
        free(c);
    }
    clReleaseEvent(fin);
    if (read && x->start && err == CL_SUCCESS)
        *x->start = read;
    else if (read)
        clReleaseEvent(read);
    return err;
}

okto_status okto_host_task(okto_graph *g, okto_tensor *t, void *host, okto_host_fn fn, void *user,
                           okto_tensor *order)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_HOST, "okto_host_task");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, t, "t", OKTO__DT_ALL);
    if (s == OKTO_OK && order)
        s = okto__rec_tensor(&r, order, "order", OKTO__DT_ALL);
    if (s == OKTO_OK && (!host || !fn))
        s = okto__rec_fail(&r, OKTO_EINVAL, "%s must not be NULL", host ? "fn" : "host");
    if (s == OKTO_OK && !okto__contiguous(t))
        s = okto__rec_fail(&r, OKTO_EINVAL, "t (%s) is not contiguous", OKTO__DESC(t));
    if (s == OKTO_OK) {
        size_t es = okto_dtype_size(t->dtype);
        host_task h = {t->st->mem, (t->st->base + t->offset) * es, okto__numel(t) * es, host, fn,
                       user};
        okto__tb tb;
        okto__tb_init(&tb, &r, OKTO__OP_HOST);
        tb.copy = 1;
        tb.dtype = t->dtype;
        okto__tb_enqueue(&tb, enqueue_host, &h, sizeof h);
        okto__tb_access(&tb, t, OKTO__RW);
        if (order)
            okto__tb_access(&tb, order, OKTO__RW);
        okto__tb_cost(&tb, 0, (double)h.bytes * 4, h.bytes);
        s = okto__tb_commit(&tb);
    }
    return okto__rec_end(&r, s);
}
