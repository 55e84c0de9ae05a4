/* okto/ops.h: ops record tasks into a graph. Each op checks its arguments when it is recorded
 * (NULL, shapes, tensors of another context): a negative status and, in okto_last_error, both
 * shapes or the argument at fault. Nothing is recorded by a call that fails. */
#ifndef OKTO_OPS_H
#define OKTO_OPS_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data movement and BLAS-1 -------------------------------------------------------- */
OKTO_API okto_status okto_fill(okto_graph *g, okto_tensor *x, float value);
OKTO_API okto_status okto_copy(okto_graph *g, okto_tensor *dst, const okto_tensor *src);
OKTO_API okto_status okto_axpy(okto_graph *g, okto_tensor *y, float alpha, const okto_tensor *x);
OKTO_API okto_status okto_scale(okto_graph *g, okto_tensor *x, float alpha);
/* Copy-lane tasks: host memory <-> tensor, rows * cols floats. The host pointer must stay
 * valid (and, for uploads, unchanged) until okto_graph_wait returns. */
OKTO_API okto_status okto_upload(okto_graph *g, okto_tensor *t, const float *src);
OKTO_API okto_status okto_download(okto_graph *g, float *dst, const okto_tensor *t);

/* ---- matmul -------------------------------------------------------------------------- */
enum {
    OKTO_TRANS_A = 1u << 0,
    OKTO_TRANS_B = 1u << 1,
    OKTO_ACCUMULATE = 1u << 2 /* c += op(a) op(b) */
};
/* c = op(a) op(b), or c += with OKTO_ACCUMULATE. Partitioned across lanes. */
OKTO_API okto_status okto_matmul(okto_graph *g, okto_tensor *c, const okto_tensor *a,
                                 const okto_tensor *b, unsigned flags);
/* c = alpha op(a) op(b) + beta c (OKTO_ACCUMULATE is ignored here). */
OKTO_API okto_status okto_gemm(okto_graph *g, okto_tensor *c, float alpha, const okto_tensor *a,
                               const okto_tensor *b, float beta, unsigned flags);

/* ---- reductions ---------------------------------------------------------------------- */
typedef enum okto_reduce_op { OKTO_SUM, OKTO_MAX, OKTO_MIN, OKTO_MEAN } okto_reduce_op;
/* axis 0: over rows (out is 1 x cols); 1: over columns (out is rows x 1); -1: all (1 x 1). */
OKTO_API okto_status okto_reduce(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                                 okto_reduce_op op, int axis);

/* ---- elementwise --------------------------------------------------------------------- */
typedef enum okto_map_op {
    OKTO_RELU, OKTO_GELU, OKTO_SIGMOID, OKTO_TANH, OKTO_EXP, OKTO_LOG, OKTO_NEG, OKTO_SQRT,
    OKTO_ABS, OKTO_SQUARE
} okto_map_op;
/* out = f(in), same shape; out may be in. */
OKTO_API okto_status okto_map(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                              okto_map_op op);

typedef enum okto_zip_op {
    OKTO_ADD, OKTO_SUB, OKTO_MUL, OKTO_DIV, OKTO_MAXIMUM, OKTO_MINIMUM,
    OKTO_RELU_GRAD /* a * (b > 0): upstream gradient a, pre-activation b */
} okto_zip_op;
/* out = a (op) b. b is a's shape or a 1 x cols row broadcast over a's rows (bias add). */
OKTO_API okto_status okto_zip(okto_graph *g, okto_tensor *out, const okto_tensor *a,
                              const okto_tensor *b, okto_zip_op op);

/* ---- softmax and loss ---------------------------------------------------------------- */
/* Row-wise, stable for large logits. out may be in. */
OKTO_API okto_status okto_softmax(okto_graph *g, okto_tensor *out, const okto_tensor *in);
/* Fused softmax + cross-entropy. labels: rows x 1, each the class index (0 .. cols-1) stored as
 * a float. loss (1 x 1) = mean over rows of -log softmax(logits)[label]; grad (rows x cols,
 * may be NULL) = (softmax(logits) - onehot(label)) / rows. loss may be NULL when grad is not. */
OKTO_API okto_status okto_softmax_xent(okto_graph *g, okto_tensor *loss, okto_tensor *grad,
                                       const okto_tensor *logits, const okto_tensor *labels);

/* ---- user kernels -------------------------------------------------------------------- */
typedef struct okto_kernel okto_kernel;
/* Builds source for the context's device(s); OKTO_EBUILD with the build log in
 * okto_last_error on failure. */
OKTO_API okto_status okto_kernel_create(okto_context *ctx, const char *source, const char *name,
                                        okto_kernel **out);
OKTO_API void okto_kernel_destroy(okto_kernel *k);

typedef enum okto_arg_kind {
    OKTO_ARG_R = 1,        /* tensor read: passed as (global float *buf, int offset) */
    OKTO_ARG_W = 2,        /* tensor written */
    OKTO_ARG_RW = 3,       /* tensor read and written */
    OKTO_ARG_VALUE = 4,    /* a by-value argument of size bytes */
    OKTO_ARG_LOCAL = 5     /* __local memory of size bytes */
} okto_arg_kind;

/* One kernel argument. A tensor argument occupies TWO kernel parameters: the buffer, then an
 * int offset in floats (non-zero for views). It declares how the kernel touches the tensor,
 * which is all okto knows to order tasks. */
typedef struct okto_arg {
    okto_arg_kind kind;
    const okto_tensor *tensor;
    const void *value;
    size_t size;
} okto_arg;

#define OKTO_ARG_TENSOR(k, t) ((okto_arg){(k), (t), NULL, 0})
#define OKTO_R(t) OKTO_ARG_TENSOR(OKTO_ARG_R, (t))
#define OKTO_W(t) OKTO_ARG_TENSOR(OKTO_ARG_W, (t))
#define OKTO_RW(t) OKTO_ARG_TENSOR(OKTO_ARG_RW, (t))
#define OKTO_VALUE(p) ((okto_arg){OKTO_ARG_VALUE, NULL, (p), sizeof(*(p))})
#define OKTO_LOCAL(bytes) ((okto_arg){OKTO_ARG_LOCAL, NULL, NULL, (bytes)})

/* Records one launch of k. Argument values are captured now. local may be NULL. */
OKTO_API okto_status okto_launch(okto_graph *g, okto_kernel *k, cl_uint work_dim,
                                 const size_t *global, const size_t *local, int nargs,
                                 const okto_arg *args);

#ifdef __cplusplus
}
#endif
#endif
