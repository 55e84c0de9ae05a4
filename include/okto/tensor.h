/* okto/tensor.h: device-resident tensors of rank 1 to 4 and views of them.
 *
 * A tensor is a dtype, a shape, strides in elements and an offset into a storage (one cl_mem).
 * Views (slice, reshape, permute, transpose, expand) share the storage and copy nothing; ops
 * take views wherever they take tensors. Shapes are row-major: the last dimension varies
 * fastest in a contiguous tensor.
 *
 * Lifetimes: a tensor is owned by its creator until okto_tensor_destroy. A view keeps its
 * storage alive; so does every graph that recorded an op on it, so destroying a tensor early
 * never leaves a graph pointing at freed memory. Destroying, writing or reading a tensor that a
 * launched graph is still using returns OKTO_EBUSY and changes nothing.
 *
 * Threads: a tensor may be used from any thread; blocking transfers of one storage from two
 * threads at once are the caller's to order. */
#ifndef OKTO_TENSOR_H
#define OKTO_TENSOR_H

#include "context.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OKTO_DTYPE_MAP(X)                                                                      \
    X(F32, "f32", 4)   /* float */                                                             \
    X(F16, "f16", 2)   /* IEEE half: stored as 16 bits, computed in float */                   \
    X(BF16, "bf16", 2) /* bfloat16: the top 16 bits of a float, computed in float */           \
    X(I32, "i32", 4)   /* int32: indices and labels */

typedef enum okto_dtype {
#define OKTO__DTYPE_ENUM(name, str, size) OKTO_##name,
    OKTO_DTYPE_MAP(OKTO__DTYPE_ENUM)
#undef OKTO__DTYPE_ENUM
    OKTO_DTYPE_COUNT
} okto_dtype;

#define OKTO_MAX_RANK 4

/* "f32", "f16", "bf16", "i32"; "unknown" for other values. */
OKTO_API const char *okto_dtype_name(okto_dtype dt);
/* Bytes per element; 0 for other values. */
OKTO_API size_t okto_dtype_size(okto_dtype dt);

typedef struct okto_tensor okto_tensor;

/* A new contiguous tensor of rank 1..4. Every dimension >= 1. OKTO_EINVAL for a bad rank,
 * dtype, zero or overflowing size; OKTO_ENOMEM (with the size and the device limit in the
 * message) for a size the device cannot allocate. The contents are undefined until written. */
OKTO_API okto_status okto_tensor_create(okto_context *ctx, okto_dtype dtype, int rank,
                                        const size_t *shape, okto_tensor **out);
/* The 2-D float32 convenience form: a rows x cols f32 tensor. */
OKTO_API okto_status okto_tensor_create_2d(okto_context *ctx, size_t rows, size_t cols,
                                           okto_tensor **out);
/* A tensor over the caller's buffer: elements from `offset` (in elements of dtype) on, shape
 * contiguous. take_ownership 0: okto neither retains nor releases mem, which must outlive every
 * tensor and graph that uses it; 1: okto takes over the caller's reference and releases it with
 * the storage. */
OKTO_API okto_status okto_tensor_from_cl(okto_context *ctx, cl_mem mem, size_t offset,
                                         okto_dtype dtype, int rank, const size_t *shape,
                                         int take_ownership, okto_tensor **out);

/* ---- views: no copy, same storage; destroy them like any tensor -------------------------- */
/* Elements [start, start + len) of dimension dim. */
OKTO_API okto_status okto_tensor_slice(const okto_tensor *t, int dim, size_t start, size_t len,
                                       okto_tensor **out);
/* okto_tensor_slice along dimension 0: rows [row0, row0 + rows). Ops on row views record
 * accesses to exactly those rows, which is how micro-batches of one tensor pipeline. */
OKTO_API okto_status okto_tensor_view(const okto_tensor *t, size_t row0, size_t rows,
                                      okto_tensor **out);
/* The same elements in another shape of the same count. t must be contiguous (else
 * OKTO_EINVAL: okto_contiguous makes a contiguous copy). */
OKTO_API okto_status okto_tensor_reshape(const okto_tensor *t, int rank, const size_t *shape,
                                         okto_tensor **out);
/* Dimensions reordered: out dimension i is t's dimension perm[i]. */
OKTO_API okto_status okto_tensor_permute(const okto_tensor *t, const int *perm,
                                         okto_tensor **out);
/* Dimensions d0 and d1 swapped. */
OKTO_API okto_status okto_tensor_transpose(const okto_tensor *t, int d0, int d1,
                                           okto_tensor **out);
/* Broadcast to shape (rank >= t's): dimensions of size 1 (and new leading ones) get stride 0.
 * Ops may read such views; writing one is refused (its elements alias). */
OKTO_API okto_status okto_tensor_expand(const okto_tensor *t, int rank, const size_t *shape,
                                        okto_tensor **out);

/* ---- queries (0 or OKTO_F32 for a NULL tensor) -------------------------------------------- */
OKTO_API int okto_tensor_rank(const okto_tensor *t);
/* The tensor's home device in a multi-device context (okto_context_device_at): the device of
 * the first task that wrote it, else the context's first device (0). On a platform whose
 * devices share one cl_context's buffers (PoCL, and OpenCL generally) a task on another device
 * still reads it: the runtime moves the data; the home is what the planner and okto-probe
 * report. */
OKTO_API int okto_tensor_device(const okto_tensor *t);
OKTO_API size_t okto_tensor_dim(const okto_tensor *t, int dim);         /* 0 if out of range */
OKTO_API int64_t okto_tensor_stride(const okto_tensor *t, int dim);     /* in elements */
OKTO_API okto_dtype okto_tensor_dtype(const okto_tensor *t);
OKTO_API size_t okto_tensor_numel(const okto_tensor *t);
OKTO_API size_t okto_tensor_nbytes(const okto_tensor *t);               /* numel * dtype size */
OKTO_API int okto_tensor_is_contiguous(const okto_tensor *t);
/* 2-D reading of any tensor: rows = product of all dimensions but the last, cols = the last. */
OKTO_API size_t okto_tensor_rows(const okto_tensor *t);
OKTO_API size_t okto_tensor_cols(const okto_tensor *t);
/* "f32[8,3,5]" into buf (always terminated); returns buf. */
OKTO_API const char *okto_tensor_describe(const okto_tensor *t, char *buf, size_t len);
OKTO_API okto_context *okto_tensor_context(const okto_tensor *t);
/* Interop: the buffer (not retained) and where this tensor starts in it, in elements. */
OKTO_API cl_mem okto_tensor_cl_mem(const okto_tensor *t);
OKTO_API size_t okto_tensor_offset(const okto_tensor *t);

/* ---- blocking transfers ------------------------------------------------------------------- */
/* numel elements in the tensor's own dtype (uint16_t bits for f16 and bf16), in row-major
 * order of its shape; views of any strides. OKTO_EBUSY while a launched graph uses the tensor. */
OKTO_API okto_status okto_tensor_write(okto_tensor *t, const void *src);
OKTO_API okto_status okto_tensor_read(const okto_tensor *t, void *dst);
/* The same through float: converted on the host (f16/bf16 rounded to nearest even, i32
 * rounded toward zero: use okto_tensor_write for exact integers beyond 2^24). */
OKTO_API okto_status okto_tensor_write_f32(okto_tensor *t, const float *src);
OKTO_API okto_status okto_tensor_read_f32(const okto_tensor *t, float *dst);

/* OKTO_EBUSY (tensor intact) while a launched graph uses it; NULL is OK. */
OKTO_API okto_status okto_tensor_destroy(okto_tensor *t);

/* Host conversions of one value, as the device does them. */
OKTO_API uint16_t okto_f32_to_f16(float f);
OKTO_API float okto_f16_to_f32(uint16_t h);
OKTO_API uint16_t okto_f32_to_bf16(float f);
OKTO_API float okto_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif
