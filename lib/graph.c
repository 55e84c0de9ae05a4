/* lib/graph.c: graphs and recording. Every op appends tasks here; each task's accesses
 * (storage, row range, mode) give its dependencies at once:
 *   - two accesses conflict when their row ranges overlap and one of them writes (RAW, WAR,
 *     WAW); disjoint row ranges never conflict, which is what lets partitioned layers pipeline;
 *   - scanning a storage's history backwards, a write that covers part of the range hides
 *     everything earlier on that part (it already depends on it), so only the nearest
 *     conflicts become edges;
 *   - edges implied through another dependency of the same task are then dropped (transitive
 *     reduction), so wait lists stay short. */
#include "internal.h"

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
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    okto__context_retain(ctx);
    *out = g;
    return OKTO_OK;
}

okto_status okto_graph_set_sched(okto_graph *g, okto_sched sched)
{
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "okto_graph_set_sched: g must not be NULL");
    if (sched < OKTO_SCHED_AUTO || sched > OKTO_SCHED_HEFT)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_graph_set_sched: %d is not an okto_sched",
                          (int)sched);
    if (atomic_load(&g->busy))
        return okto__fail(g->ctx, OKTO_EBUSY,
                          "okto_graph_set_sched: a launch of this graph is in flight");
    if (sched != g->sched)
        okto__graph_changed(g);
    g->sched = sched;
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

okto_status okto_graph_destroy(okto_graph *g)
{
    if (!g)
        return OKTO_OK;
    if (atomic_load(&g->busy))
        return okto__fail(g->ctx, OKTO_EBUSY,
                          "okto_graph_destroy: a launch is in flight; okto_graph_wait first");
    okto__release_events(g);
    for (int i = 0; i < g->ntasks; i++) {
        okto__task *t = &g->tasks[i];
        if (t->kernel)
            clReleaseKernel(t->kernel);
        free(t->data);
        free(t->acc);
        free(t->deps);
    }
    free(g->tasks);
    for (int i = 0; i < g->nstores; i++) {
        okto__storage_release(g->stores[i].st);
        free(g->stores[i].h);
    }
    free(g->stores);
    free(g->jobs);
    okto__plan_free(&g->plan);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    okto_context *ctx = g->ctx;
    free(g);
    okto__context_release(ctx);
    return OKTO_OK;
}

void okto__graph_truncate(okto_graph *g, int n)
{
    while (g->ntasks > n) {
        okto__task *t = &g->tasks[--g->ntasks];
        for (int i = 0; i < t->ndeps; i++)
            g->tasks[t->deps[i]].nsucc--;
        if (t->kernel)
            clReleaseKernel(t->kernel);
        free(t->data);
        free(t->acc);
        free(t->deps);
    }
    /* histories are in recorded order: the removed tasks' entries are at the ends */
    for (int i = 0; i < g->nstores; i++)
        while (g->stores[i].n > 0 && g->stores[i].h[g->stores[i].n - 1].task >= n)
            g->stores[i].n--;
    okto__graph_changed(g);
}

okto_status okto__check_graph(okto_graph *g, const char *op)
{
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "%s: graph must not be NULL", op);
    if (atomic_load(&g->busy))
        return okto__fail(g->ctx, OKTO_EBUSY,
                          "%s: the graph cannot be changed while a launch is in flight", op);
    return OKTO_OK;
}

okto_status okto__check_tensor(okto_graph *g, const okto_tensor *t, const char *op,
                               const char *arg)
{
    if (!t)
        return okto__fail(g->ctx, OKTO_EINVAL, "%s: %s must not be NULL", op, arg);
    if (t->st->ctx != g->ctx)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "%s: %s (%zux%zu) belongs to another context than the graph", op, arg,
                          t->rows, t->cols);
    return OKTO_OK;
}

okto__access okto__acc(const okto_tensor *t, size_t r0, size_t r1, int mode)
{
    okto__access a = {t->st, t->row0 + r0, t->row0 + r1, mode};
    return a;
}

void okto__add_access(okto__access *acc, int *n, okto__access a)
{
    for (int i = 0; i < *n; i++)
        if (acc[i].st == a.st && acc[i].row0 == a.row0 && acc[i].row1 == a.row1) {
            acc[i].mode |= a.mode;
            return;
        }
    acc[(*n)++] = a;
}

int okto__same_rows(const okto_tensor *a, const okto_tensor *b)
{
    return a && b && a->st == b->st && a->row0 == b->row0 && a->rows == b->rows;
}

int okto__rows_overlap(const okto_tensor *a, const okto_tensor *b)
{
    return a && b && a->st == b->st && a->row0 < b->row0 + b->rows && b->row0 < a->row0 + a->rows;
}

cl_int okto__set_tensor_arg(cl_kernel k, cl_uint idx, const okto_tensor *t, size_t r0)
{
    cl_int err = clSetKernelArg(k, idx, sizeof(cl_mem), &t->st->mem);
    if (err == CL_SUCCESS) {
        cl_int off = (cl_int)((t->row0 + r0) * t->cols);
        err = clSetKernelArg(k, idx + 1, sizeof off, &off);
    }
    return err;
}

/* Below about 64K elements a part costs more than it saves: in okto-bench's dag-chains trace a
 * 131K-float part took 7 us (scale) to 33 us (abs) on PoCL, while a hand-off between lanes
 * costs 10-40 us (lib/plan.c) and each launch a few us of host time. */
#define OKTO__PART_MIN_WORK 65536.0

int okto__parts(const okto_graph *g, size_t rows, double work)
{
    int lanes = g->ctx->ncompute;
    if (lanes < 2 || rows < 2 || work < 2 * OKTO__PART_MIN_WORK)
        return 1;
    int n = (int)(work / OKTO__PART_MIN_WORK);
    n = n < lanes ? n : lanes;
    return (size_t)n < rows ? n : (int)rows;
}

/* ---- dependency analysis ------------------------------------------------------------- */

static okto__gstore *gstore_of(okto_graph *g, okto__storage *st)
{
    for (int i = 0; i < g->nstores; i++)
        if (g->stores[i].st == st)
            return &g->stores[i];
    if (g->nstores == g->storecap) {
        int cap = g->storecap ? 2 * g->storecap : 8;
        okto__gstore *s = realloc(g->stores, (size_t)cap * sizeof *s);
        if (!s)
            return NULL;
        g->stores = s;
        g->storecap = cap;
    }
    okto__gstore *gs = &g->stores[g->nstores++];
    memset(gs, 0, sizeof *gs);
    gs->st = st;
    okto__storage_retain(st);
    return gs;
}

static int add_dep(okto__task *t, int d)
{
    for (int i = 0; i < t->ndeps; i++)
        if (t->deps[i] == d)
            return 0;
    if (t->ndeps == t->depcap) {
        int cap = t->depcap ? 2 * t->depcap : 4;
        int *p = realloc(t->deps, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        t->deps = p;
        t->depcap = cap;
    }
    t->deps[t->ndeps++] = d;
    return 0;
}

/* Row intervals of an access not yet hidden by a later covering write. Small and bounded: an
 * interval splits at most in two per write, and we stop early when the list would overflow
 * (then the scan just keeps every conflict it sees, which is still correct). */
#define OKTO__MAX_IVL 16
typedef struct ivl_set {
    size_t lo[OKTO__MAX_IVL], hi[OKTO__MAX_IVL];
    int n;
    int exact;   /* 0 once an interval could not be split: no more hiding */
} ivl_set;

static int ivl_overlaps(const ivl_set *s, size_t lo, size_t hi)
{
    for (int i = 0; i < s->n; i++)
        if (lo < s->hi[i] && s->lo[i] < hi)
            return 1;
    return 0;
}

static void ivl_subtract(ivl_set *s, size_t lo, size_t hi)
{
    if (!s->exact)
        return;
    ivl_set out = {.n = 0, .exact = 1};
    for (int i = 0; i < s->n; i++) {
        size_t a = s->lo[i], b = s->hi[i];
        if (hi <= a || b <= lo) {
            /* bounds-checked too: after a split earlier in the list, copying the untouched
             * intervals could otherwise write past the arrays (stack corruption) */
            if (out.n + 1 > OKTO__MAX_IVL) {
                s->exact = 0;
                return;
            }
            out.lo[out.n] = a, out.hi[out.n++] = b;
            continue;
        }
        if (out.n + 2 > OKTO__MAX_IVL) {
            s->exact = 0;
            return;
        }
        if (a < lo)
            out.lo[out.n] = a, out.hi[out.n++] = lo;
        if (hi < b)
            out.lo[out.n] = hi, out.hi[out.n++] = b;
    }
    *s = out;
}

static int find_deps(okto_graph *g, int ti, const okto__access *a, okto__gstore *gs)
{
    okto__task *t = &g->tasks[ti];
    ivl_set open = {.lo = {a->row0}, .hi = {a->row1}, .n = 1, .exact = 1};
    for (int i = gs->n - 1; i >= 0 && open.n > 0; i--) {
        const okto__hent *h = &gs->h[i];
        if (h->task == ti || !ivl_overlaps(&open, h->row0, h->row1))
            continue;
        if ((h->mode & OKTO__W) || (a->mode & OKTO__W))
            if (add_dep(t, h->task) < 0)
                return -1;
        if (h->mode & OKTO__W)
            ivl_subtract(&open, h->row0, h->row1);
    }
    return 0;
}

/* Drops d from t's deps when another dep of t reaches d: a DFS over deps that never goes below
 * index d (deps always point to lower indices), with a visit stamp per search. stamp is zeroed
 * by the caller for each task, so the mark counts from 0 here (a process-wide counter would
 * overflow, which is undefined, after 2^31 searches). Every task is stamped when it is pushed,
 * the first level included: each is pushed at most once per search, so the stack never holds
 * more than the ti entries it was sized for (unstamped first-level deps were pushed again
 * through other deps, overflowing the stack on wide fan-ins). */
static void reduce_deps(okto_graph *g, okto__task *t, int *stamp, int *stack)
{
    if (t->ndeps < 2)
        return;
    int mark = 0;
    for (int i = 0; i < t->ndeps; i++) {
        int d = t->deps[i], reachable = 0, sp = 0;
        mark++;
        for (int j = 0; j < t->ndeps; j++)
            if (j != i && t->deps[j] > d && stamp[t->deps[j]] != mark) {
                stamp[t->deps[j]] = mark;
                stack[sp++] = t->deps[j];
            }
        while (sp > 0 && !reachable) {
            int u = stack[--sp];
            const okto__task *tu = &g->tasks[u];
            for (int k = 0; k < tu->ndeps; k++) {
                int v = tu->deps[k];
                if (v == d) {
                    reachable = 1;
                    break;
                }
                if (v > d && stamp[v] != mark) {
                    stamp[v] = mark;
                    stack[sp++] = v;
                }
            }
        }
        if (reachable) {
            t->deps[i] = t->deps[--t->ndeps];
            i--;
        }
    }
}

int okto__graph_add(okto_graph *g, const okto__task *src)
{
    okto_status s = OKTO_OK;
    okto__task *t = NULL;
    if (g->ntasks == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        okto__task *p = realloc(g->tasks, (size_t)cap * sizeof *p);
        if (!p) {
            s = okto__fail(g->ctx, OKTO_ENOMEM, "recording %s: out of host memory", src->op);
            goto fail;
        }
        g->tasks = p;
        g->cap = cap;
    }
    int ti = g->ntasks;
    t = &g->tasks[ti];
    *t = *src;
    t->deps = NULL;
    t->ndeps = t->depcap = t->nsucc = 0;
    t->ev = t->ev_start = NULL;
    atomic_init(&t->gen, 0);
    t->lane = -1;
    t->acc = malloc((size_t)(src->nacc ? src->nacc : 1) * sizeof *t->acc);
    if (!t->acc) {
        s = okto__fail(g->ctx, OKTO_ENOMEM, "recording %s: out of host memory", src->op);
        goto fail;
    }
    memcpy(t->acc, src->acc, (size_t)src->nacc * sizeof *t->acc);

    /* every storage first, so a failure below leaves the histories untouched */
    okto__gstore *gs[64];
    int gi[64];
    if (t->nacc > 64) {
        s = okto__fail(g->ctx, OKTO_EINVAL, "recording %s: %d tensor arguments (at most 64)",
                       src->op, t->nacc);
        goto fail_acc;
    }
    for (int i = 0; i < t->nacc; i++) {
        okto__gstore *x = gstore_of(g, t->acc[i].st); /* may move g->stores: keep indices */
        if (!x) {
            s = okto__fail(g->ctx, OKTO_ENOMEM, "recording %s: out of host memory", src->op);
            goto fail_acc;
        }
        gi[i] = (int)(x - g->stores);
    }
    for (int i = 0; i < t->nacc; i++) {
        okto__gstore *x = gs[i] = &g->stores[gi[i]];
        if (x->n + t->nacc > x->cap) {
            int cap = x->cap ? 2 * x->cap + t->nacc : 16 + t->nacc;
            okto__hent *h = realloc(x->h, (size_t)cap * sizeof *h);
            if (!h) {
                s = okto__fail(g->ctx, OKTO_ENOMEM, "recording %s: out of host memory", src->op);
                goto fail_acc;
            }
            x->h = h;
            x->cap = cap;
        }
    }
    for (int i = 0; i < t->nacc; i++)
        if (find_deps(g, ti, &t->acc[i], gs[i]) < 0) {
            s = okto__fail(g->ctx, OKTO_ENOMEM, "recording %s: out of host memory", src->op);
            goto fail_acc;
        }
    if (t->ndeps > 1) {
        int *stamp = calloc((size_t)ti + 1, sizeof *stamp);
        int *stack = malloc(((size_t)ti + 1) * sizeof *stack);
        if (stamp && stack)
            reduce_deps(g, t, stamp, stack); /* without memory we keep the extra edges */
        free(stamp);
        free(stack);
    }
    for (int i = 0; i < t->nacc; i++) {
        okto__hent h = {ti, t->acc[i].row0, t->acc[i].row1, t->acc[i].mode};
        gs[i]->h[gs[i]->n++] = h;
    }
    for (int i = 0; i < t->ndeps; i++)
        g->tasks[t->deps[i]].nsucc++;
    g->ntasks++;
    okto__graph_changed(g);
    return ti;

fail_acc:
    free(t->deps);
    free(t->acc);
fail:
    if (src->kernel)
        clReleaseKernel(src->kernel);
    free(src->data);
    return s;
}
