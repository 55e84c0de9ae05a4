/* okto/tensor.h: device-resident float32 matrices, 2-D row-major (a vector is 1 x n).
 *
 * A tensor is owned by its creator until okto_tensor_destroy. Graphs that recorded ops on a
 * tensor keep its storage alive until they are destroyed, so destroying a tensor early never
 * leaves a graph pointing at freed memory; destroying one that a launched graph is still using
 * returns OKTO_EBUSY and leaves it intact. */
#ifndef OKTO_TENSOR_H
#define OKTO_TENSOR_H

#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct okto_tensor okto_tensor;

/* rows, cols >= 1. OKTO_EINVAL for zero or overflowing sizes, OKTO_ENOMEM (with the size and
 * the device limit in the message) for a size the device cannot allocate. */
OKTO_API okto_status okto_tensor_create(okto_context *ctx, size_t rows, size_t cols,
                                        okto_tensor **out);
/* A view of rows [row0, row0 + rows) of t: no copy, same storage. Ops on views record
 * accesses to exactly those rows, which is how micro-batches of one tensor pipeline. A view
 * keeps its parent's storage alive; destroy it like any tensor. */
OKTO_API okto_status okto_tensor_view(okto_tensor *t, size_t row0, size_t rows,
                                      okto_tensor **out);
/* Blocking upload of rows * cols floats / download of the same. */
OKTO_API okto_status okto_tensor_write(okto_tensor *t, const float *src);
OKTO_API okto_status okto_tensor_read(const okto_tensor *t, float *dst);
OKTO_API size_t okto_tensor_rows(const okto_tensor *t);
OKTO_API size_t okto_tensor_cols(const okto_tensor *t);
OKTO_API okto_context *okto_tensor_context(const okto_tensor *t);
/* Interop: the buffer (not retained) and where this tensor starts in it, in floats. */
OKTO_API cl_mem okto_tensor_cl_mem(const okto_tensor *t);
OKTO_API size_t okto_tensor_offset(const okto_tensor *t);
/* OKTO_EBUSY (tensor intact) while a launched graph uses it; NULL is OK. */
OKTO_API okto_status okto_tensor_destroy(okto_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
