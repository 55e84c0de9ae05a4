/* lib/op.h: what an op author sees. Ops (lib/ops/) include this header and lib/core.h below it,
 * never the engine's internals: an op is a descriptor in the op table (ops/ops.def) plus a
 * record function that checks its arguments through the recorder and builds its tasks.
 *
 * Recording one op call:
 *     okto__rec r;
 *     okto_status s = okto__rec_begin(&r, g, OKTO__OP_SOFTMAX, "okto_softmax");
 *     if (s == OKTO_OK) s = okto__rec_tensor(&r, in, "in", OKTO__DT_FLOATS);
 *     ... shape checks with okto__rec_fail ...
 *     for each part: okto__tb t; okto__tb_init(&t, &r, OKTO__OP_SOFTMAX);
 *                    okto__tb_kernel / _arg_* / _access / _range / _cost; okto__tb_commit(&t);
 *     return okto__rec_end(&r, s);
 * okto__rec_begin checks the graph (NULL, busy, an earlier error) and takes it for this thread;
 * okto__rec_end rolls a failed call back (tasks, temporaries) so nothing is recorded, keeps the
 * error in the graph, and releases it. */
#ifndef OKTO_OP_H
#define OKTO_OP_H

#include "core.h"

/* ---- the op table ------------------------------------------------------------------------------ */
typedef enum okto__op {
#define OKTO__OP(id) OKTO__OP_##id,
#include "ops/ops.def"
#undef OKTO__OP
    OKTO__OP_COUNT
} okto__op;

/* How a custom task reaches the device (the default is its NDRange kernel). */
typedef struct okto__lane okto__lane;
struct okto__grad;
struct okto__ad_node;
typedef struct okto__exec {
    okto_context *ctx;
    okto__lane *lane;
    cl_command_queue queue;      /* the lane's queue (in-order or out-of-order) */
    cl_uint nwait;
    const cl_event *wait;        /* events the task must wait for */
    cl_event *done;              /* out: the event that completes the task */
    cl_event *start;             /* out, optional: when the task really starts (a marker) */
    const void *data;            /* the op's parameters, as given to okto__tb_enqueue */
    /* out: the call that failed, when it is not the op's own (okto__exec_foreign_begin's
     * marker or queue); left alone otherwise, and the run names the op's call */
    const char **call;
} okto__exec;
typedef cl_int (*okto__enqueue_fn)(const okto__exec *x);

/* For a call that takes no wait list (CLBlast): a marker orders it after x's wait list (and
 * gives *x->start); *q is the in-order queue to issue the call on. Then the call, then
 * okto__exec_foreign_end. */
cl_int okto__exec_foreign_begin(const okto__exec *x, cl_command_queue *q);
void okto__exec_foreign_end(const okto__exec *x, cl_command_queue q);

/* The host lane (lib/lane_host.c): C = alpha op(A) op(B) + beta C with the system's CBLAS on the
 * storages' host memory, count products stepping by sa, sb, sc elements (row-major, offsets and leading
 * dimensions in elements, as CLBlast takes them). Run from a custom enqueue in place of the
 * device call, on tasks recorded where okto__ctx_host_lane says there is a host lane. */
typedef struct okto__host_gemm {
    int ta, tb;
    size_t m, n, k;
    float alpha, beta;
    float *a, *b, *c; /* the storages' host memory (okto__storage.host) */
    size_t ao, lda, bo, ldb, co, ldc;
    size_t count, sa, sb, sc;
} okto__host_gemm;
cl_int okto__host_sgemm(const okto__exec *x, const okto__host_gemm *g);

typedef struct okto__op_desc {
    const char *name;            /* "map.relu": traces, reports, the perf model, docs/ops.md */
    const char *family;          /* "elementwise", "matmul", ...: the file it lives in */
    unsigned dtypes;             /* dtypes its data tensors may have (OKTO__DT_BIT) */
    const char *layouts;         /* what its inputs may be, for docs/ops.md: "any strides" */
    const char *expr;            /* elementwise: the element expression over a (b, s), fusion */
    const char *call;            /* a custom enqueue's call, named when it fails */
    const char *dtype_note;      /* how half types compute, for docs/ops.md (NULL: in float) */
    int partitioned;             /* split into row parts across the compute lanes */
    /* The gradient rule (lib/autograd): records the tasks that carry the gradient of the call's
     * outputs back to its inputs. NULL: the op has no gradient (okto_backward says so when one
     * is needed through it). */
    okto_status (*backward)(struct okto__grad *gr, const struct okto__ad_node *n);
} okto__op_desc;

extern const okto__op_desc *const okto__ops[OKTO__OP_COUNT];

/* ---- recording an op call ---------------------------------------------------------------------- */
typedef struct okto_graph okto_graph;
#define OKTO__REC_MAX_TEMPS 8

typedef struct okto__rec {
    okto_graph *g;
    okto_context *ctx;
    okto__op op;
    const char *fn;              /* "okto_zip": the public function, first word of messages */
    int start;                   /* tasks before the call: where a failure rolls back to */
    int ntemps_start, nchecks_start, nnodes_start;
    int depth;                   /* 1: the outermost call (a user's); > 1: nested in an op */
} okto__rec;

okto_status okto__rec_begin(okto__rec *r, okto_graph *g, okto__op op, const char *fn);
/* s is the call's status so far; returns it (OKTO_OK, or the error kept in the graph). */
okto_status okto__rec_end(okto__rec *r, okto_status s);
/* A tensor argument: not NULL, of the graph's context, of one of the dtypes. */
okto_status okto__rec_tensor(okto__rec *r, const okto_tensor *t, const char *arg, unsigned dtypes);
/* An output: okto__rec_tensor, and no stride-0 dimension of size > 1 (its elements alias). */
okto_status okto__rec_output(okto__rec *r, const okto_tensor *t, const char *arg, unsigned dtypes);
/* out must not overlap in (same_ok: unless it is the very same view). */
okto_status okto__rec_no_alias(okto__rec *r, const okto_tensor *out, const char *oname,
                               const okto_tensor *in, const char *iname, int same_ok);
/* okto__fail with "fn: " in front. */
okto_status okto__rec_fail(okto__rec *r, okto_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* How many row parts `rows` rows of `work` flops-or-elements split into: one per compute lane
 * when the work is big enough to be worth a launch each, else 1. */
int okto__rec_parts(const okto__rec *r, size_t rows, double work);
static inline size_t okto__part_row(size_t rows, int part, int nparts)
{
    return rows * (size_t)part / (size_t)nparts;
}
/* A graph-owned temporary (scratch, or a contiguous copy): lives as long as the graph; a
 * failed call releases the ones it made. *out is a contiguous value view. */
okto_status okto__rec_temp(okto__rec *r, okto_dtype dtype, int rank, const size_t *shape,
                           okto_tensor *out);
/* in itself when it has the layout `dense_rows` asks for (okto__rows_dense and leading
 * dimensions that merge, or contiguous when dense_rows is 0), else a graph-owned contiguous
 * copy recorded now (the recorder's "insert the copy"). */
okto_status okto__rec_layout(okto__rec *r, const okto_tensor *in, int dense_rows,
                             okto_tensor *out);
okto__device *okto__rec_device(const okto__rec *r);
/* A check the device makes and the run reports: flag is an i32 tensor of 4 elements the op's
 * kernels set to {1, a, b, c} on bad input (a label out of range); after each run the engine
 * reads it, fails the run with okto__rec_fail's prefix and msg (a format taking a, b and c as
 * ints) if it is set, and clears it. */
okto_status okto__rec_check(okto__rec *r, const okto_tensor *flag, const char *msg);
/* The same for kernels whose flag is {set, first bad index} kept with atomic_or / atomic_min
 * (cl/xent.cl, cl/embed.cl): the flag is clear when it holds init (e.g. {0, INT_MAX, classes,
 * ignore_index}: the last two are constants the message shows); the engine resets it to init
 * after a run that set it, and the message shows flag[1] + base (a part's first row) and
 * flag[2], flag[3]. write: okto_tensor_write init into flag now (a fresh temporary). */
okto_status okto__rec_check_init(okto__rec *r, const okto_tensor *flag, const char *msg,
                                 const int init[4], int base, int write);

/* ---- gradients (lib/autograd) ------------------------------------------------------------------ */
/* The tape. A user's call of a differentiable op whose inputs (or outputs) touch data that needs
 * a gradient describes itself here after its tasks: which tensors it read (in), wrote (out) and
 * what else its gradient rule needs (aux: labels, saved statistics), which of those the rule
 * reads (saved: the run checks nothing overwrites them before the gradient tasks read them),
 * and its scalar parameters. Calls nested inside another op and calls on data no gradient
 * reaches record nothing, so inference graphs carry no tape. */
#define OKTO__AD_SLOTS 8

typedef struct okto__ad_call {
    okto__op op;                 /* whose gradient rule applies (okto_map: OKTO__OP_MAP_<f>) */
    int nin, nout, naux;
    const okto_tensor *t[OKTO__AD_SLOTS]; /* in, then out, then aux; NULL: an absent optional */
    unsigned saved;              /* bit k: slot k is read by the gradient rule */
    /* bit k: input k's gradient is exactly the output's (y = x + ..., y += ...): in place, the
     * shared gradient buffer already holds it and the rule is not asked for it */
    unsigned identity;
    int overwrite;               /* outputs are written, not updated (c = ..., not c += ...) */
    float f[4];
    int i[8];
} okto__ad_call;

typedef struct okto__ad_node {
    uint16_t op;                 /* okto__op: the rule is okto__ops[op]->backward */
    uint8_t nin, nout, naux, overwrite;
    uint16_t saved, identity;
    const char *fn;              /* the public call, for messages */
    int task0, task1;            /* the call's tasks */
    float f[4];
    int i[8];
    okto_tensor t[OKTO__AD_SLOTS]; /* value views; st NULL for absent slots */
} okto__ad_node;

/* Whether a call over these tensors (NULLs skipped) goes on the tape: the outermost call, and
 * one of them lies in a storage that needs a gradient. Ops with optional statistics ask first,
 * to make them when the gradient will need them. */
int okto__ad_active(const okto__rec *r, int n, const okto_tensor *const *t);
/* Puts the call on the tape when okto__ad_active says so (else does nothing). */
okto_status okto__ad_record(okto__rec *r, const okto__ad_call *c);

/* A gradient rule's view of the backward pass (lib/autograd/backward.c). */
typedef struct okto__grad okto__grad;
okto_graph *okto__grad_graph(const okto__grad *gr);
/* The gradient to add to input slot k (a view of its gradient buffer, in the input's shape,
 * dtype and strides), or NULL when no gradient is wanted there. Rules add (OKTO_ACCUMULATE):
 * an input may feed several ops. */
okto_tensor *okto__grad_in(okto__grad *gr, int k);
/* The gradient arriving at output slot k (the output's shape), or NULL when none does. */
const okto_tensor *okto__grad_out(okto__grad *gr, int k);
/* A temporary for the rule's intermediates, contiguous. */
okto_status okto__grad_temp(okto__grad *gr, okto_dtype dtype, int rank, const size_t *shape,
                            okto_tensor *out);
okto_status okto__grad_fail(okto__grad *gr, okto_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- a task under construction ------------------------------------------------------------------ */
#define OKTO__TB_MAX_ARGS 48 /* attention's dk/dv kernel takes 42 */
#define OKTO__TB_MAX_ACC 16
#define OKTO__TB_ARGBYTES 512

typedef struct okto__tb_acc {
    okto_tensor view;
    int mode;                    /* OKTO__R, OKTO__W, OKTO__RW */
} okto__tb_acc;
enum { OKTO__R = 1, OKTO__W = 2, OKTO__RW = 3 };
enum { OKTO__ARG_VALUE = 0, OKTO__ARG_MEM = 1, OKTO__ARG_LOCAL = 2 };

typedef struct okto__tb {
    okto__rec *r;
    okto__op op;
    okto_dtype dtype;            /* for the perf model */
    int copy;                    /* a copy-lane task (host transfers) */
    okto__kid kid;
    int has_kernel;
    okto__enqueue_fn enqueue;
    unsigned work_dim;
    size_t global[3], local[3];
    int has_local;
    int part, nparts;
    double flops, bytes;
    uint64_t shape_key;
    int nargs, nacc, overflow;
    size_t argbytes;
    unsigned char argkind[OKTO__TB_MAX_ARGS];
    unsigned short argsize[OKTO__TB_MAX_ARGS];
    _Alignas(8) unsigned char args[OKTO__TB_ARGBYTES];
    okto__storage *argst[OKTO__TB_MAX_ARGS]; /* storages of MEM args, for the graph to keep */
    okto__tb_acc acc[OKTO__TB_MAX_ACC];
    okto_status status;          /* the first failure while building */
} okto__tb;

void okto__tb_init(okto__tb *t, okto__rec *r, okto__op op);
/* The kernel `name` of cl/<file>.cl built for dtype (-DOKTO_DT) plus extra options. */
void okto__tb_kernel(okto__tb *t, const char *file, okto_dtype dtype, const char *extra,
                     const char *name);
void okto__tb_kid(okto__tb *t, okto__kid kid);
/* A tensor argument: (buffer, ulong offset in elements of v's first element). */
void okto__tb_arg_tensor(okto__tb *t, const okto_tensor *v);
/* The buffer of v's storage alone, no offset: for kernels that address it by absolute element
 * offsets (the storage's base included) from a table (cl/optim.cl's multi-tensor kernels). */
void okto__tb_arg_mem(okto__tb *t, const okto_tensor *v);
void okto__tb_arg_value(okto__tb *t, const void *p, size_t size);
#define OKTO__TB_ARG(t, v) okto__tb_arg_value((t), &(v), sizeof(v))
void okto__tb_arg_ulong(okto__tb *t, uint64_t v);
void okto__tb_arg_long(okto__tb *t, int64_t v);
void okto__tb_arg_int(okto__tb *t, int v);
void okto__tb_arg_float(okto__tb *t, float v);
void okto__tb_arg_local(okto__tb *t, size_t bytes);
/* The task touches v's region in mode (accesses are what dependencies come from). */
void okto__tb_access(okto__tb *t, const okto_tensor *v, int mode);
void okto__tb_range(okto__tb *t, unsigned dim, const size_t *global, const size_t *local);
/* A 1-D launch over n items with okto__grid_1d's fixed shape (lib/device.c). */
void okto__tb_range_1d(okto__tb *t, size_t n);
void okto__tb_cost(okto__tb *t, double flops, double bytes, uint64_t shape_key);
void okto__tb_part(okto__tb *t, int part, int nparts);
/* A custom task: fn enqueues it; data (size bytes, copied now) reaches fn as x->data. */
void okto__tb_enqueue(okto__tb *t, okto__enqueue_fn fn, const void *data, size_t size);
okto_status okto__tb_commit(okto__tb *t);

/* Launch shapes (lib/device.c, "launch geometry"): 1-D over n items; dims-D over want[]
 * items (dimension 0 the fastest in memory). The kernels check bounds: grids are padded. */
void okto__grid_1d(const okto__device *d, size_t n, size_t *global, size_t *local);
void okto__grid_nd(const okto__device *d, unsigned dims, const size_t *want, size_t *global,
                   size_t *local);

/* ---- CLBlast (lib/device.c) ---------------------------------------------------------------------- */
/* CLBlast 1.5.3 (Debian 12) races when two threads fill its caches at once (upstream issue #486,
 * seen as std::bad_alloc): the first call of a routine on a device takes a lock, later calls
 * run concurrently. begin returns whether it took the lock; end releases it and, when the call
 * succeeded, marks the routine warm on the queue's device. */
enum { OKTO__CLBLAST_SGEMM = 0, OKTO__CLBLAST_HGEMM, OKTO__CLBLAST_SGEMM_BATCHED,
       OKTO__CLBLAST_HGEMM_BATCHED, OKTO__CLBLAST_ROUTINES };
int okto__clblast_begin(okto_context *ctx, cl_command_queue q, int routine);
void okto__clblast_end(okto_context *ctx, cl_command_queue q, int routine, int took, int ok);
/* Once per context: on CPUs, CLBlast's indirect GEMM from 128-cubed (device.c says why). */
void okto__clblast_tune(okto_context *ctx);

#endif
