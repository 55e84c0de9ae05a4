"""okto/_ffi_build.py: the cffi (API mode) description of okto's public C API.

Meson runs this at build time: `python _ffi_build.py OUT.c` writes the C source of the
extension module okto._okto_ffi, which the C compiler then builds against the real headers
(include/okto/*.h) and the static library of the same checkout. In API mode cffi checks every
declaration below against those headers when the extension is compiled, so a drifted
signature or struct is a build error, not a wrong call at run time.

The enums are not written out here: the C part (SOURCE) expands the public X-macro tables
(OKTO_MAP_MAP, OKTO_ZIP_MAP, ...) into arrays that okto/_enums.py turns into Python enums, so
an op added to a table in C appears in Python without editing this package.

Only functions that okto's headers declare (and a few OpenCL entry points for interop) are
listed; cffi releases the GIL around every call.
"""

import sys

import cffi

CDEF = r"""
/* ---- OpenCL types (opaque here; the compiler sees the real ones) ---- */
typedef struct _cl_context *cl_context;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_event *cl_event;
typedef int... cl_int;
typedef int... cl_uint;
typedef int... cl_device_info;
typedef int... cl_platform_info;
typedef int... cl_event_info;

/* ---- status.h ---- */
typedef int... okto_status;
const char *okto_status_str(okto_status s);
const char *okto_status_name(okto_status s);
const char *okto_last_error(const struct okto_context *ctx);

/* ---- okto.h ---- */
const char *okto_version(void);

/* ---- context.h ---- */
typedef struct okto_context okto_context;
typedef int... okto_sched;
typedef int... okto_log_level;
const char *okto_sched_name(okto_sched s);
okto_status okto_sched_from_name(const char *name, okto_sched *out);
typedef struct okto_config {
    size_t size;
    int device_index;
    char device_name[128];
    int compute_lanes;
    int copy_lanes;
    int subdevices;
    int in_order;
    okto_sched sched;
    okto_log_level log;
    char trace_path[256];
    okto_status env_status;
    char env_error[256];
    ...;
} okto_config;
void okto_config_init(okto_config *cfg);
okto_status okto_context_create(const okto_config *cfg, okto_context **out);
okto_status okto_context_create_from_cl(cl_context cl_ctx, cl_device_id device,
                                        const okto_config *cfg, okto_context **out);
okto_status okto_context_destroy(okto_context *ctx);
int okto_context_lane_count(const okto_context *ctx);
int okto_context_compute_lanes(const okto_context *ctx);
int okto_context_copy_lanes(const okto_context *ctx);
int okto_context_in_order(const okto_context *ctx);
cl_context okto_context_cl(const okto_context *ctx);
cl_device_id okto_context_device(const okto_context *ctx);
okto_sched okto_context_sched(const okto_context *ctx);
typedef struct okto_device_info {
    int index;
    cl_platform_id platform;
    cl_device_id device;
    int compute_lanes;
    int copy_lanes;
    int is_default;
    ...;
} okto_device_info;
okto_status okto_devices(okto_device_info **out, int *count);
void okto_devices_free(okto_device_info *devices);
void okto_device_lanes(cl_device_id device, int *compute, int *copy);

/* ---- tensor.h ---- */
typedef int... okto_dtype;
typedef struct okto_tensor okto_tensor;
const char *okto_dtype_name(okto_dtype dt);
size_t okto_dtype_size(okto_dtype dt);
okto_status okto_tensor_create(okto_context *ctx, okto_dtype dtype, int rank,
                               const size_t *shape, okto_tensor **out);
okto_status okto_tensor_from_cl(okto_context *ctx, cl_mem mem, size_t offset, okto_dtype dtype,
                                int rank, const size_t *shape, int take_ownership,
                                okto_tensor **out);
okto_status okto_tensor_slice(const okto_tensor *t, int dim, size_t start, size_t len,
                              okto_tensor **out);
okto_status okto_tensor_view(const okto_tensor *t, size_t row0, size_t rows, okto_tensor **out);
okto_status okto_tensor_reshape(const okto_tensor *t, int rank, const size_t *shape,
                                okto_tensor **out);
okto_status okto_tensor_permute(const okto_tensor *t, const int *perm, okto_tensor **out);
okto_status okto_tensor_transpose(const okto_tensor *t, int d0, int d1, okto_tensor **out);
okto_status okto_tensor_expand(const okto_tensor *t, int rank, const size_t *shape,
                               okto_tensor **out);
int okto_tensor_rank(const okto_tensor *t);
size_t okto_tensor_dim(const okto_tensor *t, int dim);
int64_t okto_tensor_stride(const okto_tensor *t, int dim);
okto_dtype okto_tensor_dtype(const okto_tensor *t);
size_t okto_tensor_numel(const okto_tensor *t);
size_t okto_tensor_nbytes(const okto_tensor *t);
int okto_tensor_is_contiguous(const okto_tensor *t);
const char *okto_tensor_describe(const okto_tensor *t, char *buf, size_t len);
okto_context *okto_tensor_context(const okto_tensor *t);
cl_mem okto_tensor_cl_mem(const okto_tensor *t);
size_t okto_tensor_offset(const okto_tensor *t);
okto_status okto_tensor_write(okto_tensor *t, const void *src);
okto_status okto_tensor_read(const okto_tensor *t, void *dst);
okto_status okto_tensor_write_f32(okto_tensor *t, const float *src);
okto_status okto_tensor_read_f32(const okto_tensor *t, float *dst);
okto_status okto_tensor_destroy(okto_tensor *t);
uint16_t okto_f32_to_f16(float f);
float okto_f16_to_f32(uint16_t h);
uint16_t okto_f32_to_bf16(float f);
float okto_bf16_to_f32(uint16_t h);

/* ---- report.h, graph.h ---- */
typedef struct okto_report {
    okto_sched sched;
    okto_sched policy;
    int tasks;
    int lanes;
    double span_ms;
    double busy_ms;
    double utilization;
    double host_ms;
    ...;
} okto_report;
typedef struct okto_lane_report {
    double busy_ms;
    int tasks;
    int is_copy;
    int in_order;
    ...;
} okto_lane_report;
typedef struct okto_graph okto_graph;
okto_status okto_graph_create(okto_context *ctx, okto_graph **out);
okto_status okto_graph_set_sched(okto_graph *g, okto_sched sched);
int okto_graph_task_count(const okto_graph *g);
okto_status okto_graph_status(const okto_graph *g, const char **msg);
void okto_graph_clear_error(okto_graph *g);
okto_status okto_graph_launch(okto_graph *g);
okto_status okto_graph_launch_ex(okto_graph *g, cl_uint nwait, const cl_event *wait_list,
                                 cl_event *done);
okto_status okto_graph_wait(okto_graph *g);
okto_status okto_graph_run(okto_graph *g);
okto_status okto_graph_report(const okto_graph *g, okto_report *out);
okto_status okto_graph_report_lane(const okto_graph *g, int lane, okto_lane_report *out);
okto_status okto_graph_trace(const okto_graph *g, const char *path);
okto_status okto_graph_destroy(okto_graph *g);

/* ---- ops.h ---- */
#define OKTO_TRANS_A ...
#define OKTO_TRANS_B ...
#define OKTO_ACCUMULATE ...
typedef int... okto_reduce_op;
typedef int... okto_map_op;
typedef int... okto_zip_op;
okto_status okto_fill(okto_graph *g, okto_tensor *x, float value);
okto_status okto_copy(okto_graph *g, okto_tensor *dst, const okto_tensor *src);
okto_status okto_cast(okto_graph *g, okto_tensor *dst, const okto_tensor *src);
okto_status okto_contiguous(okto_graph *g, const okto_tensor *src, okto_tensor **out);
okto_status okto_axpy(okto_graph *g, okto_tensor *y, float alpha, const okto_tensor *x);
okto_status okto_scale(okto_graph *g, okto_tensor *x, float alpha);
okto_status okto_upload(okto_graph *g, okto_tensor *t, const void *src);
okto_status okto_download(okto_graph *g, void *dst, const okto_tensor *t);
okto_status okto_matmul(okto_graph *g, okto_tensor *c, const okto_tensor *a,
                        const okto_tensor *b, unsigned flags);
okto_status okto_gemm(okto_graph *g, okto_tensor *c, float alpha, const okto_tensor *a,
                      const okto_tensor *b, float beta, unsigned flags);
okto_status okto_reduce(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                        okto_reduce_op op, int axis);
okto_status okto_reduce_all(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                            okto_reduce_op op);
okto_status okto_map(okto_graph *g, okto_tensor *out, const okto_tensor *in, okto_map_op op);
okto_status okto_zip(okto_graph *g, okto_tensor *out, const okto_tensor *a,
                     const okto_tensor *b, okto_zip_op op);
okto_status okto_zip_scalar(okto_graph *g, okto_tensor *out, const okto_tensor *a, float s,
                            okto_zip_op op);
okto_status okto_softmax(okto_graph *g, okto_tensor *out, const okto_tensor *in);
okto_status okto_softmax_xent(okto_graph *g, okto_tensor *loss, okto_tensor *grad,
                              const okto_tensor *logits, const okto_tensor *labels);

/* ---- ops.h: gradients of the elementwise ops, ops1 and ops2 ---- */
okto_status okto_map_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                              const okto_tensor *x, okto_map_op op, unsigned flags);
okto_status okto_zip_backward(okto_graph *g, okto_tensor *da, okto_tensor *db,
                              const okto_tensor *dy, const okto_tensor *a,
                              const okto_tensor *b, okto_zip_op op, unsigned flags);
okto_status okto_sum_to(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                        unsigned flags);
okto_status okto_layernorm(okto_graph *g, okto_tensor *y, okto_tensor *mean,
                           okto_tensor *rstd, const okto_tensor *x,
                           const okto_tensor *weight, const okto_tensor *bias, float eps);
okto_status okto_layernorm_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dweight,
                                    okto_tensor *dbias, const okto_tensor *dy,
                                    const okto_tensor *x, const okto_tensor *weight,
                                    const okto_tensor *mean, const okto_tensor *rstd,
                                    unsigned flags);
okto_status okto_rmsnorm(okto_graph *g, okto_tensor *y, okto_tensor *rstd,
                         const okto_tensor *x, const okto_tensor *weight, float eps);
okto_status okto_rmsnorm_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dweight,
                                  const okto_tensor *dy, const okto_tensor *x,
                                  const okto_tensor *weight, const okto_tensor *rstd,
                                  unsigned flags);
okto_status okto_softmax_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                  const okto_tensor *y, unsigned flags);
okto_status okto_log_softmax(okto_graph *g, okto_tensor *y, const okto_tensor *x);
okto_status okto_log_softmax_backward(okto_graph *g, okto_tensor *dx,
                                      const okto_tensor *dy, const okto_tensor *y,
                                      unsigned flags);
#define OKTO_IGNORE_NONE ...
okto_status okto_cross_entropy(okto_graph *g, okto_tensor *loss, okto_tensor *stat,
                               const okto_tensor *logits, const okto_tensor *labels,
                               int ignore_index);
okto_status okto_cross_entropy_backward(okto_graph *g, okto_tensor *dlogits,
                                        const okto_tensor *dloss, const okto_tensor *logits,
                                        const okto_tensor *labels, const okto_tensor *stat,
                                        int ignore_index, unsigned flags);
okto_status okto_embedding(okto_graph *g, okto_tensor *out, const okto_tensor *table,
                           const okto_tensor *ids);
okto_status okto_embedding_backward(okto_graph *g, okto_tensor *dtable,
                                    const okto_tensor *dout, const okto_tensor *ids,
                                    int padding_idx, unsigned flags);
okto_status okto_dropout(okto_graph *g, okto_tensor *y, const okto_tensor *x, float p,
                         const okto_tensor *seed, unsigned stream);
okto_status okto_dropout_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                  float p, const okto_tensor *seed, unsigned stream,
                                  unsigned flags);
okto_status okto_seed_advance(okto_graph *g, okto_tensor *seed);
okto_status okto_argmax(okto_graph *g, okto_tensor *out, const okto_tensor *in);
okto_status okto_sched_advance(okto_graph *g, okto_tensor *sched);
okto_status okto_adamw_prepare(okto_graph *g, okto_tensor *sched, float beta1, float beta2);
okto_status okto_sgd(okto_graph *g, okto_tensor *param, const okto_tensor *grad,
                     okto_tensor *momentum_buf, const okto_tensor *sched,
                     const okto_tensor *gscale, float momentum, float weight_decay,
                     int nesterov);
okto_status okto_adamw(okto_graph *g, okto_tensor *param, const okto_tensor *grad,
                       okto_tensor *m, okto_tensor *v, const okto_tensor *sched,
                       const okto_tensor *gscale, float beta1, float beta2, float eps,
                       float weight_decay);
okto_status okto_clip_grad_norm(okto_graph *g, int n, const okto_tensor *const *grads,
                                float max_norm, okto_tensor *out);
okto_status okto_attention(okto_graph *g, okto_tensor *o, okto_tensor *lse,
                           const okto_tensor *q, const okto_tensor *k, const okto_tensor *v,
                           float scale, int causal);
okto_status okto_attention_backward(okto_graph *g, okto_tensor *dq, okto_tensor *dk,
                                    okto_tensor *dv, const okto_tensor *dout,
                                    const okto_tensor *q, const okto_tensor *k,
                                    const okto_tensor *v, const okto_tensor *o,
                                    const okto_tensor *lse, float scale, int causal,
                                    unsigned flags);
okto_status okto_conv2d(okto_graph *g, okto_tensor *y, const okto_tensor *x,
                        const okto_tensor *w, const okto_tensor *bias, int stride_h,
                        int stride_w, int pad_h, int pad_w, int dil_h, int dil_w);
okto_status okto_conv2d_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dw,
                                 okto_tensor *dbias, const okto_tensor *dy,
                                 const okto_tensor *x, const okto_tensor *w, int stride_h,
                                 int stride_w, int pad_h, int pad_w, int dil_h, int dil_w,
                                 unsigned flags);
okto_status okto_max_pool2d(okto_graph *g, okto_tensor *y, okto_tensor *argmax,
                            const okto_tensor *x, int kh, int kw, int sh, int sw, int ph,
                            int pw);
okto_status okto_max_pool2d_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                     const okto_tensor *argmax, int kh, int kw, int sh,
                                     int sw, int ph, int pw, unsigned flags);
okto_status okto_avg_pool2d(okto_graph *g, okto_tensor *y, const okto_tensor *x, int kh,
                            int kw, int sh, int sw, int ph, int pw);
okto_status okto_avg_pool2d_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                                     int kh, int kw, int sh, int sw, int ph, int pw,
                                     unsigned flags);
okto_status okto_global_avg_pool2d(okto_graph *g, okto_tensor *y, const okto_tensor *x);
okto_status okto_global_avg_pool2d_backward(okto_graph *g, okto_tensor *dx,
                                            const okto_tensor *dy, unsigned flags);
okto_status okto_concat(okto_graph *g, okto_tensor *out, int n,
                        const okto_tensor *const *ins, int dim);
okto_status okto_split(okto_graph *g, int n, okto_tensor *const *outs, const okto_tensor *in,
                       int dim);
okto_status okto_graph_tensor(okto_graph *g, okto_dtype dtype, int rank, const size_t *shape,
                              okto_tensor **out);

/* ---- autograd.h ---- */
okto_status okto_tensor_set_requires_grad(okto_tensor *t, int on);
int okto_tensor_requires_grad(const okto_tensor *t);
okto_status okto_backward(okto_graph *g, const okto_tensor *loss, int n,
                          const okto_tensor *const *params, okto_tensor *const *grads,
                          unsigned flags);

/* ---- nn.h ---- */
typedef struct okto_nn okto_nn;
typedef struct okto_layer okto_layer;
typedef int... okto_init;
typedef int... okto_optim_kind;
typedef int... okto_model_kind;
#define OKTO_ACT_NONE ...
#define OKTO_NN_RESIDUAL ...
#define OKTO_NN_PRENORM ...
okto_status okto_nn_create(okto_context *ctx, okto_dtype dtype, uint64_t seed, okto_nn **out);
okto_status okto_nn_destroy(okto_nn *nn);
okto_status okto_nn_param(okto_nn *nn, const char *name, int rank, const size_t *shape,
                          okto_init init, float scale, size_t fan_in, size_t fan_out,
                          int decay, int *index);
okto_status okto_nn_allocate(okto_nn *nn);
int okto_nn_param_count(const okto_nn *nn);
okto_status okto_nn_param_at(const okto_nn *nn, int i, const char **name,
                             okto_tensor **param, okto_tensor **grad);
size_t okto_nn_numel(const okto_nn *nn);
okto_status okto_nn_param_state(const okto_nn *nn, int i, okto_tensor **m, okto_tensor **v);
okto_status okto_nn_linear(okto_nn *nn, const char *name, size_t in, size_t out, int bias,
                           int act, okto_layer **layer);
okto_status okto_nn_layernorm(okto_nn *nn, const char *name, size_t dim, okto_layer **layer);
okto_status okto_nn_embedding(okto_nn *nn, const char *name, size_t vocab, size_t dim,
                              okto_layer **layer);
okto_status okto_nn_conv_block(okto_nn *nn, const char *name, size_t cin, size_t cout, int k,
                               int pad, int act, int pool, okto_layer **layer);
okto_status okto_nn_mlp_block(okto_nn *nn, const char *name, size_t dim, size_t hidden,
                              int act, unsigned flags, okto_layer **layer);
okto_status okto_nn_attention_block(okto_nn *nn, const char *name, size_t dim, int heads,
                                    int causal, okto_layer **layer);
okto_status okto_layer_forward(okto_graph *g, okto_layer *layer, const okto_tensor *x,
                               okto_tensor **y);
okto_status okto_nn_backward(okto_graph *g, okto_nn *nn, const okto_tensor *loss,
                             unsigned flags);
typedef struct okto_optim {
    okto_optim_kind kind;
    float lr;
    float momentum;
    int nesterov;
    float beta1, beta2;
    float eps;
    float weight_decay;
    float clip_norm;
    ...;
} okto_optim;
okto_optim okto_optim_default(okto_optim_kind kind);
okto_status okto_nn_update(okto_graph *g, okto_nn *nn, const okto_optim *opt);
okto_status okto_nn_set_lr(okto_nn *nn, float lr);
okto_status okto_nn_steps(okto_nn *nn, long *out);
okto_status okto_nn_set_steps(okto_nn *nn, long steps);
float okto_lr_schedule(float lr, float min_lr, long warmup, long total, long step);
typedef struct okto_model_config {
    okto_model_kind kind;
    size_t features;
    size_t channels, height, width;
    size_t classes;
    size_t width_hidden;
    int layers;
    int heads;
    size_t context;
    ...;
} okto_model_config;
okto_model_config okto_model_default(okto_model_kind kind);
okto_status okto_nn_model(okto_nn *nn, const okto_model_config *cfg);
okto_status okto_nn_forward(okto_graph *g, okto_nn *nn, const okto_tensor *x,
                            okto_tensor **logits);
okto_status okto_nn_loss(okto_graph *g, okto_nn *nn, const okto_tensor *logits,
                         const okto_tensor *labels, float scale, okto_tensor **loss);

typedef struct okto_kernel okto_kernel;
okto_status okto_kernel_create(okto_context *ctx, const char *source, const char *name,
                               okto_kernel **out);
okto_status okto_kernel_destroy(okto_kernel *k);
typedef int... okto_arg_kind;
typedef struct okto_arg {
    okto_arg_kind kind;
    const okto_tensor *tensor;
    const void *value;
    size_t size;
    ...;
} okto_arg;
#define OKTO_ARG_R ...
#define OKTO_ARG_W ...
#define OKTO_ARG_RW ...
#define OKTO_ARG_VALUE ...
#define OKTO_ARG_LOCAL ...
okto_status okto_launch(okto_graph *g, okto_kernel *k, cl_uint work_dim, const size_t *global,
                        const size_t *local, int nargs, const okto_arg *args);

/* ---- the X-macro tables, expanded in SOURCE ---- */
typedef struct okto_py_row {
    const char *ident;  /* the enum member without its prefix: "RELU", "EINVAL" */
    const char *name;   /* the table's string: "relu", "invalid argument" */
    int value;          /* the enum value */
    int extra;          /* dtypes: bytes per element; otherwise 0 */
} okto_py_row;
extern const okto_py_row okto_py_map_ops[];
extern const okto_py_row okto_py_zip_ops[];
extern const okto_py_row okto_py_reduce_ops[];
extern const okto_py_row okto_py_scheds[];
extern const okto_py_row okto_py_dtypes[];
extern const okto_py_row okto_py_statuses[];
extern const okto_py_row okto_py_inits[];
extern const okto_py_row okto_py_optims[];
extern const okto_py_row okto_py_models[];
#define OKTO_MAX_RANK ...
#define OKTO_MAX_COMPUTE_LANES ...
#define OKTO_MAX_COPY_LANES ...
const char *const okto_py_header_version;  /* OKTO_VERSION_STRING */

/* ---- OpenCL, for devices() and interop ---- */
#define CL_DEVICE_NAME ...
#define CL_DEVICE_VENDOR ...
#define CL_DEVICE_VERSION ...
#define CL_DEVICE_TYPE ...
#define CL_DEVICE_GLOBAL_MEM_SIZE ...
#define CL_DEVICE_MAX_COMPUTE_UNITS ...
#define CL_PLATFORM_NAME ...
#define CL_DEVICE_TYPE_CPU ...
#define CL_DEVICE_TYPE_GPU ...
#define CL_DEVICE_TYPE_ACCELERATOR ...
#define CL_DEVICE_TYPE_CUSTOM ...
#define CL_SUCCESS ...
#define CL_EVENT_COMMAND_EXECUTION_STATUS ...
cl_int clGetDeviceInfo(cl_device_id device, cl_device_info param, size_t size, void *value,
                       size_t *size_ret);
cl_int clGetPlatformInfo(cl_platform_id platform, cl_platform_info param, size_t size,
                         void *value, size_t *size_ret);
cl_int clRetainMemObject(cl_mem mem);
cl_int clReleaseMemObject(cl_mem mem);
cl_int clRetainEvent(cl_event e);
cl_int clReleaseEvent(cl_event e);
cl_int clWaitForEvents(cl_uint n, const cl_event *events);
cl_int clGetEventInfo(cl_event e, cl_event_info param, size_t size, void *value,
                      size_t *size_ret);
"""

SOURCE = r"""
#include <okto/okto.h>

typedef struct okto_py_row {
    const char *ident;
    const char *name;
    int value;
    int extra;
} okto_py_row;

/* Each table ends with a row whose ident is NULL. */
#define OKTO_PY_MAP_ROW(ID, str) {#ID, str, OKTO_MAP_##ID, 0},
#define OKTO_PY_ZIP_ROW(ID, str) {#ID, str, OKTO_ZIP_##ID, 0},
#define OKTO_PY_REDUCE_ROW(ID, str) {#ID, str, OKTO_REDUCE_##ID, 0},
#define OKTO_PY_SCHED_ROW(ID, str, module) {#ID, str, OKTO_SCHED_##ID, 0},
#define OKTO_PY_DTYPE_ROW(ID, str, size) {#ID, str, OKTO_##ID, size},
#define OKTO_PY_STATUS_ROW(ID, value, msg) {#ID, msg, value, 0},
const okto_py_row okto_py_map_ops[] = {OKTO_MAP_MAP(OKTO_PY_MAP_ROW){0, 0, 0, 0}};
const okto_py_row okto_py_zip_ops[] = {OKTO_ZIP_MAP(OKTO_PY_ZIP_ROW){0, 0, 0, 0}};
const okto_py_row okto_py_reduce_ops[] = {OKTO_REDUCE_MAP(OKTO_PY_REDUCE_ROW){0, 0, 0, 0}};
const okto_py_row okto_py_scheds[] = {
    {"AUTO", "auto", OKTO_SCHED_AUTO, 0}, OKTO_SCHED_MAP(OKTO_PY_SCHED_ROW){0, 0, 0, 0}};
const okto_py_row okto_py_dtypes[] = {OKTO_DTYPE_MAP(OKTO_PY_DTYPE_ROW){0, 0, 0, 0}};
const okto_py_row okto_py_statuses[] = {OKTO_STATUS_MAP(OKTO_PY_STATUS_ROW){0, 0, 0, 0}};
#define OKTO_PY_INIT_ROW(ID, str) {#ID, str, OKTO_INIT_##ID, 0},
#define OKTO_PY_OPTIM_ROW(ID, str) {#ID, str, OKTO_OPTIM_##ID, 0},
#define OKTO_PY_MODEL_ROW(ID, str) {#ID, str, OKTO_MODEL_##ID, 0},
const okto_py_row okto_py_inits[] = {OKTO_INIT_MAP(OKTO_PY_INIT_ROW){0, 0, 0, 0}};
const okto_py_row okto_py_optims[] = {OKTO_OPTIM_MAP(OKTO_PY_OPTIM_ROW){0, 0, 0, 0}};
const okto_py_row okto_py_models[] = {OKTO_MODEL_MAP(OKTO_PY_MODEL_ROW){0, 0, 0, 0}};
/* the headers this module was compiled with; okto_version() is the library it runs with */
const char *const okto_py_header_version = OKTO_VERSION_STRING;
"""


def make_ffi():
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("okto._okto_ffi", SOURCE)
    return ffi


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: _ffi_build.py OUT.c")
    make_ffi().emit_c_code(sys.argv[1])
