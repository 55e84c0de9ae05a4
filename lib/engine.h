/* lib/engine.h: the engine's internals, shared by lib/engine/ (graph: recording; deps:
 * dependency analysis; plan: planning and the policy registry's glue; run: launches and their
 * events; report: reports and traces; perf: the cost model) and the policies in lib/sched/.
 * Ops never include it: they record through lib/op.h. */
#ifndef OKTO_ENGINE_H
#define OKTO_ENGINE_H

#include "ctx.h"
#include "op.h"

/* ---- tasks --------------------------------------------------------------------------------------- */
enum { OKTO__COMPUTE = 0, OKTO__COPY = 1 };
#define OKTO__NO_KERNEL UINT32_MAX

typedef struct okto__access {
    uint32_t store;              /* index into the graph's storages */
    uint8_t mode;                /* OKTO__R, OKTO__W, OKTO__RW */
    okto__region region;
} okto__access;

/* One task: a kernel launch (kid, args, geometry) or a custom enqueue (fn, data). Its accesses,
 * arguments and dependencies live in the graph's arenas (acc, args, deps), in task order. */
typedef struct okto__task {
    uint16_t op;                 /* okto__op */
    uint8_t cls;                 /* OKTO__COMPUTE or OKTO__COPY */
    uint8_t dtype;
    uint8_t work_dim, has_local;
    uint16_t part, nparts;
    okto__kid kid;               /* OKTO__NO_KERNEL for a custom enqueue */
    okto__enqueue_fn enqueue;
    uint32_t global[3], local[3];
    uint32_t args, nargs;        /* arg records in g->args (kernel) or the data blob (custom) */
    uint32_t acc, nacc;          /* into g->acc */
    uint32_t deps, ndeps;        /* into g->deps, filled by dependency analysis */
    uint32_t nsucc;
    uint64_t perf_key;           /* (op, dtype, shape class, device) */
    float flops, bytes;          /* the estimate before anything was measured */
    /* lib/engine/optimize.c: a task batched into another is skipped by the run (its work is
     * that task's, index into - 1, always a later one); nfused > 0: this task does the work of
     * nfused recorded tasks, itself and those pointing here */
    uint32_t into, nfused;
    const char *expr;            /* okto__tb's fuse_expr, the graph's copy (okto__intern), or NULL */
} okto__task;

/* ---- storages a graph touches ------------------------------------------------------------------ */
typedef struct okto__dindex okto__dindex; /* engine/deps.c: the dependency index of one storage */

typedef struct okto__gstore {
    okto__storage *st;           /* retained */
    okto__dindex *ix;
    int ad_req;                  /* the tape wrote a value here that may need a gradient */
} okto__gstore;

/* ---- plans ---------------------------------------------------------------------------------------- */
#define OKTO__MAX_LANES (OKTO_MAX_COMPUTE_LANES + OKTO_MAX_COPY_LANES)

typedef struct okto__plan {
    okto_sched sched;            /* the policy whose plan this is */
    int nlanes;                  /* lanes used (1 for sequential) */
    int single_queue;            /* the sequential queue rather than the lanes */
    int *order[OKTO__MAX_LANES]; /* per lane: task indices in enqueue order */
    int count[OKTO__MAX_LANES];
    int *lane;                   /* per task: its lane */
    unsigned char *flush;        /* per task: a successor runs on another lane */
    unsigned perf_version;       /* perf model version it was made with */
    int ntasks;
} okto__plan;

/* ---- policies (lib/sched/) ---------------------------------------------------------------------- */
typedef struct okto__sched_ops {
    const char *name;
    /* Fills p's lane lists from g's tasks (p->nlanes and the arrays are set up); each lane's
     * list in one global topological order (lib/engine/plan.c says why). 0, or -1 without
     * memory. */
    int (*plan)(okto_graph *g, okto__plan *p);
    int single_queue;            /* runs on the context's sequential queue and thread */
    int learns;                  /* replans when the perf model moves */
    /* optional: the policy whose plan runs this time (heft's trial runs the sequential plan
     * now and then); NULL means its own */
    okto_sched (*choose)(okto_graph *g);
    /* optional: a run of this policy finished in ms of host time */
    void (*observe)(okto_graph *g, double ms);
} okto__sched_ops;

/* index OKTO_SCHED_* - 1 */
extern const okto__sched_ops *const okto__scheds[OKTO_SCHED_COUNT - 1];
const okto__sched_ops *okto__sched_get(okto_sched s);

/* heft's trial against the sequential plan (lib/sched/heft.c owns its meaning) */
typedef struct okto__trial {
    int runs;
    double heft_ms, seq_ms;
    int decided;
    okto_sched choice;
} okto__trial;

/* ---- the run in flight (engine/run.c) ------------------------------------------------------------- */
typedef struct okto__run {
    cl_event *ev;                /* per task: the event that completes it */
    cl_event *ev_start;          /* per task, optional: its start marker */
    atomic_uint *gen;            /* per task: == the run's generation once ev is published */
    int cap;
    unsigned gen_now;
    okto__job *jobs;             /* one per planned lane */
    cl_event *scratch;           /* wait-list scratch, per job */
    int maxwait;
    cl_event *ext_wait;          /* okto_graph_launch_ex's wait list (retained) */
    cl_uint next_wait;
    cl_event done_user;          /* okto_graph_launch_ex's done event (retained) */
    int has_run;                 /* a completed run's events are held for the report */
} okto__run;

/* A device-side input check to read after each run (okto__rec_check). */
typedef struct okto__check {
    okto__storage *st;           /* retained through the graph's storages */
    size_t offset;               /* elements: the first of the 4 i32 flags */
    char prefix[48];             /* "okto_softmax_xent" */
    char msg[128];               /* a format taking 3 ints */
    int init[4];                 /* what the flag holds when clear (okto__rec_check_init) */
    int base;                    /* added to flag[1] in the message (a part's first row) */
} okto__check;

/* ---- the graph ------------------------------------------------------------------------------------ */
enum { OKTO__G_IDLE = 0, OKTO__G_RECORDING, OKTO__G_LAUNCHED, OKTO__G_WAITING, OKTO__G_READING };

struct okto_graph {
    okto_context *ctx;
    okto_sched sched;            /* OKTO_SCHED_AUTO = the context's */
    atomic_int state;            /* OKTO__G_*: recording, launch, wait, report exclude each other */
    /* recorded */
    okto__task *tasks;
    int ntasks, cap;
    okto__access *acc;
    size_t nacc, acccap;
    unsigned char *args;         /* kernel argument records and custom data, 8-byte aligned */
    size_t nargs, argcap;
    char **exprs;                /* the tasks' fusion expressions, one copy each (okto__intern) */
    int nexprs, exprcap;
    uint32_t *deps;
    size_t ndeps, depcap;
    okto__gstore *stores;
    int nstores, storecap;
    int *store_hash;             /* storage -> index, open addressing (-1 empty) */
    int store_hashcap;
    okto__storage **temps;       /* graph-owned temporaries, retained */
    int ntemps, tempcap;
    okto__check *checks;
    int nchecks, checkcap;
    okto_tensor **handles;       /* okto_graph_tensor's, freed with the graph */
    int nhandles, handlecap;
    /* the tape (lib/autograd): the differentiable calls, in recording order */
    okto__ad_node *nodes;
    int nnodes, nodecap;
    /* the first recording error */
    okto_status err;
    char err_msg[OKTO__ERR_MAX];
    /* dependency analysis (engine/deps.c) covers tasks [0, analyzed) */
    int analyzed;
    unsigned *stamp;             /* transitive reduction's visit marks, per task */
    unsigned stamp_now;
    int stampcap;
    /* planning */
    okto__plan plan;
    int planned;
    okto__trial trial;
    /* running */
    okto__run run;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_int waiters;
    int lanes_left;              /* lane jobs not yet finished */
    atomic_int abort;
    okto_status run_status;
    char run_error[OKTO__ERR_MAX];
    int runs;
    double t_launch, t_done;     /* host clock, ms */
    /* the optimizer (engine/optimize.c): tasks [0, opt_from) were considered; arena entries
     * below the floors belong to rewritten tasks (truncation keeps them); fuse: OKTO__FUSE_*
     * bits, -1: OKTO_FUSE's */
    int opt_from, nbatched;
    size_t acc_floor, arg_floor;
    int fuse;
};

/* graph.c */
/* The graph's tasks or policy changed: plan again, and redo heft's trial. */
void okto__graph_changed(okto_graph *g);
okto_sched okto__graph_sched(const okto_graph *g);
/* Index of st among the graph's storages (retained on first use); -1 without memory. */
int okto__graph_store(okto_graph *g, okto__storage *st);
/* The same without adding it: -1 when the graph has not touched st. */
int okto__graph_store_find(const okto_graph *g, const okto__storage *st);
/* Removes tasks n.. again (a failed op call). */
void okto__graph_truncate(okto_graph *g, int n);
const okto__access *okto__task_acc(const okto_graph *g, const okto__task *t);
const uint32_t *okto__task_deps(const okto_graph *g, const okto__task *t);

/* deps.c */
/* Derives the dependencies of tasks [g->analyzed, g->ntasks). */
okto_status okto__deps_analyze(okto_graph *g);
void okto__dindex_free(okto__dindex *ix);

/* plan.c */
okto_status okto__plan_make(okto_graph *g, okto_sched sched);
void okto__plan_free(okto__plan *p);
/* For the policies: task i goes to lane l next. */
void okto__plan_push(okto__plan *p, int lane, int task);
/* The lanes a task of class cls may use: [*first, *first + n). */
int okto__lanes_for(const okto_context *ctx, int cls, int *first);

/* run.c */
okto_status okto__launch(okto_graph *g, cl_uint nwait, const cl_event *wait, cl_event *done);
okto_status okto__wait(okto_graph *g);
void okto__run_release(okto_graph *g);
void okto__run_free(okto_graph *g);
/* Device start and end of task i of the last run (0 when it has no profiling times). */
int okto__task_times(const okto_graph *g, int i, cl_ulong *start, cl_ulong *end);

/* optimize.c: rewrites tasks [g->opt_from, g->ntasks) (their dependencies analysed) and
 * analyses the graph again when it changed anything. */
okto_status okto__optimize(okto_graph *g);
/* fuse.c: vertical fusion of tasks [from, g->ntasks): 1 when it rewrote any, 0 when not, -1
 * without memory. Uses the dependencies as analysed; the caller analyses again. */
int okto__fuse_chains(okto_graph *g, int from);
/* optimize.c, for fuse.c: rewrites members (ascending) into one task, recorded by build at index
 * g->ntasks, with the union of the members' accesses; 0, 1 when build refused, -1 no memory */
int okto__rewrite(okto_graph *g, const int *m, int n,
                  okto_status (*build)(okto__rec *r, const int *m, int n));
/* OKTO__FUSE_* bits for g (its own setting, else OKTO_FUSE: unset or 1 all, 0 none, else a
 * comma list of gemm, optim). */
/* g's copy of s (the same pointer for equal strings), freed with g; NULL without memory. */
const char *okto__intern(okto_graph *g, const char *s);
unsigned okto__graph_fuse(const okto_graph *g);

/* For okto-bench and the tests: -1 follows OKTO_FUSE, else OKTO__FUSE_* bits. */
void okto__graph_set_fuse(okto_graph *g, int fuse);

/* perf.c: measured durations keyed by (op, dtype, shape class, device), and the cost of a
 * hand-off between lanes */
double okto__task_estimate(okto_context *ctx, const okto__task *t);
/* The same on the context's device dev (measured there, or else the first device's estimate
 * at the devices' rough speed ratio). */
double okto__task_estimate_on(okto_context *ctx, const okto__task *t, int dev);
void okto__perf_learn(okto_graph *g);
unsigned okto__perf_version(const okto_context *ctx);
/* hop[0]: between compute lanes of one device, hop[1]: to or from a copy lane, hop[2]: between
 * compute lanes of two devices (ms) */
void okto__perf_hops(okto_context *ctx, double hop[3]);
/* For the tests: set a hand-off cost (returns the old one); how many runs measured it. */
double okto__perf_set_hop(okto_context *ctx, int which, double ms);
int okto__perf_hop_samples(okto_context *ctx, int which);

#endif
