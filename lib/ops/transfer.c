/* lib/ops/transfer.c: copy-lane tasks between host memory and a tensor (okto_upload,
 * okto_download). The tensor must be contiguous: one clEnqueue{Write,Read}Buffer, no staging. */
#include "op.h"

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
