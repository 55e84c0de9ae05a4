/* lib/tensor.c: tensors, their views, and the device storage they share. A storage is
 * reference-counted by its tensors and by the graphs that recorded ops on it, so a graph never
 * points at freed memory; a storage in use by a launched graph refuses to be destroyed, written
 * or read (storage.busy, one atomic for the check and the change). */
#include "core.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
#define OKTO__DTYPE_ROW(name, str, size) {str, size},
    OKTO_DTYPE_MAP(OKTO__DTYPE_ROW)
#undef OKTO__DTYPE_ROW
};
_Static_assert(sizeof dtypes / sizeof *dtypes == OKTO_DTYPE_COUNT, "one row per dtype");

const char *okto_dtype_name(okto_dtype dt)
{
    return (unsigned)dt < OKTO_DTYPE_COUNT ? dtypes[dt].name : "unknown";
}

size_t okto_dtype_size(okto_dtype dt)
{
    return (unsigned)dt < OKTO_DTYPE_COUNT ? dtypes[dt].size : 0;
}

/* ---- host conversions (the device's, cl/common.h) ------------------------------------------ */

uint16_t okto_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float okto_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, as vstore_half_rte does; overflow gives inf, NaN stays NaN. */
uint16_t okto_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
    if (e == 0xff)
        return (uint16_t)(sign | 0x7c00u | (m ? 0x200u | (m >> 13) : 0));
    int ex = (int)e - 127 + 15;
    if (ex >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (ex <= 0) { /* subnormal half, or zero */
        if (ex < -10)
            return (uint16_t)sign;
        m |= 0x800000u;
        int shift = 14 - ex;
        uint32_t half = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)ex << 10) | (m >> 13), rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* a carry into the exponent is right: it rounds up to the next binade or inf */
    return (uint16_t)(sign | half);
}

float okto_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0x1f) {
        u = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        if (!m) {
            u = sign;
        } else { /* subnormal: normalise */
            int k = 0;
            while (!(m & 0x400u))
                m <<= 1, k++;
            u = sign | ((uint32_t)(127 - 15 + 1 - k) << 23) | ((m & 0x3ffu) << 13);
        }
    } else {
        u = sign | ((e - 15 + 127) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- storages ------------------------------------------------------------------------------ */

static atomic_uint next_storage_id;

void okto__storage_retain(okto__storage *st) { atomic_fetch_add(&st->refs, 1); }

void okto__storage_release(okto__storage *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    if (st->owns_mem)
        clReleaseMemObject(st->mem);
    okto__context_release(st->ctx);
    free(st);
}

/* Shape checks shared by create and from_cl: rank, zero sizes, overflow, the 32-bit inner
 * dimensions of regions. *numel on success. */
static okto_status check_shape(okto_context *ctx, const char *who, okto_dtype dtype, int rank,
                               const size_t *shape, size_t *numel)
{
    if ((unsigned)dtype >= OKTO_DTYPE_COUNT)
        return okto__fail(ctx, OKTO_EINVAL, "%s: dtype %d is not an okto_dtype", who, (int)dtype);
    if (rank < 1 || rank > OKTO_MAX_RANK)
        return okto__fail(ctx, OKTO_EINVAL, "%s: rank %d (expected 1 to %d)", who, rank,
                          OKTO_MAX_RANK);
    if (!shape)
        return okto__fail(ctx, OKTO_EINVAL, "%s: shape must not be NULL", who);
    size_t n = 1;
    char dims[128] = "";
    size_t off = 0;
    for (int i = 0; i < rank && off < sizeof dims; i++)
        off += (size_t)snprintf(dims + off, sizeof dims - off, "%s%zu", i ? "," : "", shape[i]);
    for (int i = 0; i < rank; i++) {
        if (shape[i] == 0)
            return okto__fail(ctx, OKTO_EINVAL, "%s: shape %s[%s] has a zero dimension", who,
                              okto_dtype_name(dtype), dims);
        if (i > 0 && shape[i] > UINT32_MAX)
            return okto__fail(ctx, OKTO_EINVAL,
                              "%s: shape %s[%s]: dimension %d is over 2^32 (only the first may "
                              "be)",
                              who, okto_dtype_name(dtype), dims, i);
        if (n > SIZE_MAX / shape[i])
            return okto__fail(ctx, OKTO_EINVAL, "%s: shape %s[%s] overflows", who,
                              okto_dtype_name(dtype), dims);
        n *= shape[i];
    }
    if (n > SIZE_MAX / okto_dtype_size(dtype) || n > (size_t)INT64_MAX)
        return okto__fail(ctx, OKTO_EINVAL, "%s: shape %s[%s] overflows", who,
                          okto_dtype_name(dtype), dims);
    *numel = n;
    return OKTO_OK;
}

static void contiguous_view(okto__storage *st, int rank, const size_t *shape, okto_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->st = st;
    t->dtype = st->dtype;
    t->rank = rank;
    int64_t s = 1;
    for (int i = OKTO_MAX_RANK - 1; i >= 0; i--) {
        t->shape[i] = i < rank ? shape[i] : 1;
        t->stride[i] = i < rank ? s : 0;
        if (i < rank)
            s *= (int64_t)shape[i];
    }
}

static void CL_CALLBACK free_host(cl_mem mem, void *host)
{
    (void)mem;
    free(host);
}

static okto__storage *storage_alloc(okto_context *ctx, okto_dtype dtype, int rank,
                                    const size_t *shape, size_t numel)
{
    okto__storage *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    atomic_init(&st->refs, 1);
    atomic_init(&st->busy, 0);
    atomic_init(&st->requires_grad, 0);
    st->ctx = ctx;
    st->dtype = dtype;
    st->numel = numel;
    for (int i = 0; i < OKTO_MAX_RANK; i++)
        st->shape[i] = i < rank ? shape[i] : 1;
    st->id = atomic_fetch_add(&next_storage_id, 1);
    return st;
}

okto_status okto__storage_new(okto_context *ctx, okto_dtype dtype, int rank, const size_t *shape,
                              const char *who, okto_tensor *t)
{
    size_t n;
    okto_status s = check_shape(ctx, who, dtype, rank, shape, &n);
    if (s != OKTO_OK)
        return s;
    size_t bytes = n * okto_dtype_size(dtype);
    const okto__device *dev = okto__ctx_device(ctx);
    char desc[96];
    okto_tensor probe = {.dtype = dtype, .rank = rank};
    for (int i = 0; i < rank; i++)
        probe.shape[i] = shape[i];
    okto__describe(&probe, desc, sizeof desc);
    if (bytes > dev->max_alloc)
        return okto__fail(ctx, OKTO_ENOMEM,
                          "%s: %s is %zu bytes; the device allows at most %zu bytes in one "
                          "allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE)",
                          who, desc, bytes, dev->max_alloc);
    okto__storage *st = storage_alloc(ctx, dtype, rank, shape, n);
    if (!st)
        return okto__fail(ctx, OKTO_ENOMEM, "%s: out of host memory", who);
    cl_int err;
    /* With a host lane (lib/lane_host.c): host memory okto allocates, given to the device as
     * CL_MEM_USE_HOST_PTR, so the host lane's BLAS reads and writes it where the CPU device
     * does. Mapping plain buffers instead made PoCL 3.1 copy them into host shadows, which
     * crashed in PoCL's map under concurrent maps (okto-train --model gpt). The memory is freed
     * when the driver destroys the buffer (its destructor callback), not before. */
    void *host = NULL;
    if (okto__ctx_host_lane(ctx) > 0) {
        /* PoCL's base address alignment is 128 bytes; pages for anything bigger, and 2 MiB
         * (transparent huge pages) from 2 MiB on */
        size_t align = bytes < 4096 ? 128 : bytes < ((size_t)2 << 20) ? 4096 : (size_t)2 << 20;
        size_t rounded = (bytes + align - 1) & ~(align - 1);
        host = aligned_alloc(align, rounded ? rounded : align);
        if (!host) {
            free(st);
            return okto__fail(ctx, OKTO_ENOMEM, "%s: out of host memory (%zu bytes)", who, bytes);
        }
#ifdef MADV_HUGEPAGE
        if (align >= ((size_t)2 << 20))
            madvise(host, rounded, MADV_HUGEPAGE); /* advice only: a refusal changes nothing */
#endif
    }
    st->mem = clCreateBuffer(
        okto__ctx_cl(ctx), CL_MEM_READ_WRITE | (host ? CL_MEM_USE_HOST_PTR : 0), bytes, host, &err);
    if (err == CL_SUCCESS && host) {
        err = clSetMemObjectDestructorCallback(st->mem, free_host, host);
        if (err != CL_SUCCESS) {
            clReleaseMemObject(st->mem);
            st->mem = NULL;
            free(host);
            free(st);
            return okto__fail_cl(ctx, err, "clSetMemObjectDestructorCallback", "%s: %s", who, desc);
        }
        st->host = host;
    } else if (err != CL_SUCCESS) {
        free(host);
    }
    if (err != CL_SUCCESS) {
        free(st);
        return okto__fail_cl(ctx, err, "clCreateBuffer", "%s: %s, %zu bytes", who, desc, bytes);
    }
    st->owns_mem = 1;
    okto__context_retain(ctx);
    contiguous_view(st, rank, shape, t);
    return OKTO_OK;
}

static okto_status hand_out(okto_context *ctx, const okto_tensor *v, const char *who,
                            okto_tensor **out)
{
    okto_tensor *t = malloc(sizeof *t);
    if (!t)
        return okto__fail(ctx, OKTO_ENOMEM, "%s: out of host memory", who);
    *t = *v;
    t->heap = 1;
    *out = t;
    return OKTO_OK;
}

okto_status okto_tensor_create(okto_context *ctx, okto_dtype dtype, int rank, const size_t *shape,
                               okto_tensor **out)
{
    if (!out)
        return okto__fail(ctx, OKTO_EINVAL, "okto_tensor_create: out must not be NULL");
    *out = NULL;
    if (!ctx)
        return okto__fail(NULL, OKTO_EINVAL, "okto_tensor_create: ctx must not be NULL");
    okto_tensor v;
    okto_status s = okto__storage_new(ctx, dtype, rank, shape, "okto_tensor_create", &v);
    if (s != OKTO_OK)
        return s;
    if ((s = hand_out(ctx, &v, "okto_tensor_create", out)) != OKTO_OK)
        okto__storage_release(v.st);
    return s;
}

okto_status okto_tensor_create_2d(okto_context *ctx, size_t rows, size_t cols, okto_tensor **out)
{
    return okto_tensor_create(ctx, OKTO_F32, 2, (size_t[]){rows, cols}, out);
}

okto_status okto_tensor_from_cl(okto_context *ctx, cl_mem mem, size_t offset, okto_dtype dtype,
                                int rank, const size_t *shape, int take_ownership,
                                okto_tensor **out)
{
    static const char *who = "okto_tensor_from_cl";
    if (!out)
        return okto__fail(ctx, OKTO_EINVAL, "%s: out must not be NULL", who);
    *out = NULL;
    if (!ctx || !mem)
        return okto__fail(ctx, OKTO_EINVAL, "%s: ctx and mem must not be NULL", who);
    size_t n;
    okto_status s = check_shape(ctx, who, dtype, rank, shape, &n);
    if (s != OKTO_OK)
        return s;
    size_t size = 0;
    cl_context mctx = NULL;
    cl_int err = clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof mctx, &mctx, NULL);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, "clGetMemObjectInfo", "%s: mem", who);
    if (mctx != okto__ctx_cl(ctx))
        return okto__fail(ctx, OKTO_EINVAL, "%s: mem belongs to another cl_context than ctx", who);
    size_t es = okto_dtype_size(dtype);
    if (offset > size / es || n > size / es - offset)
        return okto__fail(ctx, OKTO_EINVAL,
                          "%s: %zu elements of %s from element %zu need %zu bytes; the buffer "
                          "has %zu",
                          who, n, okto_dtype_name(dtype), offset, (offset + n) * es, size);
    okto__storage *st = storage_alloc(ctx, dtype, rank, shape, n);
    if (!st)
        return okto__fail(ctx, OKTO_ENOMEM, "%s: out of host memory", who);
    st->mem = mem;
    st->owns_mem = take_ownership != 0;
    st->base = offset;
    okto__context_retain(ctx);
    okto_tensor v;
    contiguous_view(st, rank, shape, &v);
    if ((s = hand_out(ctx, &v, who, out)) != OKTO_OK) {
        st->owns_mem = 0; /* a failed call leaves the caller's reference with the caller */
        okto__storage_release(st);
    }
    return s;
}

/* ---- views --------------------------------------------------------------------------------- */

size_t okto__numel(const okto_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->shape[i];
    return n;
}

int okto__contiguous(const okto_tensor *t)
{
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s)
            return 0;
        s *= (int64_t)t->shape[i];
    }
    return 1;
}

int okto__rows_dense(const okto_tensor *t)
{
    return t->shape[t->rank - 1] == 1 || t->stride[t->rank - 1] == 1;
}

void okto__view_slice(const okto_tensor *t, int dim, size_t start, size_t len, okto_tensor *out)
{
    *out = *t;
    out->heap = 0;
    out->offset = t->offset + (size_t)((int64_t)start * t->stride[dim]);
    out->shape[dim] = len;
}

int okto__view_2d(const okto_tensor *t, okto_tensor *out)
{
    *out = *t;
    out->heap = 0;
    if (t->rank == 1) {
        out->rank = 2;
        out->shape[0] = 1, out->shape[1] = t->shape[0];
        out->stride[0] = (int64_t)t->shape[0] * t->stride[0];
        out->stride[1] = t->stride[0];
        out->shape[2] = out->shape[3] = 1, out->stride[2] = out->stride[3] = 0;
        return 1;
    }
    /* merge dimensions 0 .. rank-2 into one: each must step by the next one's extent */
    size_t rows = t->shape[t->rank - 2];
    int64_t rs = t->stride[t->rank - 2];
    for (int i = t->rank - 3; i >= 0; i--) {
        if (t->shape[i] == 1) {
            continue;
        }
        if (rows != 1 && t->stride[i] != rs * (int64_t)rows)
            return 0;
        if (rows == 1)
            rs = t->stride[i];
        rows *= t->shape[i];
    }
    out->rank = 2;
    out->shape[0] = rows, out->stride[0] = rs;
    out->shape[1] = t->shape[t->rank - 1], out->stride[1] = t->stride[t->rank - 1];
    out->shape[2] = out->shape[3] = 1, out->stride[2] = out->stride[3] = 0;
    return 1;
}

int okto__view_rows(const okto_tensor *t, size_t r0, size_t r1, okto_tensor *out)
{
    okto_tensor m;
    if (!okto__view_2d(t, &m))
        return 0;
    okto__view_slice(&m, 0, r0, r1 - r0, out);
    return 1;
}

void okto__view_flat(const okto_tensor *t, size_t e0, size_t e1, okto_tensor *out)
{
    *out = *t;
    out->heap = 0;
    out->rank = 1;
    out->offset = t->offset + e0;
    out->shape[0] = e1 - e0, out->stride[0] = 1;
    for (int i = 1; i < OKTO_MAX_RANK; i++)
        out->shape[i] = 1, out->stride[i] = 0;
}

void okto__view_swap(const okto_tensor *t, int d0, int d1, okto_tensor *out)
{
    *out = *t;
    out->heap = 0;
    out->shape[d0] = t->shape[d1], out->stride[d0] = t->stride[d1];
    out->shape[d1] = t->shape[d0], out->stride[d1] = t->stride[d0];
}

void okto__view_bcast(const okto_tensor *t, int rank, const size_t *shape, okto_tensor *out)
{
    okto_tensor v = *t;
    v.heap = 0;
    v.rank = rank;
    for (int i = 0; i < OKTO_MAX_RANK; i++) {
        int j = i - (rank - t->rank);
        v.shape[i] = i < rank ? shape[i] : 1;
        v.stride[i] = i < rank && j >= 0 && t->shape[j] == shape[i] ? t->stride[j] : 0;
    }
    *out = v;
}

void okto__view_unsqueeze(const okto_tensor *t, int dim, okto_tensor *out)
{
    okto_tensor v = *t;
    v.heap = 0;
    v.rank = t->rank + 1;
    for (int i = OKTO_MAX_RANK - 1; i > dim; i--)
        v.shape[i] = t->shape[i - 1], v.stride[i] = t->stride[i - 1];
    v.shape[dim] = 1, v.stride[dim] = 0;
    *out = v;
}

const char *okto__describe(const okto_tensor *t, char *buf, size_t len)
{
    if (!t) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    size_t off = (size_t)snprintf(buf, len, "%s[", okto_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%zu", i ? "," : "", t->shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
    return buf;
}

int okto__same_shape(const okto_tensor *a, const okto_tensor *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

int okto__same_view(const okto_tensor *a, const okto_tensor *b)
{
    if (!a || !b || a->st != b->st || a->offset != b->offset || !okto__same_shape(a, b))
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] > 1 && a->stride[i] != b->stride[i])
            return 0;
    return 1;
}

static okto_status view_begin(const okto_tensor *t, okto_tensor **out, const char *who)
{
    if (!out)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL, "%s: out must not be NULL", who);
    *out = NULL;
    if (!t)
        return okto__fail(NULL, OKTO_EINVAL, "%s: t must not be NULL", who);
    return OKTO_OK;
}

/* A new handle for view v of t's storage, which it keeps alive. */
static okto_status view_end(const okto_tensor *v, const char *who, okto_tensor **out)
{
    okto_status s = hand_out(v->st->ctx, v, who, out);
    if (s == OKTO_OK)
        okto__storage_retain(v->st);
    return s;
}

static okto_status slice(const okto_tensor *t, int dim, size_t start, size_t len, okto_tensor **out,
                         const char *who)
{
    okto_status s = view_begin(t, out, who);
    if (s != OKTO_OK)
        return s;
    okto_context *ctx = t->st->ctx;
    if (dim < 0 || dim >= t->rank)
        return okto__fail(ctx, OKTO_EINVAL, "%s: dim %d of %s (expected 0 to %d)", who, dim,
                          OKTO__DESC(t), t->rank - 1);
    if (len == 0 || start > t->shape[dim] || len > t->shape[dim] - start)
        return okto__fail(ctx, OKTO_EINVAL,
                          "%s: [%zu, %zu) of dimension %d is outside %s (or empty)", who, start,
                          start + len, dim, OKTO__DESC(t));
    okto_tensor v;
    okto__view_slice(t, dim, start, len, &v);
    return view_end(&v, who, out);
}

okto_status okto_tensor_slice(const okto_tensor *t, int dim, size_t start, size_t len,
                              okto_tensor **out)
{
    return slice(t, dim, start, len, out, "okto_tensor_slice");
}

okto_status okto_tensor_view(const okto_tensor *t, size_t row0, size_t rows, okto_tensor **out)
{
    return slice(t, 0, row0, rows, out, "okto_tensor_view");
}

okto_status okto_tensor_reshape(const okto_tensor *t, int rank, const size_t *shape,
                                okto_tensor **out)
{
    static const char *who = "okto_tensor_reshape";
    okto_status s = view_begin(t, out, who);
    if (s != OKTO_OK)
        return s;
    okto_context *ctx = t->st->ctx;
    size_t n;
    if ((s = check_shape(ctx, who, t->dtype, rank, shape, &n)) != OKTO_OK)
        return s;
    okto_tensor want = {.dtype = t->dtype, .rank = rank};
    for (int i = 0; i < rank; i++)
        want.shape[i] = shape[i];
    if (n != okto__numel(t))
        return okto__fail(ctx, OKTO_EINVAL, "%s: %s has %zu elements, %s has %zu", who,
                          OKTO__DESC(t), okto__numel(t), OKTO__DESC(&want), n);
    if (!okto__contiguous(t))
        return okto__fail(ctx, OKTO_EINVAL,
                          "%s: %s is not contiguous (okto_contiguous makes a contiguous copy)", who,
                          OKTO__DESC(t));
    okto_tensor v;
    contiguous_view(t->st, rank, shape, &v);
    v.offset = t->offset;
    return view_end(&v, who, out);
}

okto_status okto_tensor_permute(const okto_tensor *t, const int *perm, okto_tensor **out)
{
    static const char *who = "okto_tensor_permute";
    okto_status s = view_begin(t, out, who);
    if (s != OKTO_OK)
        return s;
    okto_context *ctx = t->st->ctx;
    if (!perm)
        return okto__fail(ctx, OKTO_EINVAL, "%s: perm must not be NULL", who);
    int seen = 0;
    for (int i = 0; i < t->rank; i++) {
        if (perm[i] < 0 || perm[i] >= t->rank || (seen >> perm[i]) & 1)
            return okto__fail(ctx, OKTO_EINVAL,
                              "%s: perm is not a permutation of 0..%d for %s (perm[%d] = %d)", who,
                              t->rank - 1, OKTO__DESC(t), i, perm[i]);
        seen |= 1 << perm[i];
    }
    okto_tensor v = *t;
    v.heap = 0;
    for (int i = 0; i < t->rank; i++)
        v.shape[i] = t->shape[perm[i]], v.stride[i] = t->stride[perm[i]];
    return view_end(&v, who, out);
}

okto_status okto_tensor_transpose(const okto_tensor *t, int d0, int d1, okto_tensor **out)
{
    okto_status s = view_begin(t, out, "okto_tensor_transpose");
    if (s != OKTO_OK)
        return s;
    if (d0 < 0 || d0 >= t->rank || d1 < 0 || d1 >= t->rank)
        return okto__fail(t->st->ctx, OKTO_EINVAL,
                          "okto_tensor_transpose: dimensions %d and %d of %s (expected 0 to %d)",
                          d0, d1, OKTO__DESC(t), t->rank - 1);
    int perm[OKTO_MAX_RANK] = {0, 1, 2, 3};
    perm[d0] = d1, perm[d1] = d0;
    return okto_tensor_permute(t, perm, out);
}

okto_status okto_tensor_expand(const okto_tensor *t, int rank, const size_t *shape,
                               okto_tensor **out)
{
    static const char *who = "okto_tensor_expand";
    okto_status s = view_begin(t, out, who);
    if (s != OKTO_OK)
        return s;
    okto_context *ctx = t->st->ctx;
    size_t n;
    if ((s = check_shape(ctx, who, t->dtype, rank, shape, &n)) != OKTO_OK)
        return s;
    okto_tensor v = {.st = t->st, .dtype = t->dtype, .rank = rank, .offset = t->offset};
    for (int i = 0; i < OKTO_MAX_RANK; i++)
        v.shape[i] = 1, v.stride[i] = 0;
    okto_tensor want = v;
    for (int i = 0; i < rank; i++)
        want.shape[i] = shape[i];
    if (rank < t->rank)
        return okto__fail(ctx, OKTO_EINVAL, "%s: %s cannot expand to the lower rank of %s", who,
                          OKTO__DESC(t), OKTO__DESC(&want));
    for (int i = 0; i < rank; i++) {
        int j = i - (rank - t->rank); /* t's dimension aligned at the end */
        size_t have = j >= 0 ? t->shape[j] : 1;
        if (have != shape[i] && have != 1)
            return okto__fail(ctx, OKTO_EINVAL,
                              "%s: %s does not broadcast to %s (dimension %d: %zu against %zu)",
                              who, OKTO__DESC(t), OKTO__DESC(&want), i, have, shape[i]);
        v.shape[i] = shape[i];
        v.stride[i] = (j >= 0 && have == shape[i]) ? t->stride[j] : 0;
    }
    return view_end(&v, who, out);
}

/* ---- queries ------------------------------------------------------------------------------- */

int okto_tensor_rank(const okto_tensor *t) { return t ? t->rank : 0; }
size_t okto_tensor_dim(const okto_tensor *t, int dim)
{
    return t && dim >= 0 && dim < t->rank ? t->shape[dim] : 0;
}
int64_t okto_tensor_stride(const okto_tensor *t, int dim)
{
    return t && dim >= 0 && dim < t->rank ? t->stride[dim] : 0;
}
okto_dtype okto_tensor_dtype(const okto_tensor *t) { return t ? t->dtype : OKTO_F32; }
size_t okto_tensor_numel(const okto_tensor *t) { return t ? okto__numel(t) : 0; }
size_t okto_tensor_nbytes(const okto_tensor *t)
{
    return t ? okto__numel(t) * okto_dtype_size(t->dtype) : 0;
}
int okto_tensor_is_contiguous(const okto_tensor *t) { return t ? okto__contiguous(t) : 0; }
size_t okto_tensor_cols(const okto_tensor *t) { return t ? t->shape[t->rank - 1] : 0; }
size_t okto_tensor_rows(const okto_tensor *t)
{
    return t ? okto__numel(t) / t->shape[t->rank - 1] : 0;
}
const char *okto_tensor_describe(const okto_tensor *t, char *buf, size_t len)
{
    if (!buf || !len)
        return buf;
    return okto__describe(t, buf, len);
}
okto_context *okto_tensor_context(const okto_tensor *t) { return t ? t->st->ctx : NULL; }
cl_mem okto_tensor_cl_mem(const okto_tensor *t) { return t ? t->st->mem : NULL; }
size_t okto_tensor_offset(const okto_tensor *t) { return t ? t->st->base + t->offset : 0; }

/* ---- blocking transfers -------------------------------------------------------------------- */

/* Takes the storage for a blocking transfer: EBUSY if a launched graph holds it. */
static okto_status transfer_begin(const okto_tensor *t, const char *who)
{
    int v = atomic_load(&t->st->busy);
    do {
        if (v > 0)
            return okto__fail(t->st->ctx, OKTO_EBUSY,
                              "%s: %s is used by %d launched graph%s; wait for %s first", who,
                              OKTO__DESC(t), v, v == 1 ? "" : "s", v == 1 ? "it" : "them");
    } while (!atomic_compare_exchange_weak(&t->st->busy, &v, v - 1));
    return OKTO_OK;
}

static void transfer_end(const okto_tensor *t) { atomic_fetch_add(&t->st->busy, 1); }

/* Visits every element of t in row-major order of its shape: f(i, offset of element i from
 * t's first element's... storage offset lo). */
#define OKTO__FOR_ELEMENTS(t, lo, i, off, body)                                                    \
    do {                                                                                           \
        size_t i = 0;                                                                              \
        for (size_t a_ = 0; a_ < (t)->shape[0]; a_++)                                              \
            for (size_t b_ = 0; b_ < (t)->shape[1]; b_++)                                          \
                for (size_t c_ = 0; c_ < (t)->shape[2]; c_++)                                      \
                    for (size_t d_ = 0; d_ < (t)->shape[3]; d_++, i++) {                           \
                        size_t off =                                                               \
                            (size_t)((int64_t)(t)->offset - (int64_t)(lo) +                        \
                                     (int64_t)a_ * (t)->stride[0] + (int64_t)b_ * (t)->stride[1] + \
                                     (int64_t)c_ * (t)->stride[2] + (int64_t)d_ * (t)->stride[3]); \
                        body;                                                                      \
                    }                                                                              \
    } while (0)

/* The covering element range [lo, hi) of a view. */
static void span_of(const okto_tensor *t, size_t *lo, size_t *hi)
{
    size_t span = 0;
    for (int i = 0; i < t->rank; i++)
        span += (size_t)t->stride[i] * (t->shape[i] - 1);
    *lo = t->offset;
    *hi = t->offset + span + 1;
}

static okto_status transfer(const okto_tensor *t, void *dst, const void *src, const char *who)
{
    okto_context *ctx = t->st->ctx;
    cl_command_queue q = okto__ctx_xfer_queue(ctx);
    size_t es = okto_dtype_size(t->dtype), n = okto__numel(t), lo, hi;
    span_of(t, &lo, &hi);
    okto_status s = transfer_begin(t, who);
    if (s != OKTO_OK)
        return s;
    cl_mem mem = t->st->mem;
    size_t base = t->st->base;
    cl_int err = CL_SUCCESS;
    const char *call = dst ? "clEnqueueReadBuffer" : "clEnqueueWriteBuffer";
    if (okto__contiguous(t)) {
        err =
            dst ? clEnqueueReadBuffer(q, mem, CL_TRUE, (base + lo) * es, n * es, dst, 0, NULL, NULL)
                : clEnqueueWriteBuffer(q, mem, CL_TRUE, (base + lo) * es, n * es, src, 0, NULL,
                                       NULL);
    } else {
        /* a strided view: the covering range through a host buffer (a write reads it first, so
         * the elements between the view's own keep their values) */
        char *tmp = malloc((hi - lo) * es);
        if (!tmp) {
            transfer_end(t);
            return okto__fail(ctx, OKTO_ENOMEM, "%s: out of host memory for %s", who,
                              OKTO__DESC(t));
        }
        err = clEnqueueReadBuffer(q, mem, CL_TRUE, (base + lo) * es, (hi - lo) * es, tmp, 0, NULL,
                                  NULL);
        if (err == CL_SUCCESS && dst) {
            OKTO__FOR_ELEMENTS(t, lo, i, off, memcpy((char *)dst + i * es, tmp + off * es, es));
        } else if (err == CL_SUCCESS) {
            OKTO__FOR_ELEMENTS(t, lo, i, off,
                               memcpy(tmp + off * es, (const char *)src + i * es, es));
            call = "clEnqueueWriteBuffer";
            err = clEnqueueWriteBuffer(q, mem, CL_TRUE, (base + lo) * es, (hi - lo) * es, tmp, 0,
                                       NULL, NULL);
        }
        free(tmp);
    }
    transfer_end(t);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, call, "%s of %s", who, OKTO__DESC(t));
    return OKTO_OK;
}

okto_status okto_tensor_write(okto_tensor *t, const void *src)
{
    if (!t || !src)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL,
                          "okto_tensor_write: t and src must not be NULL");
    return transfer(t, NULL, src, "okto_tensor_write");
}

okto_status okto_tensor_read(const okto_tensor *t, void *dst)
{
    if (!t || !dst)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL,
                          "okto_tensor_read: t and dst must not be NULL");
    return transfer(t, dst, NULL, "okto_tensor_read");
}

okto_status okto_tensor_write_f32(okto_tensor *t, const float *src)
{
    if (!t || !src)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL,
                          "okto_tensor_write_f32: t and src must not be NULL");
    if (t->dtype == OKTO_F32)
        return transfer(t, NULL, src, "okto_tensor_write_f32");
    size_t n = okto__numel(t);
    void *tmp = malloc(n * okto_dtype_size(t->dtype));
    if (!tmp)
        return okto__fail(t->st->ctx, OKTO_ENOMEM, "okto_tensor_write_f32: out of host memory");
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == OKTO_F16)
            ((uint16_t *)tmp)[i] = okto_f32_to_f16(src[i]);
        else if (t->dtype == OKTO_BF16)
            ((uint16_t *)tmp)[i] = okto_f32_to_bf16(src[i]);
        else
            ((int32_t *)tmp)[i] = (int32_t)src[i];
    }
    okto_status s = transfer(t, NULL, tmp, "okto_tensor_write_f32");
    free(tmp);
    return s;
}

okto_status okto_tensor_read_f32(const okto_tensor *t, float *dst)
{
    if (!t || !dst)
        return okto__fail(t ? t->st->ctx : NULL, OKTO_EINVAL,
                          "okto_tensor_read_f32: t and dst must not be NULL");
    if (t->dtype == OKTO_F32)
        return transfer(t, dst, NULL, "okto_tensor_read_f32");
    size_t n = okto__numel(t);
    void *tmp = malloc(n * okto_dtype_size(t->dtype));
    if (!tmp)
        return okto__fail(t->st->ctx, OKTO_ENOMEM, "okto_tensor_read_f32: out of host memory");
    okto_status s = transfer(t, tmp, NULL, "okto_tensor_read_f32");
    for (size_t i = 0; s == OKTO_OK && i < n; i++) {
        if (t->dtype == OKTO_F16)
            dst[i] = okto_f16_to_f32(((uint16_t *)tmp)[i]);
        else if (t->dtype == OKTO_BF16)
            dst[i] = okto_bf16_to_f32(((uint16_t *)tmp)[i]);
        else
            dst[i] = (float)((int32_t *)tmp)[i];
    }
    free(tmp);
    return s;
}

okto_status okto_tensor_destroy(okto_tensor *t)
{
    if (!t)
        return OKTO_OK;
    if (t->heap == 2)
        return okto__fail(t->st->ctx, OKTO_EINVAL,
                          "okto_tensor_destroy: %s belongs to the graph that made it "
                          "(okto_graph_tensor); it goes with the graph",
                          OKTO__DESC(t));
    int n = atomic_load(&t->st->busy);
    if (n > 0)
        return okto__fail(t->st->ctx, OKTO_EBUSY,
                          "okto_tensor_destroy: %s is used by %d launched graph%s; wait for %s "
                          "first",
                          OKTO__DESC(t), n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
    okto__storage_release(t->st);
    free(t);
    return OKTO_OK;
}
