/* lib/tensor.c: tensors and the device storage they share with their views. A storage is
 * reference-counted by its tensors and by the graphs that recorded ops on it, so a graph never
 * points at freed memory; a storage in use by a launched graph refuses to be destroyed. */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>

static atomic_int next_storage_id;

void okto__storage_retain(okto__storage *st) { atomic_fetch_add(&st->refs, 1); }

void okto__storage_release(okto__storage *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    clReleaseMemObject(st->mem);
    okto__context_release(st->ctx);
    free(st);
}

okto_status okto_tensor_create(okto_context *ctx, size_t rows, size_t cols, okto_tensor **out)
{
    if (!out)
        return okto__fail(ctx, OKTO_EINVAL, "okto_tensor_create: out must not be NULL");
    *out = NULL;
    if (!ctx)
        return okto__fail(NULL, OKTO_EINVAL, "okto_tensor_create: ctx must not be NULL");
    if (rows == 0 || cols == 0)
        return okto__fail(ctx, OKTO_EINVAL, "okto_tensor_create: shape %zux%zu has a zero size",
                          rows, cols);
    if (rows > SIZE_MAX / cols || rows * cols > SIZE_MAX / sizeof(float) ||
        rows > INT32_MAX || cols > INT32_MAX)
        return okto__fail(ctx, OKTO_EINVAL, "okto_tensor_create: shape %zux%zu overflows", rows,
                          cols);
    size_t bytes = rows * cols * sizeof(float);
    if (bytes > ctx->max_alloc)
        return okto__fail(ctx, OKTO_ENOMEM,
                          "okto_tensor_create: %zux%zu floats is %zu bytes; the device allows at "
                          "most %zu bytes in one allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE)",
                          rows, cols, bytes, ctx->max_alloc);
    okto__storage *st = calloc(1, sizeof *st);
    okto_tensor *t = calloc(1, sizeof *t);
    if (!st || !t) {
        free(st);
        free(t);
        return okto__fail(ctx, OKTO_ENOMEM, "okto_tensor_create: out of host memory");
    }
    cl_int err;
    st->mem = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        free(st);
        free(t);
        okto_status s = okto__fail_cl(ctx, err, "clCreateBuffer", "%zux%zu tensor, %zu bytes",
                                      rows, cols, bytes);
        return s == OKTO_ECL ? s : OKTO_ENOMEM;
    }
    atomic_init(&st->refs, 1);
    atomic_init(&st->inflight, 0);
    st->ctx = ctx;
    st->rows = rows;
    st->cols = cols;
    st->id = atomic_fetch_add(&next_storage_id, 1);
    okto__context_retain(ctx);
    t->st = st;
    t->row0 = 0;
    t->rows = rows;
    t->cols = cols;
    *out = t;
    return OKTO_OK;
}

okto_status okto_tensor_view(okto_tensor *t, size_t row0, size_t rows, okto_tensor **out)
{
    if (!out)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL,
                          "okto_tensor_view: out must not be NULL");
    *out = NULL;
    if (!t)
        return okto__fail(NULL, OKTO_EINVAL, "okto_tensor_view: t must not be NULL");
    okto_context *ctx = t->st->ctx;
    if (rows == 0 || row0 > t->rows || rows > t->rows - row0)
        return okto__fail(ctx, OKTO_EINVAL,
                          "okto_tensor_view: rows [%zu, %zu) are outside the %zux%zu tensor",
                          row0, row0 + rows, t->rows, t->cols);
    okto_tensor *v = calloc(1, sizeof *v);
    if (!v)
        return okto__fail(ctx, OKTO_ENOMEM, "okto_tensor_view: out of host memory");
    okto__storage_retain(t->st);
    v->st = t->st;
    v->row0 = t->row0 + row0;
    v->rows = rows;
    v->cols = t->cols;
    *out = v;
    return OKTO_OK;
}

static okto_status transfer(const okto_tensor *t, float *dst, const float *src, const char *who)
{
    if (!t)
        return okto__fail(NULL, OKTO_EINVAL, "%s: tensor must not be NULL", who);
    okto_context *ctx = t->st->ctx;
    if (!dst && !src)
        return okto__fail(ctx, OKTO_EINVAL, "%s: host pointer must not be NULL", who);
    size_t off = t->row0 * t->cols * sizeof(float), bytes = t->rows * t->cols * sizeof(float);
    /* The sequential queue is in-order and owned by the context; blocking calls on it are
     * ordered after nothing else, so the caller must not run graphs on t at the same time. */
    cl_command_queue q = ctx->seq.queue;
    cl_int err = dst ? clEnqueueReadBuffer(q, t->st->mem, CL_TRUE, off, bytes, dst, 0, NULL, NULL)
                     : clEnqueueWriteBuffer(q, t->st->mem, CL_TRUE, off, bytes, src, 0, NULL,
                                            NULL);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, dst ? "clEnqueueReadBuffer" : "clEnqueueWriteBuffer",
                             "%s of a %zux%zu tensor", who, t->rows, t->cols);
    return OKTO_OK;
}

okto_status okto_tensor_write(okto_tensor *t, const float *src)
{
    if (!src)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL,
                          "okto_tensor_write: src must not be NULL");
    return transfer(t, NULL, src, "okto_tensor_write");
}

okto_status okto_tensor_read(const okto_tensor *t, float *dst)
{
    if (!dst)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL,
                          "okto_tensor_read: dst must not be NULL");
    return transfer(t, dst, NULL, "okto_tensor_read");
}

size_t okto_tensor_rows(const okto_tensor *t) { return t ? t->rows : 0; }
size_t okto_tensor_cols(const okto_tensor *t) { return t ? t->cols : 0; }
okto_context *okto_tensor_context(const okto_tensor *t) { return t ? t->st->ctx : NULL; }
cl_mem okto_tensor_cl_mem(const okto_tensor *t) { return t ? t->st->mem : NULL; }
size_t okto_tensor_offset(const okto_tensor *t) { return t ? t->row0 * t->cols : 0; }

okto_status okto_tensor_destroy(okto_tensor *t)
{
    if (!t)
        return OKTO_OK;
    int n = atomic_load(&t->st->inflight);
    if (n > 0)
        return okto__fail(t->st->ctx, OKTO_EBUSY,
                          "okto_tensor_destroy: the %zux%zu tensor is used by %d launched "
                          "graph%s; wait for %s first",
                          t->rows, t->cols, n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
    okto__storage_release(t->st);
    free(t);
    return OKTO_OK;
}
