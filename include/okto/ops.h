/* okto/ops.h: ops record tasks into a graph. Each op checks its arguments when it is recorded
 * (NULL, shapes, dtypes, aliasing, tensors of another context): a negative status and, in
 * okto_last_error and okto_graph_status, the op, the argument at fault and the shapes and dtypes
 * involved. Nothing is recorded by a call that fails, and the graph keeps the error (graph.h).
 *
 * Tensors may be views of any strides unless an op says otherwise; where a kernel needs
 * contiguous data okto records a copy into a graph-owned temporary first (docs/ops.md lists
 * what each op takes). Outputs may be an input only where the op says so ("out may be in");
 * any other overlap between an output and another argument is refused.
 *
 * Threads: see graph.h (one recording thread per graph at a time). */
#ifndef OKTO_OPS_H
#define OKTO_OPS_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data movement and BLAS-1 -------------------------------------------------------------- */
/* x = value (for i32 tensors value is rounded toward zero). */
OKTO_API okto_status okto_fill(okto_graph *g, okto_tensor *x, float value);
/* dst = src, same shape and dtype, any strides. */
OKTO_API okto_status okto_copy(okto_graph *g, okto_tensor *dst, const okto_tensor *src);
/* dst = src converted to dst's dtype (same shape). */
OKTO_API okto_status okto_cast(okto_graph *g, okto_tensor *dst, const okto_tensor *src);
/* *out = a new contiguous tensor (the caller's to destroy) that the graph fills with src. A
 * transpose is this on a transposed view (okto_tensor_transpose / okto_tensor_permute). */
OKTO_API okto_status okto_contiguous(okto_graph *g, const okto_tensor *src, okto_tensor **out);
/* y += alpha x, same shape. */
OKTO_API okto_status okto_axpy(okto_graph *g, okto_tensor *y, float alpha, const okto_tensor *x);
/* x *= alpha. */
OKTO_API okto_status okto_scale(okto_graph *g, okto_tensor *x, float alpha);
/* Copy-lane tasks: host memory <-> tensor, numel elements in the tensor's own dtype. The tensor
 * must be contiguous. The host pointer must stay valid (and, for uploads, unchanged) until
 * okto_graph_wait returns. */
OKTO_API okto_status okto_upload(okto_graph *g, okto_tensor *t, const void *src);
OKTO_API okto_status okto_download(okto_graph *g, void *dst, const okto_tensor *t);
/* A host step inside the graph (a copy-lane task): once the tasks before it that touch t are
 * done, t (contiguous) is read into host (numel elements of t's dtype), then fn(user, finish)
 * is called on an OpenCL callback thread; it must return quickly and, from any thread, complete
 * the user event `finish` (clSetUserEventStatus: CL_COMPLETE, or a negative error that fails
 * the run) and release it. Then host is written back to t, and the tasks after it that touch t
 * run. The rest of the graph runs on meanwhile: what data-parallel training uses to all-reduce
 * each gradient while the backward goes on. order (may be NULL): a tensor every host task of a
 * sequence names, which makes them run one after another in recording order (no data of it
 * moves). host must stay valid until okto_graph_wait returns. */
typedef void (*okto_host_fn)(void *user, cl_event finish);
OKTO_API okto_status okto_host_task(okto_graph *g, okto_tensor *t, void *host, okto_host_fn fn,
                                    void *user, okto_tensor *order);

/* ---- matmul -------------------------------------------------------------------------------- */
enum {
    OKTO_TRANS_A = 1u << 0,
    OKTO_TRANS_B = 1u << 1,
    OKTO_ACCUMULATE = 1u << 2 /* okto_matmul and the _backward ops: add to the output */
};
/* c = op(a) op(b), or c += with OKTO_ACCUMULATE. The matrices are the last two dimensions; op()
 * transposes them. Tensors of rank 3 and 4 are batches of products: their leading dimensions
 * broadcast as NumPy's matmul does (aligned at the end, each equal or 1 in a and b, missing
 * ones count as 1) and c's leading dimensions must be exactly that broadcast: a [B, M, K] times
 * b [K, N] (or [1, K, N]) gives c [B, M, N] with b's one matrix serving every product. Views
 * whose matrices have a unit stride in either dimension go to the GEMM as they are (a
 * transposed view is a transposed operand), any batch strides included; others are made
 * contiguous first. Partitioned across lanes (row panels of one product, or ranges of a
 * batch). */
OKTO_API okto_status okto_matmul(okto_graph *g, okto_tensor *c, const okto_tensor *a,
                                 const okto_tensor *b, unsigned flags);
/* c = alpha op(a) op(b) + beta c, with okto_matmul's shapes and batches. OKTO_ACCUMULATE is
 * refused here (beta says it). */
OKTO_API okto_status okto_gemm(okto_graph *g, okto_tensor *c, float alpha, const okto_tensor *a,
                               const okto_tensor *b, float beta, unsigned flags);

/* ---- reductions ---------------------------------------------------------------------------- */
#define OKTO_REDUCE_MAP(X) X(SUM, "sum") X(MAX, "max") X(MIN, "min") X(MEAN, "mean")
typedef enum okto_reduce_op {
#define OKTO__REDUCE_ENUM(name, str) OKTO_REDUCE_##name,
    OKTO_REDUCE_MAP(OKTO__REDUCE_ENUM)
#undef OKTO__REDUCE_ENUM
    OKTO_REDUCE_COUNT
} okto_reduce_op;
/* Over dimension axis of in (axis in [-rank, rank), negative counting from the end as NumPy
 * does). out has in's shape with that dimension 1, or removed; same dtype; it must not overlap
 * in. MEAN divides the sum by the dimension's size. */
OKTO_API okto_status okto_reduce(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                                 okto_reduce_op op, int axis);
/* Over every element of in; out has one element. */
OKTO_API okto_status okto_reduce_all(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                                     okto_reduce_op op);

/* ---- elementwise ----------------------------------------------------------------------------- */
/* Unary maps. GELU_TANH is the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * (GPT-2, BERT); GELU_ERF the exact x Phi(x) = 0.5 x (1 + erf(x / sqrt(2))); SILU x sigmoid(x). */
#define OKTO_MAP_MAP(X)                                                                         \
    X(RELU, "relu") X(GELU_TANH, "gelu_tanh") X(SIGMOID, "sigmoid") X(TANH, "tanh")             \
    X(EXP, "exp") X(LOG, "log") X(NEG, "neg") X(SQRT, "sqrt") X(ABS, "abs") X(SQUARE, "square") \
    X(RSQRT, "rsqrt") X(GELU_ERF, "gelu_erf") X(SILU, "silu")
typedef enum okto_map_op {
#define OKTO__MAP_ENUM(name, str) OKTO_MAP_##name,
    OKTO_MAP_MAP(OKTO__MAP_ENUM)
#undef OKTO__MAP_ENUM
    OKTO_MAP_COUNT
} okto_map_op;
/* out = f(in), same shape and dtype (f32, f16, bf16); out may be in. */
OKTO_API okto_status okto_map(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                              okto_map_op op);
/* The gradient of okto_map: dx = dy * f'(x) (or dx += with OKTO_ACCUMULATE). x is the map's
 * input. dx may be dy. */
OKTO_API okto_status okto_map_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                       const okto_tensor *x, okto_map_op op, unsigned flags);

/* Binary ops. RELU_GRAD is a * (b > 0): upstream gradient a, pre-activation b. */
#define OKTO_ZIP_MAP(X)                                                                         \
    X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div") X(MAX, "max") X(MIN, "min")         \
    X(RELU_GRAD, "relu_grad")
typedef enum okto_zip_op {
#define OKTO__ZIP_ENUM(name, str) OKTO_ZIP_##name,
    OKTO_ZIP_MAP(OKTO__ZIP_ENUM)
#undef OKTO__ZIP_ENUM
    OKTO_ZIP_COUNT
} okto_zip_op;
/* out = a (op) b with NumPy broadcasting: out's shape is the broadcast of a's and b's (each
 * dimension equal or 1 in one of them, shapes aligned at the last dimension). All three of one
 * dtype. out may be a or b (the same view), never another view that overlaps them. */
OKTO_API okto_status okto_zip(okto_graph *g, okto_tensor *out, const okto_tensor *a,
                              const okto_tensor *b, okto_zip_op op);
/* out = a (op) s for a scalar s. */
OKTO_API okto_status okto_zip_scalar(okto_graph *g, okto_tensor *out, const okto_tensor *a,
                                     float s, okto_zip_op op);
/* The gradients of okto_zip (out = a op b): da = dy * d(a op b)/da, summed over the dimensions
 * a was broadcast along (so da has a's shape), and likewise db; either may be NULL. With
 * OKTO_ACCUMULATE they are added to. dy has the result's shape. */
OKTO_API okto_status okto_zip_backward(okto_graph *g, okto_tensor *da, okto_tensor *db,
                                       const okto_tensor *dy, const okto_tensor *a,
                                       const okto_tensor *b, okto_zip_op op, unsigned flags);
/* out = in summed over the dimensions out broadcasts to in's shape (out's shape must broadcast
 * to in's: each dimension equal or 1, or missing at the front). With OKTO_ACCUMULATE, out += .
 * The reduction a broadcast's gradient needs. */
OKTO_API okto_status okto_sum_to(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                                 unsigned flags);

/* ---- softmax and loss -------------------------------------------------------------------- */
/* Over the last dimension, stable for large logits. out may be in. */
OKTO_API okto_status okto_softmax(okto_graph *g, okto_tensor *out, const okto_tensor *in);
/* Fused softmax + cross-entropy over the last dimension of logits [rows, classes] (any leading
 * dimensions are rows). labels: i32, one per row (shape [rows] or [rows, 1]), each in
 * [0, classes). loss (one element) = mean over rows of -log softmax(logits)[label]; grad
 * (logits' shape, may be NULL) = (softmax(logits) - onehot(label)) / rows. loss may be NULL when
 * grad is not. A label out of range is found on the device: the run fails with OKTO_EINVAL
 * naming the op and the row (the loss of that row is NaN). */
OKTO_API okto_status okto_softmax_xent(okto_graph *g, okto_tensor *loss, okto_tensor *grad,
                                       const okto_tensor *logits, const okto_tensor *labels);

/* ==== ops1: normalisation, softmax gradients, cross-entropy, embedding, dropout, argmax and the
 * optimizers (lib/ops/norm.c, softmax_ext.c, xent.c, embed.c, dropout.c, argmax.c, optim.c) ====
 * Conventions: data tensors are f32, f16 or bf16 (computed in float); statistics and optimizer
 * state are float32. The kernels take contiguous blocks: an input of another layout is read
 * through a contiguous copy and an output written through a temporary (docs/ops.md: "any strides
 * (copied)"). A backward op writes the gradients of the forward's inputs (dx, dweight, ...) from
 * dy; a NULL gradient is skipped (not all may be NULL); OKTO_ACCUMULATE adds to every non-NULL
 * one instead of overwriting. "dx may be dy" holds without OKTO_ACCUMULATE only. Row ops treat
 * every dimension but the last as rows. Same bits on every run and under every policy. */

/* ---- normalisation ---- */
/* Layer normalisation over the last dimension of x: y = (x - mean) * rstd * weight + bias with
 * rstd = 1 / sqrt(var + eps) (biased variance). weight, bias: x's dtype, [cols], or NULL (1, 0).
 * mean, rstd: optional float32 outputs of numel rows (the backward's inputs; NULL when not
 * training). y: x's shape and dtype; y may be x. eps > 0. */
OKTO_API okto_status okto_layernorm(okto_graph *g, okto_tensor *y, okto_tensor *mean,
                                    okto_tensor *rstd, const okto_tensor *x,
                                    const okto_tensor *weight, const okto_tensor *bias, float eps);
/* dx (x's shape), dweight, dbias ([cols]) from dy and the forward's x, weight (NULL if it had
 * none), mean and rstd. dweight and dbias are sums over the rows in a fixed blocked order. */
OKTO_API okto_status okto_layernorm_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dweight,
                                             okto_tensor *dbias, const okto_tensor *dy,
                                             const okto_tensor *x, const okto_tensor *weight,
                                             const okto_tensor *mean, const okto_tensor *rstd,
                                             unsigned flags);
/* RMS normalisation: y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps); weight [cols] or
 * NULL; rstd an optional float32 output of numel rows. y may be x. */
OKTO_API okto_status okto_rmsnorm(okto_graph *g, okto_tensor *y, okto_tensor *rstd,
                                  const okto_tensor *x, const okto_tensor *weight, float eps);
OKTO_API okto_status okto_rmsnorm_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dweight,
                                           const okto_tensor *dy, const okto_tensor *x,
                                           const okto_tensor *weight, const okto_tensor *rstd,
                                           unsigned flags);

/* ---- softmax gradients and log-softmax (over the last dimension) ---- */
/* dx = y * (dy - sum(dy * y)) from okto_softmax's output y. */
OKTO_API okto_status okto_softmax_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                           const okto_tensor *y, unsigned flags);
/* y = (x - max) - log(sum(exp(x - max))): no softmax is formed, so it keeps its precision far
 * below log(FLT_MIN). y may be x. */
OKTO_API okto_status okto_log_softmax(okto_graph *g, okto_tensor *y, const okto_tensor *x);
/* dx = dy - exp(y) * sum(dy) from okto_log_softmax's output y. */
OKTO_API okto_status okto_log_softmax_backward(okto_graph *g, okto_tensor *dx,
                                               const okto_tensor *dy, const okto_tensor *y,
                                               unsigned flags);

/* ---- cross-entropy ---- */
/* ignore_index that ignores nothing (only a label of INT_MIN itself would still be ignored). */
#define OKTO_IGNORE_NONE (-2147483647 - 1)
/* Cross-entropy of logits [rows, classes] (leading dimensions are rows) against int32 labels
 * (numel rows, each in [0, classes)): loss (one element, any float dtype) = the mean over the
 * rows whose label is not ignore_index of -log softmax(logits)[label]; rows labelled
 * ignore_index (PyTorch's default is -100; OKTO_IGNORE_NONE for none) add nothing and are not
 * counted (every row ignored: NaN, as PyTorch). The count and the mean stay on the device, so
 * a recorded graph replays with new labels. stat: an optional float32 output of 2 * rows
 * elements (per row the max and log-sum-exp) for the backward; NULL when not training. A label
 * out of range that is not ignore_index fails the run with OKTO_EINVAL naming the op and the
 * first such row (its loss, and so the mean, is NaN). */
OKTO_API okto_status okto_cross_entropy(okto_graph *g, okto_tensor *loss, okto_tensor *stat,
                                        const okto_tensor *logits, const okto_tensor *labels,
                                        int ignore_index);
/* dlogits = dloss[0] * d(mean loss)/dlogits = dloss[0] * (softmax - onehot) / count for counted
 * rows, 0 for ignored ones (nothing added when accumulating). dloss: one element (any float
 * dtype) on the device, the upstream gradient (1 for the loss itself, a loss scale otherwise),
 * so a replayed graph needs no host value. stat: the forward's, or NULL (then recomputed, and
 * a bad label reported by this op too; with stat a bad row's gradient is NaN and the forward
 * reports it). dlogits may be logits. */
OKTO_API okto_status okto_cross_entropy_backward(okto_graph *g, okto_tensor *dlogits,
                                                 const okto_tensor *dloss,
                                                 const okto_tensor *logits,
                                                 const okto_tensor *labels,
                                                 const okto_tensor *stat, int ignore_index,
                                                 unsigned flags);

/* ---- embedding ---- */
/* out[t, :] = table[ids[t], :]: table [vocab, dim], ids int32 (any shape, ntok elements), out
 * of ntok rows of dim (e.g. ids' shape + [dim]), table's dtype. An id outside [0, vocab) gives
 * a zero row and fails the run with OKTO_EINVAL naming the op and the first such token. */
OKTO_API okto_status okto_embedding(okto_graph *g, okto_tensor *out, const okto_tensor *table,
                                    const okto_tensor *ids);
/* dtable [vocab, dim] = the sum over the tokens with ids[t] == v, in increasing t, of
 * dout[t, :] (a stable counting sort, then a segmented sum: no float atomics, the same bits
 * every run). Tokens with id padding_idx add nothing (its row gets 0, or keeps its value with
 * OKTO_ACCUMULATE); padding_idx -1 for none. Out-of-range ids are reported as by the forward. */
OKTO_API okto_status okto_embedding_backward(okto_graph *g, okto_tensor *dtable,
                                             const okto_tensor *dout, const okto_tensor *ids,
                                             int padding_idx, unsigned flags);

/* ---- dropout ---- */
/* y = mask * x / (1 - p), p the probability of dropping an element (p <= 0: y = x; p >= 1:
 * y = 0). The mask of element i (row-major in x's shape) is drawn from Philox-4x32-10 keyed by
 * seed, an int32 tensor of 2 elements on the device (its bits as two uint32 words), and
 * `stream` (give each dropout site of a graph its own): the backward regenerates it, nothing is
 * saved. A replayed graph draws a new mask when seed changes: okto_tensor_write it between
 * runs, or record okto_seed_advance once per step. y may be x. */
OKTO_API okto_status okto_dropout(okto_graph *g, okto_tensor *y, const okto_tensor *x, float p,
                                  const okto_tensor *seed, unsigned stream);
/* dx = mask * dy / (1 - p) with the forward's p, seed and stream (and seed's value then). */
OKTO_API okto_status okto_dropout_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                           float p, const okto_tensor *seed, unsigned stream,
                                           unsigned flags);
/* seed += 1 as one 64-bit value (seed[0] the low word), on the device: a fresh mask per step.
 * Record it after the step's last dropout backward. */
OKTO_API okto_status okto_seed_advance(okto_graph *g, okto_tensor *seed);

/* ---- argmax ---- */
/* out[r] = the index of the largest element of row r of in (its last dimension; for another
 * axis pass an okto_tensor_transpose view, which is copied), the first on ties, a NaN counting
 * as the largest. in: f32, f16, bf16 or i32 (compared as floats); out: int32 of numel rows. */
OKTO_API okto_status okto_argmax(okto_graph *g, okto_tensor *out, const okto_tensor *in);

/* ---- optimizers ---- */
/* sched: a float32 tensor of 4 elements on the device, so a replayed graph needs no host value:
 *   sched[0] learning rate (the host writes it when it changes),
 *   sched[1] step count t (0 before the first step; okto_sched_advance adds 1),
 *   sched[2] AdamW's lr / (1 - beta1^t), sched[3] 1 / sqrt(1 - beta2^t) (okto_adamw_prepare).
 * A step records: okto_sched_advance, okto_adamw_prepare (AdamW), then each parameter's step.
 * gscale: optional one-element float32 the gradients are multiplied by (element 0 of
 * okto_clip_grad_norm's output, or 1 / loss scale); when it is not finite the step is skipped,
 * parameters and state unchanged. NULL: 1.
 * Parameters and gradients: f32, f16 or bf16, one shape; state (momentum_buf, m, v) float32 of
 * that shape, zeroed before the first step (okto_fill). */
OKTO_API okto_status okto_sched_advance(okto_graph *g, okto_tensor *sched);
OKTO_API okto_status okto_adamw_prepare(okto_graph *g, okto_tensor *sched, float beta1,
                                        float beta2);
/* PyTorch's SGD (dampening 0): d = grad * gs + weight_decay * param; with momentum != 0,
 * buf = momentum * buf + d and d = nesterov ? d + momentum * buf : buf; param -= lr * d.
 * momentum_buf may be NULL when momentum is 0. */
OKTO_API okto_status okto_sgd(okto_graph *g, okto_tensor *param, const okto_tensor *grad,
                              okto_tensor *momentum_buf, const okto_tensor *sched,
                              const okto_tensor *gscale, float momentum, float weight_decay,
                              int nesterov);
/* PyTorch's AdamW: g' = grad * gs; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
 * param = param (1 - lr wd) - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
OKTO_API okto_status okto_adamw(okto_graph *g, okto_tensor *param, const okto_tensor *grad,
                                okto_tensor *m, okto_tensor *v, const okto_tensor *sched,
                                const okto_tensor *gscale, float beta1, float beta2, float eps,
                                float weight_decay);
/* The global L2 norm over the n gradient tensors (any float dtypes and layouts), in a fixed
 * order: out (float32, 2 elements) = {scale, norm} with scale = min(1, max_norm / (norm +
 * 1e-6)), NaN when the norm is not finite (so a step given it as gscale is skipped). Pass a
 * one-element view of out as the steps' gscale. */
OKTO_API okto_status okto_clip_grad_norm(okto_graph *g, int n, const okto_tensor *const *grads,
                                         float max_norm, okto_tensor *out);
/* One launch per storage over many parameters: okto_sgd / okto_adamw of params[i] with
 * grads[i] and state[i] for i < n, decays[i] each one's weight decay (host values, or NULL for
 * 0). Tensors must be contiguous; params[i] must not overlap another argument. The same bits as
 * the single-tensor ops. */
OKTO_API okto_status okto_sgd_multi(okto_graph *g, int n, okto_tensor *const *params,
                                    const okto_tensor *const *grads,
                                    okto_tensor *const *momentum_bufs, const float *decays,
                                    const okto_tensor *sched, const okto_tensor *gscale,
                                    float momentum, int nesterov);
OKTO_API okto_status okto_adamw_multi(okto_graph *g, int n, okto_tensor *const *params,
                                      const okto_tensor *const *grads, okto_tensor *const *ms,
                                      okto_tensor *const *vs, const float *decays,
                                      const okto_tensor *sched, const okto_tensor *gscale,
                                      float beta1, float beta2, float eps);
/* ==== end of ops1 ==== */
/* ==== ops2: attention, convolution, pooling, concat and split ================================= */

/* ---- attention ----------------------------------------------------------------------------- */
/* Fused scaled dot-product attention: o = softmax(scale q k^T + mask) v per batch and head, the
 * T x T scores never stored. q and o are [B, H, Tq, D], k and v [B, H, Tk, D] (one H for all),
 * one float dtype; views with D contiguous go to the kernels as they are, so heads sliced and
 * permuted out of a fused [B, T, 3 H, D] projection (okto_tensor_slice + okto_tensor_permute)
 * cost no copy; other views are copied first. scale: 0 means 1/sqrt(D). causal: query i sees
 * keys j <= i (PyTorch's is_causal). lse (may be NULL): f32 [B, H, Tq], the natural-log
 * logsumexp of each query's scaled scores, which the backward takes. Refused with
 * OKTO_ENOTSUP: D > 128, and causal with Tq != Tk (the kernels would align the sequences' ends,
 * PyTorch's is_causal their starts). o and lse may overlap nothing; q, k, v may overlap each
 * other. Partitioned across lanes by batch (by head when B = 1). */
OKTO_API okto_status okto_attention(okto_graph *g, okto_tensor *o, okto_tensor *lse,
                                    const okto_tensor *q, const okto_tensor *k,
                                    const okto_tensor *v, float scale, int causal);
/* Its gradient: dq, dk, dv (shaped as q, k, v; any may be NULL, not all) of sum(dout * o), from
 * the forward's inputs, its output o and its lse (required), with the forward's scale and
 * causal. flags: OKTO_ACCUMULATE adds to the gradients. The gradients may overlap nothing
 * (they may be disjoint slices of one fused gradient tensor). */
OKTO_API okto_status okto_attention_backward(okto_graph *g, okto_tensor *dq, okto_tensor *dk,
                                             okto_tensor *dv, const okto_tensor *dout,
                                             const okto_tensor *q, const okto_tensor *k,
                                             const okto_tensor *v, const okto_tensor *o,
                                             const okto_tensor *lse, float scale, int causal,
                                             unsigned flags);

/* ---- convolution --------------------------------------------------------------------------- */
/* 2-D convolution (cross-correlation, as PyTorch's conv2d), groups = 1: x [N, C, H, W], w [Cout,
 * C, KH, KW], bias [Cout] (may be NULL), y [N, Cout, OH, OW] with OH = (H + 2 pad_h - dil_h (KH -
 * 1) - 1) / stride_h + 1 (floor; likewise OW), zero padding. One float dtype, any strides.
 * Strides and dilations >= 1, paddings >= 0; a window larger than the padded input is refused.
 * Computed as im2col + one batched matmul in float32 (f16/bf16 converted around it), with a
 * graph temporary of N C KH KW OH OW floats for the columns. y may overlap nothing. */
OKTO_API okto_status okto_conv2d(okto_graph *g, okto_tensor *y, const okto_tensor *x,
                                 const okto_tensor *w, const okto_tensor *bias, int stride_h,
                                 int stride_w, int pad_h, int pad_w, int dil_h, int dil_w);
/* Its gradient from dy (y's shape): dx (x's shape), dw (w's), dbias ([Cout]); any may be NULL,
 * not all. The forward's x and w and geometry. flags: OKTO_ACCUMULATE adds to the gradients. */
OKTO_API okto_status okto_conv2d_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dw,
                                          okto_tensor *dbias, const okto_tensor *dy,
                                          const okto_tensor *x, const okto_tensor *w,
                                          int stride_h, int stride_w, int pad_h, int pad_w,
                                          int dil_h, int dil_w, unsigned flags);

/* ---- pooling -------------------------------------------------------------------------------- */
/* 2-D pooling over x [N, C, H, W] into y [N, C, OH, OW], OH = (H + 2 ph - kh) / sh + 1 (floor
 * mode; likewise OW), as PyTorch's defaults: padding at most half the window (larger is
 * refused), no dilation. Any float dtype (computed in float), any strides. y (and argmax) may
 * overlap nothing. */
/* Max pool, padding -inf. argmax (may be NULL): i32 [N, C, OH, OW], the plane index ih W + iw of
 * the first maximum of each window in window order (a NaN wins, as in PyTorch); the backward
 * takes it. */
OKTO_API okto_status okto_max_pool2d(okto_graph *g, okto_tensor *y, okto_tensor *argmax,
                                     const okto_tensor *x, int kh, int kw, int sh, int sw, int ph,
                                     int pw);
/* dx (x's shape) = dy routed to each window's argmax (summed where windows share one).
 * flags: OKTO_ACCUMULATE. */
OKTO_API okto_status okto_max_pool2d_backward(okto_graph *g, okto_tensor *dx,
                                              const okto_tensor *dy, const okto_tensor *argmax,
                                              int kh, int kw, int sh, int sw, int ph, int pw,
                                              unsigned flags);
/* Average pool with PyTorch's count_include_pad = true: each window's sum divided by its size
 * within the padded input (padding counts as zeros). */
OKTO_API okto_status okto_avg_pool2d(okto_graph *g, okto_tensor *y, const okto_tensor *x, int kh,
                                     int kw, int sh, int sw, int ph, int pw);
/* dx (x's shape) = each dy spread over its window, divided as the forward. flags:
 * OKTO_ACCUMULATE. */
OKTO_API okto_status okto_avg_pool2d_backward(okto_graph *g, okto_tensor *dx,
                                              const okto_tensor *dy, int kh, int kw, int sh,
                                              int sw, int ph, int pw, unsigned flags);
/* y [N, C, 1, 1] (or [N, C]) = the mean of each H x W plane of x [N, C, H, W]. */
OKTO_API okto_status okto_global_avg_pool2d(okto_graph *g, okto_tensor *y, const okto_tensor *x);
/* dx [N, C, H, W] = dy / (H W) over each plane. flags: OKTO_ACCUMULATE. */
OKTO_API okto_status okto_global_avg_pool2d_backward(okto_graph *g, okto_tensor *dx,
                                                     const okto_tensor *dy, unsigned flags);

/* ---- concat and split ------------------------------------------------------------------------ */
/* out = the n tensors ins[0 .. n) joined along dimension dim (in [-rank, rank), negative from
 * the end): every input of out's rank and dtype, equal to out in every other dimension, their
 * sizes along dim summing to out's. Copies into slices of out (okto_tensor_slice + okto_copy),
 * any strides, every dtype. out may overlap no input; inputs may overlap each other. The
 * gradient of concat is okto_split of dout into the inputs' gradients (and split's is concat):
 * to accumulate, split into temporaries and okto_axpy them. */
OKTO_API okto_status okto_concat(okto_graph *g, okto_tensor *out, int n,
                                 const okto_tensor *const *ins, int dim);
/* outs[0 .. n) = consecutive slices of in along dim, each as long as that output is there
 * (their sizes summing to in's); otherwise as okto_concat. Outputs may overlap neither in nor
 * each other. */
OKTO_API okto_status okto_split(okto_graph *g, int n, okto_tensor *const *outs,
                                const okto_tensor *in, int dim);

/* ---- user kernels ---------------------------------------------------------------------------- */
typedef struct okto_kernel okto_kernel;
/* Builds source for the context's device(s); OKTO_EBUILD with the build log in okto_last_error
 * on failure, OKTO_EINVAL when the source has no kernel of that name. The kernel keeps its
 * context alive; launches recorded with it keep working after okto_kernel_destroy. */
OKTO_API okto_status okto_kernel_create(okto_context *ctx, const char *source, const char *name,
                                        okto_kernel **out);
OKTO_API okto_status okto_kernel_destroy(okto_kernel *k);

typedef enum okto_arg_kind {
    OKTO_ARG_R = 1,        /* tensor read: passed as (global T *buf, ulong offset) */
    OKTO_ARG_W = 2,        /* tensor written */
    OKTO_ARG_RW = 3,       /* tensor read and written */
    OKTO_ARG_VALUE = 4,    /* a by-value argument of size bytes */
    OKTO_ARG_LOCAL = 5     /* __local memory of size bytes */
} okto_arg_kind;

/* One kernel argument. A tensor argument occupies TWO kernel parameters: the buffer, then a
 * ulong offset in elements (non-zero for views); it must be contiguous. It declares how the
 * kernel touches the tensor, which is all okto knows to order tasks. */
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

/* Records one launch of k. Argument values are captured now. local may be NULL; when given,
 * every local[d] >= 1. The argument count must match the kernel's parameters (a tensor counts
 * twice) and the __local arguments plus the kernel's own local memory must fit the device. */
OKTO_API okto_status okto_launch(okto_graph *g, okto_kernel *k, cl_uint work_dim,
                                 const size_t *global, const size_t *local, int nargs,
                                 const okto_arg *args);

#ifdef __cplusplus
}
#endif
#endif
