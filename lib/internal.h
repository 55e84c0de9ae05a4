/* lib/internal.h: the structures shared by the library's files: context, lanes, tensors,
 * tasks and their accesses, graphs and plans. Nothing here is public. */
#ifndef OKTO_INTERNAL_H
#define OKTO_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <okto/okto.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define OKTO__ERR_MAX 4096

/* ---- errors (status.c) ---------------------------------------------------------------- */
const char *okto__cl_name(cl_int err);                    /* "CL_OUT_OF_RESOURCES" */
/* Records a message for okto_last_error (context and calling thread) and returns s. */
okto_status okto__fail(okto_context *ctx, okto_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* OKTO_ECL with "call: CL_NAME (code)" plus context. */
okto_status okto__fail_cl(okto_context *ctx, cl_int err, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void okto__log(const okto_context *ctx, okto_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* clGetDeviceInfo for a query that has a safe default: on failure *out keeps the value it had
 * (the caller's default) and a warning names the query and its CL_* error. 0 on success. */
int okto__device_info(cl_device_id d, cl_device_info what, const char *name, size_t size,
                      void *out);
#define OKTO__DEVICE_INFO(d, what, var) okto__device_info((d), (what), #what, sizeof(var), &(var))

/* ---- lanes (lane.c) ------------------------------------------------------------------- */
typedef struct okto__job okto__job;
typedef void (*okto__job_fn)(okto__job *job);
struct okto__job {               /* one unit of host work for a lane thread */
    okto__job_fn run;
    okto__job *next;
};

typedef struct okto__lane {
    int index;
    int is_copy;
    int out_of_order;            /* 0 where the device lacks out-of-order queues */
    cl_device_id device;         /* the context device or one of its sub-devices */
    cl_command_queue queue;      /* profiling on; out-of-order where supported */
    /* In-order queue for calls that take no event wait list (CLBlast): a marker with the wait
     * list goes first, then the call. Created on first use. */
    cl_command_queue blas_queue;
    pthread_mutex_t blas_lock;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    okto__job *head, *tail;      /* FIFO: jobs run in the order they were posted */
    int stop;
    int started;
    okto_context *ctx;
} okto__lane;

okto_status okto__lane_init(okto_context *ctx, okto__lane *lane, int index, int is_copy,
                            cl_device_id device);
void okto__lane_fini(okto__lane *lane);
void okto__lane_post(okto__lane *lane, okto__job *job);   /* caller holds ctx->post_lock */
okto_status okto__lane_blas_queue(okto__lane *lane, cl_command_queue *out);

/* ---- perf model (plan.c) ------------------------------------------------------------- */
typedef struct okto__perf_entry {
    uint64_t key;
    double ms;                   /* moving average of measured durations */
    int samples;
} okto__perf_entry;

typedef struct okto__perf_model {
    pthread_mutex_t lock;
    okto__perf_entry *slots;     /* open addressing, key 0 = empty */
    size_t cap, used;
    atomic_uint version;         /* bumped when an estimate moves enough to re-plan */
    /* Measured cost of a dependency that crosses lanes: from the end of the task waited for
     * to the start of the task waiting, when nothing else held it back. [0] between compute
     * lanes, [1] to or from a copy lane. */
    double hop_ms[2];
    int hop_n[2];
} okto__perf_model;

/* ---- context (context.c) ------------------------------------------------------------- */
struct okto_context {
    atomic_int refs;
    okto_config cfg;
    cl_platform_id platform;
    cl_device_id device;         /* the device the user asked for */
    cl_device_type device_type;
    cl_context cl;
    int owns_cl;                 /* 0 for okto_context_create_from_cl (still retained) */
    cl_device_id sub[OKTO_MAX_COMPUTE_LANES];
    int nsub;                    /* sub-devices okto created for its lanes (CPU devices) */
    int ncompute, ncopy;
    okto__lane lanes[OKTO_MAX_LANES];   /* compute lanes first, then copy lanes */
    okto__lane seq;              /* the sequential policy's in-order queue and its thread */
    pthread_mutex_t post_lock;   /* launches post to all lanes as one step: no deadlock */
    double gflops_est, gbps_est; /* for the cost model before anything was measured */
    size_t max_alloc;
    size_t grid_groups;          /* work-groups of a fixed grid (lib/kernels.c) */
    okto__perf_model perf;
    pthread_mutex_t err_lock;
    char err[OKTO__ERR_MAX];
    /* built-in kernels (kernels.c) */
    pthread_mutex_t prog_lock;
    cl_program program;
    int clblast_ready;
    /* per device (0: the context device, 1 + i: sub-device i): CLBlast has compiled and cached
     * its GEMM program there, so calls no longer race on its caches (see lib/ops/matmul.c) */
    atomic_int clblast_warm[1 + OKTO_MAX_COMPUTE_LANES];
};

void okto__context_retain(okto_context *ctx);
void okto__context_release(okto_context *ctx);

/* Builds (once) and returns the program of the embedded cl/ sources. */
okto_status okto__program(okto_context *ctx, cl_program *out);
okto_status okto__kernel(okto_context *ctx, const char *name, cl_kernel *out);

/* One argument of a built-in kernel: a tensor from row r0 (two parameters: the buffer and the
 * int offset of that row in floats) or a value. */
typedef struct okto__karg {
    const okto_tensor *t;
    size_t r0;
    size_t size;
    const void *v;
} okto__karg;
#define OKTO__KT(tensor, row0) ((okto__karg){(tensor), (row0), 0, NULL})
#define OKTO__KV(lvalue) ((okto__karg){NULL, 0, sizeof(lvalue), &(lvalue)})
/* A new kernel object of the built-in program with its arguments set (see okto__kernel); on
 * failure nothing is left and the message names op and the parameter. */
okto_status okto__kernel_args(okto_context *ctx, const char *name, const char *op, int nargs,
                              const okto__karg *args, cl_kernel *out);
okto_status okto__build(okto_context *ctx, const char *source, const char *what,
                        cl_program *out);

/* ---- tensors (tensor.c) -------------------------------------------------------------- */
typedef struct okto__storage {   /* the cl_mem that a tensor and its views share */
    atomic_int refs;
    okto_context *ctx;
    cl_mem mem;
    size_t rows, cols;
    atomic_int inflight;         /* launched graphs using it */
    int id;                      /* for traces and debugging */
} okto__storage;

struct okto_tensor {
    okto__storage *st;
    size_t row0, rows, cols;     /* rows [row0, row0 + rows) of st */
};

void okto__storage_retain(okto__storage *st);
void okto__storage_release(okto__storage *st);

/* ---- tasks and graphs (graph.c) ------------------------------------------------------- */
enum { OKTO__R = 1, OKTO__W = 2, OKTO__RW = 3 };

typedef struct okto__access {
    okto__storage *st;
    size_t row0, row1;           /* [row0, row1) of the storage */
    int mode;                    /* OKTO__R, OKTO__W, OKTO__RW */
} okto__access;

typedef struct okto__task okto__task;

/* Where a task is enqueued. queue: the lane's queue (out-of-order, or the sequential in-order
 * queue). lane: NULL under the sequential policy. */
typedef struct okto__exec {
    okto_context *ctx;
    okto__lane *lane;
    cl_command_queue queue;
    int in_order;                /* queue is in-order: a wait list of earlier work is implied */
} okto__exec;

/* Enqueues the task after the wait list; *done gets the event that completes it. The default
 * (NULL) enqueues task->kernel as an NDRange. */
typedef cl_int (*okto__enqueue_fn)(okto__task *t, const okto__exec *x, cl_uint nwait,
                                   const cl_event *wait, cl_event *done);

typedef enum okto__task_class { OKTO__COMPUTE = 0, OKTO__COPY = 1 } okto__task_class;

struct okto__task {
    const char *op;              /* "matmul", "fill", ...: trace name and perf-model key */
    uint64_t shape_key;          /* op-specific size key for the perf model */
    int part, nparts;            /* a partitioned op's part index and count */
    okto__task_class cls;
    double flops, bytes;         /* for the cost estimate before it was measured */
    okto__access *acc;
    int nacc;
    /* the work */
    cl_kernel kernel;            /* owned; args set at record time */
    cl_uint work_dim;
    size_t global[3], local[3];
    int has_local;
    okto__enqueue_fn enqueue;
    void *data;                  /* op parameters for enqueue; freed with free() */
    /* dependencies (derived from accesses) */
    int *deps, ndeps, depcap;
    int nsucc;
    /* run state */
    cl_event ev;
    cl_event ev_start;           /* optional: marks the start of a multi-command task (CLBlast
                                    enqueues several kernels and returns the last one's event) */
    atomic_uint gen;             /* == run generation once ev is published */
    int lane;                    /* planned lane, -1 under sequential */
    int flush;                   /* a successor runs on another lane: flush after enqueue */
};

/* Records a task. acc and the task's fields are copied; the kernel and data become the graph's
 * (released/freed even on failure). Returns the new task's index or a negative status. */
int okto__graph_add(okto_graph *g, const okto__task *t);
/* Records one task of a 1-D built-in kernel over n elements, one work item each: the kernel
 * with its arguments, the launch geometry (okto__grid_1d) and the task. The caller's task
 * template gives op, part, nparts, accesses and costs; shape_key defaults to n. */
okto_status okto__record_1d(okto_graph *g, const char *kname, const char *fn, okto__task t,
                            size_t n, int nargs, const okto__karg *args);
/* Removes tasks n.. again (an op that fails after recording some of its parts calls this with
 * the count it started from, so a failed call records nothing). */
void okto__graph_truncate(okto_graph *g, int n);
/* Adds an access to a task's list, merged into an earlier one of the same rows of the same
 * storage (out == in gives one RW access, never a task that depends on itself). */
void okto__add_access(okto__access *acc, int *n, okto__access a);
/* Views of one storage: the same rows / any row in common. NULL never overlaps. */
int okto__same_rows(const okto_tensor *a, const okto_tensor *b);
int okto__rows_overlap(const okto_tensor *a, const okto_tensor *b);
/* Argument checks shared by the ops: NULL, context and graph state. */
okto_status okto__check_graph(okto_graph *g, const char *op);
okto_status okto__check_tensor(okto_graph *g, const okto_tensor *t, const char *op,
                               const char *arg);
/* An access covering rows [r0, r1) of tensor t (rows relative to t). */
okto__access okto__acc(const okto_tensor *t, size_t r0, size_t r1, int mode);
/* Sets kernel args idx (the buffer) and idx + 1 (int offset in floats of row r0 of t). */
cl_int okto__set_tensor_arg(cl_kernel k, cl_uint idx, const okto_tensor *t, size_t r0);
/* How many row parts an op over `rows` rows and `work` flops-or-elements is split into: one
 * per compute lane when the work is big enough to be worth a launch each, else 1. */
int okto__parts(const okto_graph *g, size_t rows, double work);
/* Work-group size of the 1-D built-in kernels on GPUs. */
#define OKTO__WG 64
/* Launch geometry of a 1-D built-in kernel over n items, one per work item (lib/kernels.c,
 * "launch geometry"): the global size covers n, the kernel skips the items past it. */
void okto__grid_1d(const okto_context *ctx, size_t n, size_t *global, size_t *local);
/* Work-groups of the fixed grids that row kernels stride over (softmax, reductions). */
size_t okto__grid_groups(const okto_context *ctx);
static inline size_t okto__part_row(size_t rows, int part, int nparts)
{
    return rows * (size_t)part / (size_t)nparts;
}
/* A new kernel object of the built-in program, for one task (its args are set once, at record
 * time, which keeps launches free of clSetKernelArg and lets graphs run concurrently). */

/* A graph's record of one storage: the accesses made to it, in recorded order, which is what
 * dependency analysis scans. */
typedef struct okto__hent {
    int task;
    size_t row0, row1;
    int mode;
} okto__hent;

typedef struct okto__gstore {
    okto__storage *st;
    okto__hent *h;
    int n, cap;
} okto__gstore;

typedef struct okto__plan {
    okto_sched sched;
    int nlanes;                  /* lanes used (1 for sequential) */
    int *order[OKTO_MAX_LANES];  /* per lane: task indices in enqueue order */
    int count[OKTO_MAX_LANES];
    unsigned perf_version;       /* perf model version it was made with */
    int ntasks;
} okto__plan;

typedef struct okto__run okto__run;

struct okto_graph {
    okto_context *ctx;
    okto_sched sched;            /* OKTO_SCHED_AUTO = the context's */
    okto__task *tasks;
    int ntasks, cap;
    okto__gstore *stores;        /* every storage the graph touches, retained */
    int nstores, storecap;
    okto__plan plan;
    int planned;
    atomic_int busy;             /* a launch is in flight */
    unsigned gen;                /* run generation */
    int runs;
    /* the run in flight */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_int waiters;
    int lanes_left;              /* lane jobs not yet finished */
    atomic_int abort;
    okto_status run_status;
    char run_error[OKTO__ERR_MAX];
    okto__job *jobs;             /* one per planned lane */
    double t_launch, t_done;     /* host clock, ms */
    int has_run;                 /* a completed run's events are held for the report */
    /* heft's check against the sequential plan (lib/launch.c, heft_trial) */
    struct {
        int runs;                /* heft-policy runs observed since the graph last changed */
        double heft_ms, seq_ms;  /* best host time of each plan during the trial */
        int decided;
        okto_sched choice;
    } trial;
};

/* plan.c */
okto_status okto__plan_make(okto_graph *g, okto_sched sched);
/* The graph's tasks or policy changed: plan again, and redo heft's trial. */
void okto__graph_changed(okto_graph *g);
void okto__plan_free(okto__plan *p);
double okto__task_estimate(okto_context *ctx, const okto__task *t);
void okto__perf_learn(okto_graph *g);
void okto__perf_init(okto__perf_model *m);
void okto__perf_fini(okto__perf_model *m);
okto_sched okto__graph_sched(const okto_graph *g);

/* launch.c */
okto_status okto__launch(okto_graph *g);
okto_status okto__wait(okto_graph *g);
void okto__release_events(okto_graph *g);

/* report.c */
/* Device start and end of a task of the last run (0 when it has no profiling times). */
int okto__task_times(const okto__task *t, cl_ulong *start, cl_ulong *end);
okto_status okto__report(const okto_graph *g, okto_report *out);

/* misc */
double okto__now_ms(void);

#endif
