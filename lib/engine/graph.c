/* lib/engine/graph.c: graphs and recording. Ops append tasks through the recorder (lib/op.h):
 * okto__rec_begin takes the graph for the calling thread (recording, launching and destroying
 * exclude each other: one atomic state, so the check and the change are one step), the task
 * builder collects a task's kernel, arguments and accesses, and okto__rec_end rolls a failed call
 * back and keeps the graph's first error. Dependencies are derived later, when the graph is
 * launched (engine/deps.c), so recording is appending and a rollback is a truncation. */
#include "engine.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

okto_status okto_graph_create(okto_context *ctx, okto_graph **out)
{
    if (!out)
        return okto__fail(ctx, OKTO_EINVAL, "okto_graph_create: out must not be NULL");
    *out = NULL;
    if (!ctx)
        return okto__fail(NULL, OKTO_EINVAL, "okto_graph_create: ctx must not be NULL");
    okto_graph *g = calloc(1, sizeof *g);
    if (!g)
        return okto__fail(ctx, OKTO_ENOMEM, "okto_graph_create: out of host memory");
    g->ctx = ctx;
    g->sched = OKTO_SCHED_AUTO;
    g->fuse = -1;
    atomic_init(&g->state, OKTO__G_IDLE);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    okto__context_retain(ctx);
    *out = g;
    return OKTO_OK;
}

/* Takes the graph from idle to `to`; EBUSY (naming who holds it) otherwise. */
static okto_status take(okto_graph *g, int to, const char *fn)
{
    int idle = OKTO__G_IDLE;
    if (atomic_compare_exchange_strong(&g->state, &idle, to))
        return OKTO_OK;
    return okto__fail(g->ctx, OKTO_EBUSY, "%s: %s", fn,
                      idle == OKTO__G_RECORDING ? "another thread is recording into this graph"
                      : idle == OKTO__G_READING ? "another thread is reading this graph's report"
                                                : "a launch of this graph is in flight; "
                                                  "okto_graph_wait first");
}

static void give_back(okto_graph *g) { atomic_store(&g->state, OKTO__G_IDLE); }

okto_status okto_graph_set_sched(okto_graph *g, okto_sched sched)
{
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "okto_graph_set_sched: g must not be NULL");
    if (sched < OKTO_SCHED_AUTO || sched >= OKTO_SCHED_COUNT)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_graph_set_sched: %d is not an okto_sched",
                          (int)sched);
    okto_status s = take(g, OKTO__G_RECORDING, "okto_graph_set_sched");
    if (s != OKTO_OK)
        return s;
    if (sched != g->sched) {
        g->sched = sched;
        okto__graph_changed(g);
    }
    give_back(g);
    return OKTO_OK;
}

void okto__graph_changed(okto_graph *g)
{
    g->planned = 0;
    memset(&g->trial, 0, sizeof g->trial);
}

okto_sched okto__graph_sched(const okto_graph *g)
{
    return g->sched == OKTO_SCHED_AUTO ? g->ctx->cfg.sched : g->sched;
}

int okto_graph_task_count(const okto_graph *g) { return g ? g->ntasks : 0; }

okto_status okto_graph_status(const okto_graph *g, const char **msg)
{
    if (msg)
        *msg = g ? g->err_msg : "";
    return g ? g->err : OKTO_EINVAL;
}

void okto_graph_clear_error(okto_graph *g)
{
    if (g) {
        g->err = OKTO_OK;
        g->err_msg[0] = 0;
    }
}

okto_status okto_graph_destroy(okto_graph *g)
{
    if (!g)
        return OKTO_OK;
    okto_status s = take(g, OKTO__G_WAITING, "okto_graph_destroy");
    if (s != OKTO_OK)
        return s;
    okto__run_free(g);
    okto__plan_free(&g->plan);
    /* newest first: the release walks lists the driver keeps in creation order */
    for (int i = g->ntemps; i-- > 0;)
        okto__storage_release(g->temps[i]);
    for (int i = g->nstores; i-- > 0;) {
        okto__dindex_free(g->stores[i].ix);
        okto__storage_release(g->stores[i].st);
    }
    free(g->temps);
    for (int i = 0; i < g->nhandles; i++) {
        okto__storage_release(g->handles[i]->st);
        free(g->handles[i]);
    }
    free(g->handles);
    free(g->checks);
    free(g->nodes);
    free(g->stores);
    free(g->store_hash);
    free(g->tasks);
    free(g->acc);
    free(g->args);
    for (int i = 0; i < g->nexprs; i++)
        free(g->exprs[i]);
    free(g->exprs);
    free(g->deps);
    free(g->stamp);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    okto_context *ctx = g->ctx;
    free(g);
    okto__context_release(ctx);
    return OKTO_OK;
}

/* An arena is NULL until its first entry (a graph of tasks without dependencies has no deps):
 * NULL + 0 is undefined in C (UBSan's pointer-overflow check), so no arithmetic on it. */
const okto__access *okto__task_acc(const okto_graph *g, const okto__task *t)
{
    return g->acc ? g->acc + t->acc : NULL;
}

const uint32_t *okto__task_deps(const okto_graph *g, const okto__task *t)
{
    return g->deps ? g->deps + t->deps : NULL;
}

/* ---- storages -------------------------------------------------------------------------------- */

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

static int rehash(okto_graph *g, int cap)
{
    int *h = malloc((size_t)cap * sizeof *h);
    if (!h)
        return -1;
    memset(h, 0xff, (size_t)cap * sizeof *h);
    for (int i = 0; i < g->nstores; i++) {
        size_t j = ptr_hash(g->stores[i].st) & (size_t)(cap - 1);
        while (h[j] >= 0)
            j = (j + 1) & (size_t)(cap - 1);
        h[j] = i;
    }
    free(g->store_hash);
    g->store_hash = h;
    g->store_hashcap = cap;
    return 0;
}

int okto__graph_store_find(const okto_graph *g, const okto__storage *st)
{
    if (!g->store_hashcap)
        return -1;
    size_t j = ptr_hash(st) & (size_t)(g->store_hashcap - 1);
    while (g->store_hash[j] >= 0) {
        if (g->stores[g->store_hash[j]].st == st)
            return g->store_hash[j];
        j = (j + 1) & (size_t)(g->store_hashcap - 1);
    }
    return -1;
}

int okto__graph_store(okto_graph *g, okto__storage *st)
{
    if (g->store_hashcap) {
        size_t j = ptr_hash(st) & (size_t)(g->store_hashcap - 1);
        while (g->store_hash[j] >= 0) {
            if (g->stores[g->store_hash[j]].st == st)
                return g->store_hash[j];
            j = (j + 1) & (size_t)(g->store_hashcap - 1);
        }
    }
    if (g->nstores == g->storecap) {
        int cap = g->storecap ? 2 * g->storecap : 16;
        okto__gstore *s = realloc(g->stores, (size_t)cap * sizeof *s);
        if (!s)
            return -1;
        g->stores = s;
        g->storecap = cap;
    }
    if ((g->nstores + 1) * 2 > g->store_hashcap &&
        rehash(g, g->store_hashcap ? 2 * g->store_hashcap : 32) < 0)
        return -1;
    int i = g->nstores++;
    g->stores[i] = (okto__gstore){st, NULL, 0};
    okto__storage_retain(st);
    size_t j = ptr_hash(st) & (size_t)(g->store_hashcap - 1);
    while (g->store_hash[j] >= 0)
        j = (j + 1) & (size_t)(g->store_hashcap - 1);
    g->store_hash[j] = i;
    return i;
}

/* ---- recording --------------------------------------------------------------------------------- */

/* The thread recording into a graph may call other ops from inside an op (softmax_xent records a
 * reduction): those nest, and only the outermost call keeps an error or releases the graph. */
static _Thread_local okto_graph *tls_rec_graph;
static _Thread_local int tls_rec_depth;

okto_status okto__rec_begin(okto__rec *r, okto_graph *g, okto__op op, const char *fn)
{
    memset(r, 0, sizeof *r);
    r->fn = fn;
    r->op = op;
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "%s: graph must not be NULL", fn);
    r->ctx = g->ctx;
    if (tls_rec_graph == g && tls_rec_depth > 0) {
        tls_rec_depth++;
    } else {
        okto_status s = take(g, OKTO__G_RECORDING, fn);
        if (s != OKTO_OK)
            return s;
        if (g->err != OKTO_OK) {
            give_back(g);
            return okto__fail(g->ctx, g->err, "%s: the graph keeps an earlier error (%s)", fn,
                              g->err_msg);
        }
        tls_rec_graph = g;
        tls_rec_depth = 1;
    }
    r->g = g;
    r->start = g->ntasks;
    r->ntemps_start = g->ntemps;
    r->nchecks_start = g->nchecks;
    r->nnodes_start = g->nnodes;
    r->depth = tls_rec_depth;
    return OKTO_OK;
}

okto_status okto__rec_end(okto__rec *r, okto_status s)
{
    okto_graph *g = r->g;
    if (!g)
        return s; /* okto__rec_begin failed: nothing was taken */
    if (s != OKTO_OK) {
        okto__graph_truncate(g, r->start);
        while (g->ntemps > r->ntemps_start)
            okto__storage_release(g->temps[--g->ntemps]);
        g->nchecks = r->nchecks_start;
        g->nnodes = r->nnodes_start;
    } else if (g->ntasks != r->start) {
        okto__graph_changed(g);
    }
    if (--tls_rec_depth > 0)
        return s;
    tls_rec_graph = NULL;
    if (s != OKTO_OK && g->err == OKTO_OK) {
        g->err = s;
        snprintf(g->err_msg, sizeof g->err_msg, "%s", okto_last_error(NULL));
    }
    give_back(g);
    return s;
}

okto_status okto__rec_fail(okto__rec *r, okto_status s, const char *fmt, ...)
{
    char msg[OKTO__ERR_MAX - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return okto__fail(r->ctx, s, "%s: %s", r->fn, msg);
}

okto_status okto__rec_tensor(okto__rec *r, const okto_tensor *t, const char *arg, unsigned dtypes)
{
    if (!t)
        return okto__rec_fail(r, OKTO_EINVAL, "%s must not be NULL", arg);
    if (t->st->ctx != r->ctx)
        return okto__rec_fail(r, OKTO_EINVAL, "%s (%s) belongs to another context than the graph",
                              arg, OKTO__DESC(t));
    if (!(dtypes & OKTO__DT_BIT(t->dtype))) {
        char want[64];
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s; this op takes %s", arg, OKTO__DESC(t),
                              okto__dtypes_str(dtypes, want, sizeof want));
    }
    return OKTO_OK;
}

okto_status okto__rec_output(okto__rec *r, const okto_tensor *t, const char *arg, unsigned dtypes)
{
    okto_status s = okto__rec_tensor(r, t, arg, dtypes);
    if (s != OKTO_OK)
        return s;
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] > 1 && t->stride[i] == 0)
            return okto__rec_fail(r, OKTO_EINVAL,
                                  "%s (%s) is a broadcast view (dimension %d has stride 0): its "
                                  "elements alias and cannot be written",
                                  arg, OKTO__DESC(t), i);
    return OKTO_OK;
}

okto_status okto__rec_no_alias(okto__rec *r, const okto_tensor *out, const char *oname,
                               const okto_tensor *in, const char *iname, int same_ok)
{
    if (!out || !in || !okto__views_overlap(out, in))
        return OKTO_OK;
    if (same_ok && okto__same_view(out, in))
        return OKTO_OK;
    return okto__rec_fail(r, OKTO_EINVAL,
                          "%s (%s at element %zu) and %s (%s at element %zu) are views of one "
                          "tensor that overlap%s",
                          oname, OKTO__DESC(out), out->offset, iname, OKTO__DESC(in), in->offset,
                          same_ok ? " (only the very same view may be both)" : "");
}

/* Below about 64K elements a part costs more than it saves: in okto-bench's dag-chains trace a
 * 131K-float part took 7 us (scale) to 33 us (abs) on PoCL, while a hand-off between lanes costs
 * 10-40 us (engine/perf.c) and each launch a few us of host time. */
#define OKTO__PART_MIN_WORK 65536.0

int okto__rec_parts(const okto__rec *r, size_t rows, double work)
{
    if (!r->ctx)
        return 1; /* a call that failed its first check: it records nothing anyway */
    int lanes = r->ctx->ncompute;
    if (lanes < 2 || rows < 2 || work < 2 * OKTO__PART_MIN_WORK)
        return 1;
    int n = (int)(work / OKTO__PART_MIN_WORK);
    n = n < lanes ? n : lanes;
    return (size_t)n < rows ? n : (int)rows;
}

okto__device *okto__rec_device(const okto__rec *r) { return &r->ctx->dev; }

okto_status okto__rec_temp(okto__rec *r, okto_dtype dtype, int rank, const size_t *shape,
                           okto_tensor *out)
{
    okto_graph *g = r->g;
    if (g->ntemps == g->tempcap) {
        int cap = g->tempcap ? 2 * g->tempcap : 16;
        okto__storage **t = realloc(g->temps, (size_t)cap * sizeof *t);
        if (!t)
            return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory for a temporary");
        g->temps = t;
        g->tempcap = cap;
    }
    okto_status s = okto__storage_new(r->ctx, dtype, rank, shape, r->fn, out);
    if (s == OKTO_OK)
        g->temps[g->ntemps++] = out->st;
    return s;
}

okto_status okto_graph_tensor(okto_graph *g, okto_dtype dtype, int rank, const size_t *shape,
                              okto_tensor **out)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_FILL, "okto_graph_tensor");
    if (s == OKTO_OK && !out)
        s = okto__rec_fail(&r, OKTO_EINVAL, "out must not be NULL");
    if (out)
        *out = NULL;
    okto_tensor v;
    if (s == OKTO_OK && g->nhandles == g->handlecap) {
        int cap = g->handlecap ? 2 * g->handlecap : 16;
        okto_tensor **h = realloc(g->handles, (size_t)cap * sizeof *h);
        if (!h)
            s = okto__rec_fail(&r, OKTO_ENOMEM, "out of host memory");
        else
            g->handles = h, g->handlecap = cap;
    }
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, dtype, rank, shape, &v);
    okto_tensor *t = s == OKTO_OK ? malloc(sizeof *t) : NULL;
    if (s == OKTO_OK && !t)
        s = okto__rec_fail(&r, OKTO_ENOMEM, "out of host memory");
    if (s == OKTO_OK) {
        /* the handle holds its own reference: a rolled-back call around this one releases the
         * temporary's, not the handle's */
        *t = v;
        t->heap = 2;
        okto__storage_retain(t->st);
        g->handles[g->nhandles++] = t;
        *out = t;
    }
    return okto__rec_end(&r, s);
}

okto_status okto__rec_check(okto__rec *r, const okto_tensor *flag, const char *msg)
{
    static const int zero[4] = {0, 0, 0, 0};
    return okto__rec_check_init(r, flag, msg, zero, 0, 0);
}

okto_status okto__rec_check_init(okto__rec *r, const okto_tensor *flag, const char *msg,
                                 const int init[4], int base, int write)
{
    okto_graph *g = r->g;
    if (g->nchecks == g->checkcap) {
        int cap = g->checkcap ? 2 * g->checkcap : 4;
        okto__check *c = realloc(g->checks, (size_t)cap * sizeof *c);
        if (!c)
            return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory");
        g->checks = c;
        g->checkcap = cap;
    }
    if (okto__graph_store(g, flag->st) < 0)
        return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory");
    okto__check *c = &g->checks[g->nchecks++];
    c->st = flag->st;
    c->offset = flag->st->base + flag->offset;
    snprintf(c->prefix, sizeof c->prefix, "%s", r->fn);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    memcpy(c->init, init, sizeof c->init);
    c->base = base;
    if (write) {
        okto_status s = okto_tensor_write((okto_tensor *)flag, init);
        if (s != OKTO_OK) {
            g->nchecks--;
            return s;
        }
    }
    return OKTO_OK;
}

void okto__graph_truncate(okto_graph *g, int n)
{
    if (n >= g->ntasks)
        return;
    /* the arenas are in task order: the removed tasks' entries are at their ends, except
     * what the optimizer appended for tasks it rewrote (below its floors) */
    g->nacc = g->tasks[n].acc > g->acc_floor ? g->tasks[n].acc : g->acc_floor;
    g->nargs = g->tasks[n].args > g->arg_floor ? g->tasks[n].args : g->arg_floor;
    /* a batch whose launch goes: its other members still hold their own work */
    for (int i = 0; g->nbatched && i < n; i++)
        if (g->tasks[i].into > (uint32_t)n)
            g->tasks[i].into = 0;
    if (g->opt_from > n)
        g->opt_from = n;
    for (int i = n; i < g->ntasks; i++)
        for (uint32_t k = 0; k < g->tasks[i].ndeps; k++)
            g->tasks[g->deps[g->tasks[i].deps + k]].nsucc--;
    if (n < g->analyzed) /* only tests truncate analysed tasks: analyse again from scratch */
        g->analyzed = 0;
    g->ntasks = n;
    okto__graph_changed(g);
}

/* ---- the task builder ------------------------------------------------------------------------- */

void okto__tb_init(okto__tb *t, okto__rec *r, okto__op op)
{
    memset(t, 0, sizeof *t);
    t->r = r;
    t->op = op;
    t->nparts = 1;
    t->work_dim = 1;
    t->global[0] = t->global[1] = t->global[2] = 1;
    t->local[0] = t->local[1] = t->local[2] = 1;
}

static void tb_fail(okto__tb *t, okto_status s, const char *what)
{
    if (t->status == OKTO_OK)
        t->status = okto__rec_fail(t->r, s, "%s (op %s)", what, okto__ops[t->op]->name);
}

void okto__tb_kid(okto__tb *t, okto__kid kid)
{
    t->kid = kid;
    t->has_kernel = 1;
}

void okto__tb_kernel(okto__tb *t, const char *file, okto_dtype dtype, const char *extra,
                     const char *name)
{
    char opts[256];
    snprintf(opts, sizeof opts, "-DOKTO_DT=%d%s%s", (int)dtype, extra ? " " : "",
             extra ? extra : "");
    okto__progkey key = {file, NULL, opts};
    okto__kid kid;
    t->dtype = dtype;
    okto_status s = okto__kernel_id(t->r->ctx, &key, name, &kid);
    if (s != OKTO_OK) {
        if (t->status == OKTO_OK)
            t->status = s;
        return;
    }
    okto__tb_kid(t, kid);
}

static void *tb_arg(okto__tb *t, int kind, size_t size)
{
    size_t room = (size + 7) & ~(size_t)7;
    if (t->nargs == OKTO__TB_MAX_ARGS || t->argbytes + room > OKTO__TB_ARGBYTES) {
        tb_fail(t, OKTO_EINVAL, "too many kernel arguments");
        return NULL;
    }
    t->argkind[t->nargs] = (unsigned char)kind;
    t->argsize[t->nargs] = (unsigned short)size;
    t->argst[t->nargs] = NULL;
    t->nargs++;
    void *p = t->args + t->argbytes;
    t->argbytes += room;
    return p;
}

void okto__tb_arg_value(okto__tb *t, const void *p, size_t size)
{
    void *d = tb_arg(t, OKTO__ARG_VALUE, size);
    if (d)
        memcpy(d, p, size);
}

void okto__tb_arg_ulong(okto__tb *t, uint64_t v)
{
    cl_ulong x = v;
    okto__tb_arg_value(t, &x, sizeof x);
}
void okto__tb_arg_long(okto__tb *t, int64_t v)
{
    cl_long x = v;
    okto__tb_arg_value(t, &x, sizeof x);
}
void okto__tb_arg_int(okto__tb *t, int v)
{
    cl_int x = v;
    okto__tb_arg_value(t, &x, sizeof x);
}
void okto__tb_arg_float(okto__tb *t, float v)
{
    cl_float x = v;
    okto__tb_arg_value(t, &x, sizeof x);
}

void okto__tb_arg_local(okto__tb *t, size_t bytes)
{
    cl_ulong b = bytes;
    void *d = tb_arg(t, OKTO__ARG_LOCAL, sizeof b);
    if (d)
        memcpy(d, &b, sizeof b);
}

void okto__tb_arg_tensor(okto__tb *t, const okto_tensor *v)
{
    void *d = tb_arg(t, OKTO__ARG_MEM, sizeof(cl_mem));
    if (!d)
        return;
    memcpy(d, &v->st->mem, sizeof(cl_mem));
    t->argst[t->nargs - 1] = v->st;
    okto__tb_arg_ulong(t, v->st->base + v->offset);
}

void okto__tb_arg_mem(okto__tb *t, const okto_tensor *v)
{
    void *d = tb_arg(t, OKTO__ARG_MEM, sizeof(cl_mem));
    if (!d)
        return;
    memcpy(d, &v->st->mem, sizeof(cl_mem));
    t->argst[t->nargs - 1] = v->st;
}

void okto__tb_access(okto__tb *t, const okto_tensor *v, int mode)
{
    if (t->nacc == OKTO__TB_MAX_ACC) {
        tb_fail(t, OKTO_EINVAL, "too many tensor accesses");
        return;
    }
    t->acc[t->nacc].view = *v;
    t->acc[t->nacc].mode = mode;
    t->nacc++;
}

void okto__tb_range(okto__tb *t, unsigned dim, const size_t *global, const size_t *local)
{
    t->work_dim = dim;
    t->has_local = local != NULL;
    for (unsigned d = 0; d < 3; d++) {
        t->global[d] = d < dim ? global[d] : 1;
        t->local[d] = d < dim && local ? local[d] : 1;
        if (t->global[d] > UINT32_MAX)
            tb_fail(t, OKTO_EINVAL, "a launch dimension over 2^32 work items");
    }
}

void okto__tb_range_1d(okto__tb *t, size_t n)
{
    size_t g, l;
    okto__grid_1d(&t->r->ctx->dev, n, &g, &l);
    okto__tb_range(t, 1, &g, &l);
}

void okto__tb_cost(okto__tb *t, double flops, double bytes, uint64_t shape_key)
{
    t->flops = flops;
    t->bytes = bytes;
    t->shape_key = shape_key;
}

void okto__tb_part(okto__tb *t, int part, int nparts)
{
    t->part = part;
    t->nparts = nparts;
}

void okto__tb_enqueue(okto__tb *t, okto__enqueue_fn fn, const void *data, size_t size)
{
    t->enqueue = fn;
    t->has_kernel = 0;
    if (size > OKTO__TB_ARGBYTES) {
        tb_fail(t, OKTO_EINVAL, "custom task data too large");
        return;
    }
    if (size) /* data may be NULL then: memcpy's arguments must not be (UBSan) */
        memcpy(t->args, data, size);
    t->argbytes = size;
    t->nargs = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    /* allocated on first use even when nothing is needed yet (a task without arguments):
     * later arithmetic on a NULL arena is undefined (UBSan) */
    if (need <= *cap && *p)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n)
        return -1;
    *p = n;
    *cap = c;
    return 0;
}

static uint64_t perf_key(const okto__tb *t, const okto_context *ctx)
{
    uint64_t h = 1469598103934665603ull,
             parts[4] = {t->op, t->dtype, t->shape_key, (uint64_t)(uintptr_t)ctx->dev.id};
    for (int i = 0; i < 4; i++) {
        h ^= parts[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

okto_status okto__tb_commit(okto__tb *t)
{
    okto__rec *r = t->r;
    okto_graph *g = r->g;
    if (t->status != OKTO_OK)
        return t->status;
    if (!t->has_kernel && !t->enqueue)
        return okto__rec_fail(r, OKTO_EINVAL, "internal: a task with neither kernel nor enqueue");
    size_t cap = (size_t)g->cap,
           argroom = ((t->has_kernel ? t->argbytes + 8u * (size_t)t->nargs : t->argbytes) + 7) &
                     ~(size_t)7;
    if (grow((void **)&g->tasks, &cap, (size_t)g->ntasks + 1, sizeof *g->tasks) < 0 ||
        grow((void **)&g->acc, &g->acccap, g->nacc + (size_t)t->nacc, sizeof *g->acc) < 0 ||
        grow((void **)&g->args, &g->argcap, g->nargs + argroom, 1) < 0)
        return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory recording %s",
                              okto__ops[t->op]->name);
    g->cap = (int)cap;
    if (g->ntasks == INT32_MAX - 1 || g->nacc + (size_t)t->nacc > UINT32_MAX ||
        g->nargs + argroom > UINT32_MAX)
        return okto__rec_fail(r, OKTO_ENOMEM, "graph too large");
    /* storages first (kernel arguments and accesses), so nothing is half-added on failure */
    for (int i = 0; i < t->nargs; i++)
        if (t->argst[i] && okto__graph_store(g, t->argst[i]) < 0)
            return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory recording %s",
                                  okto__ops[t->op]->name);
    okto__task *k = &g->tasks[g->ntasks];
    memset(k, 0, sizeof *k);
    k->acc = (uint32_t)g->nacc;
    for (int i = 0; i < t->nacc; i++) {
        const okto__tb_acc *a = &t->acc[i];
        int si = okto__graph_store(g, a->view.st);
        if (si < 0)
            return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory recording %s",
                                  okto__ops[t->op]->name);
        okto__access x = {(uint32_t)si, (uint8_t)a->mode, {0}};
        okto__region_of(&a->view, &x.region);
        /* the same region twice (out may be in): one access with both modes, never a task
         * that depends on itself */
        int merged = 0;
        for (uint32_t j = k->acc; j < k->acc + k->nacc; j++)
            if (g->acc[j].store == x.store &&
                memcmp(&g->acc[j].region, &x.region, sizeof x.region) == 0) {
                g->acc[j].mode |= x.mode;
                merged = 1;
            }
        if (!merged)
            g->acc[k->acc + k->nacc++] = x;
    }
    k->op = (uint16_t)t->op;
    k->cls = t->copy ? OKTO__COPY : OKTO__COMPUTE;
    k->dtype = (uint8_t)t->dtype;
    k->part = (uint16_t)t->part;
    k->nparts = (uint16_t)t->nparts;
    k->kid = t->has_kernel ? t->kid : OKTO__NO_KERNEL;
    k->enqueue = t->has_kernel ? NULL : t->enqueue;
    k->work_dim = (uint8_t)t->work_dim;
    k->has_local = (uint8_t)t->has_local;
    for (int d = 0; d < 3; d++) {
        k->global[d] = (uint32_t)t->global[d];
        k->local[d] = (uint32_t)t->local[d];
    }
    k->args = (uint32_t)g->nargs;
    if (t->has_kernel) {
        /* records: an 8-byte header (kind, size), then the value padded to 8 bytes */
        unsigned char *p = g->args + g->nargs, *src = t->args;
        for (int i = 0; i < t->nargs; i++) {
            uint32_t hdr[2] = {t->argkind[i], t->argsize[i]};
            memcpy(p, hdr, 8);
            size_t room = ((size_t)t->argsize[i] + 7) & ~(size_t)7;
            memcpy(p + 8, src, room);
            p += 8 + room;
            src += room;
        }
        k->nargs = (uint32_t)t->nargs;
    } else {
        memcpy(g->args + g->nargs, t->args, t->argbytes);
        k->nargs = (uint32_t)t->argbytes;
    }
    g->nargs += argroom;
    g->nacc += k->nacc;
    k->flops = (float)t->flops;
    k->bytes = (float)t->bytes;
    k->perf_key = perf_key(t, r->ctx);
    k->expr = t->fuse_expr ? okto__intern(g, t->fuse_expr) : NULL; /* NULL (no memory): unfusable */
    g->ntasks++;
    return OKTO_OK;
}

/* A task's fusion expression outlives the call that recorded it (the gradient ops format theirs
 * into a stack buffer), so the graph keeps a copy. The distinct ones are few (one per
 * elementwise row, and its accumulating form), so a linear search finds them. */
const char *okto__intern(okto_graph *g, const char *s)
{
    for (int i = 0; i < g->nexprs; i++)
        if (strcmp(g->exprs[i], s) == 0)
            return g->exprs[i];
    if (g->nexprs == g->exprcap) {
        int cap = g->exprcap ? 2 * g->exprcap : 8;
        char **p = realloc(g->exprs, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        g->exprs = p, g->exprcap = cap;
    }
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (!c)
        return NULL;
    memcpy(c, s, n);
    return g->exprs[g->nexprs++] = c;
}

/* ---- what the optimizer's batch hooks read (lib/op.h) ------------------------------------------- */

void okto__task_get(const okto_graph *g, int task, okto__task_info *out)
{
    const okto__task *t = &g->tasks[task];
    out->kid = t->kid;
    out->fn = t->enqueue;
    out->data = t->kid == OKTO__NO_KERNEL ? g->args + t->args : NULL;
    out->nargs = t->kid == OKTO__NO_KERNEL ? 0 : (int)t->nargs;
    out->part = t->part;
    out->nparts = t->nparts;
    out->dtype = t->dtype;
    out->expr = t->expr;
}

const void *okto__task_arg(const okto_graph *g, int task, int i)
{
    const okto__task *t = &g->tasks[task];
    if (t->kid == OKTO__NO_KERNEL || i < 0 || (uint32_t)i >= t->nargs)
        return NULL;
    const unsigned char *p = g->args + t->args;
    for (int k = 0; k < i; k++) {
        uint32_t hdr[2];
        memcpy(hdr, p, 8);
        p += 8 + (((size_t)hdr[1] + 7) & ~(size_t)7);
    }
    return p + 8;
}
