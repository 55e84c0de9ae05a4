/* lib/plan.c: the coordinator's planning half: the perf model (measured durations by op and
 * shape) and the scheduling policies that turn a graph into per-lane ordered task lists.
 *
 * Every policy emits each lane's list in one global topological order. Lane threads only wait
 * for dependencies that come earlier in that order, and lanes take launches in the order they
 * were posted, so no two lanes can ever wait on each other. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- perf model ---------------------------------------------------------------------- */

/* Before anything was measured: an event crossing lanes costs a little host time. */
#define OKTO__HOP_DEFAULT_MS 0.002

void okto__perf_init(okto__perf_model *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->hop_ms[0] = m->hop_ms[1] = OKTO__HOP_DEFAULT_MS;
}

typedef struct span {
    cl_ulong a, b;
} span;

static int span_by_start(const void *x, const void *y)
{
    const span *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a;
}

/* The device did nothing at all between t0 and t1: no task of the run overlaps (t0, t1).
 * busy: the run's task intervals merged and sorted. */
static int device_idle(const span *busy, int n, cl_ulong t0, cl_ulong t1)
{
    int lo = 0, hi = n; /* first merged interval that ends after t0 */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (busy[mid].b <= t0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == n || busy[lo].a >= t1;
}

/* The lane hand-offs of the last run. For each task whose latest input came from another lane,
 * whose own lane was free by then and while the device did nothing else, start - that input's
 * end is what the hand-off cost: the other lane's host thread publishing the event, the driver
 * noticing it. (A gap while other work ran says nothing: the task may have waited for a core.)
 * On PoCL this is 10-40 us against ~1 us within one queue, which is why HEFT must know it:
 * tasks shorter than a hand-off belong on one lane. Returns 1 when an estimate moved by more
 * than a third. */
static int learn_hops(okto_graph *g, okto__perf_model *m)
{
    const okto__plan *p = &g->plan;
    int moved = 0, ncompute = g->ctx->ncompute;
    double sum[2] = {0, 0};
    int n[2] = {0, 0};
    span *busy = malloc((size_t)(g->ntasks ? g->ntasks : 1) * sizeof *busy);
    if (!busy)
        return 0;
    int nb = 0;
    for (int i = 0; i < g->ntasks; i++)
        if (okto__task_times(&g->tasks[i], &busy[nb].a, &busy[nb].b))
            nb++;
    qsort(busy, (size_t)nb, sizeof *busy, span_by_start);
    int merged = 0;
    for (int i = 0; i < nb; i++) {
        if (merged && busy[i].a <= busy[merged - 1].b) {
            if (busy[i].b > busy[merged - 1].b)
                busy[merged - 1].b = busy[i].b;
        } else {
            busy[merged++] = busy[i];
        }
    }
    for (int l = 0; l < p->nlanes; l++) {
        cl_ulong prev_end = 0;
        for (int k = 0; k < p->count[l]; k++) {
            const okto__task *t = &g->tasks[p->order[l][k]];
            cl_ulong a, b, da, db, ready = 0;
            if (!okto__task_times(t, &a, &b))
                continue;
            int from = -1;
            for (int d = 0; d < t->ndeps; d++) {
                const okto__task *dt = &g->tasks[t->deps[d]];
                if (okto__task_times(dt, &da, &db) && db >= ready) {
                    ready = db;
                    from = dt->lane;
                }
            }
            if (from >= 0 && from != l && ready >= prev_end && a > ready &&
                device_idle(busy, merged, ready, a)) {
                int c = l >= ncompute || from >= ncompute;
                sum[c] += (double)(a - ready) * 1e-6;
                n[c]++;
            }
            prev_end = b;
        }
    }
    free(busy);
    for (int c = 0; c < 2; c++) {
        if (!n[c])
            continue;
        double mean = sum[c] / n[c], old = m->hop_ms[c];
        m->hop_ms[c] = m->hop_n[c] ? 0.75 * old + 0.25 * mean : mean;
        if (m->hop_n[c] < 3 && fabs(m->hop_ms[c] - old) > old / 3)
            moved = 1;
        m->hop_n[c]++;
    }
    if (moved)
        okto__log(g->ctx, OKTO_LOG_INFO, "lane hand-off measured: %.1f us between compute lanes, "
                  "%.1f us to or from a copy lane", m->hop_ms[0] * 1e3, m->hop_ms[1] * 1e3);
    return moved;
}

void okto__perf_fini(okto__perf_model *m)
{
    free(m->slots);
    pthread_mutex_destroy(&m->lock);
}

static uint64_t task_key(const okto__task *t)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the op name, then the shape key */
    for (const char *p = t->op; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h ^= t->shape_key + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h ? h : 1;
}

static okto__perf_entry *perf_find(okto__perf_model *m, uint64_t key, int insert)
{
    if (insert && (m->used + 1) * 2 > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        okto__perf_entry *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key) {
                size_t j = m->slots[i].key & (cap - 1);
                while (slots[j].key)
                    j = (j + 1) & (cap - 1);
                slots[j] = m->slots[i];
            }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    if (!m->cap)
        return NULL;
    size_t j = key & (m->cap - 1);
    while (m->slots[j].key && m->slots[j].key != key)
        j = (j + 1) & (m->cap - 1);
    if (m->slots[j].key == key)
        return &m->slots[j];
    if (!insert)
        return NULL;
    m->slots[j].key = key;
    m->used++;
    return &m->slots[j];
}

double okto__task_estimate(okto_context *ctx, const okto__task *t)
{
    okto__perf_model *m = &ctx->perf;
    double ms = -1;
    pthread_mutex_lock(&m->lock);
    okto__perf_entry *e = perf_find(m, task_key(t), 0);
    if (e && e->samples > 0)
        ms = e->ms;
    pthread_mutex_unlock(&m->lock);
    if (ms >= 0)
        return ms > 1e-6 ? ms : 1e-6;
    /* Not measured yet: flops at the device's rough rate (a lane's share of it when lanes
     * are sub-devices), bytes at its rough bandwidth, plus a launch. */
    double share = ctx->nsub > 1 ? (double)ctx->nsub : 1.0;
    double est = t->flops / (ctx->gflops_est / share * 1e6) + t->bytes / (ctx->gbps_est * 1e6) +
                 0.005;
    return est;
}

/* Feeds the last run's measured durations into the model; bumps its version when an estimate
 * moved by more than a third (or appeared), which makes heft plans be redone. */
void okto__perf_learn(okto_graph *g)
{
    okto__perf_model *m = &g->ctx->perf;
    int moved = 0;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < g->ntasks; i++) {
        okto__task *t = &g->tasks[i];
        cl_ulong a = 0, b = 0;
        if (!okto__task_times(t, &a, &b))
            continue;
        double ms = (double)(b - a) * 1e-6;
        okto__perf_entry *e = perf_find(m, task_key(t), 1);
        if (!e)
            break;
        if (e->samples == 0) {
            e->ms = ms;
            moved = 1;
        } else {
            double old = e->ms;
            e->ms = 0.75 * e->ms + 0.25 * ms;
            if (e->samples < 3 && fabs(e->ms - old) > old / 3)
                moved = 1;
        }
        e->samples++;
    }
    if (g->plan.sched != OKTO_SCHED_SEQUENTIAL)
        moved |= learn_hops(g, m);
    pthread_mutex_unlock(&m->lock);
    if (moved)
        atomic_fetch_add(&m->version, 1);
}

/* ---- policies ------------------------------------------------------------------------ */

void okto__plan_free(okto__plan *p)
{
    for (int i = 0; i < OKTO_MAX_LANES; i++) {
        free(p->order[i]);
        p->order[i] = NULL;
        p->count[i] = 0;
    }
    p->nlanes = 0;
}

static int plan_alloc(okto__plan *p, int nlanes, int ntasks)
{
    okto__plan_free(p);
    p->nlanes = nlanes;
    p->ntasks = ntasks;
    for (int l = 0; l < nlanes; l++)
        if (!(p->order[l] = malloc((size_t)(ntasks ? ntasks : 1) * sizeof(int))))
            return -1;
    return 0;
}

static void push(okto__plan *p, okto_graph *g, int lane, int task)
{
    p->order[lane][p->count[lane]++] = task;
    g->tasks[task].lane = lane;
}

static void plan_sequential(okto_graph *g, okto__plan *p)
{
    for (int i = 0; i < g->ntasks; i++)
        push(p, g, 0, i);
}

static int lane_for_class(const okto_context *ctx, okto__task_class cls, int *first)
{
    if (cls == OKTO__COPY && ctx->ncopy > 0) {
        *first = ctx->ncompute;
        return ctx->ncopy;
    }
    *first = 0;
    return ctx->ncompute;
}

static void plan_round_robin(okto_graph *g, okto__plan *p)
{
    int next[2] = {0, 0};
    for (int i = 0; i < g->ntasks; i++) {
        int first, n = lane_for_class(g->ctx, g->tasks[i].cls, &first);
        int c = g->tasks[i].cls == OKTO__COPY;
        push(p, g, first + next[c]++ % n, i);
    }
}

typedef struct rank_ix {
    double rank;
    int task;
} rank_ix;

static int by_rank(const void *a, const void *b)
{
    const rank_ix *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank > y->rank ? -1 : 1;
    return x->task - y->task;
}

/* HEFT: upward rank (cost plus the longest path to an exit) orders the tasks; each goes to the
 * lane where it would finish first given that lane's queue and its inputs' finish times. */
static int plan_heft(okto_graph *g, okto__plan *p)
{
    okto_context *ctx = g->ctx;
    int n = g->ntasks;
    double *cost = malloc((size_t)n * sizeof *cost);
    double *rank = calloc((size_t)n, sizeof *rank);
    double *finish = calloc((size_t)n, sizeof *finish);
    rank_ix *ix = malloc((size_t)n * sizeof *ix);
    if (!cost || !rank || !finish || !ix) {
        free(cost), free(rank), free(finish), free(ix);
        return -1;
    }
    for (int i = 0; i < n; i++)
        cost[i] = okto__task_estimate(ctx, &g->tasks[i]);
    /* deps point to lower indices, so one backward sweep computes every rank: when task i is
     * reached, rank[i] already holds the largest rank among its successors */
    for (int i = n - 1; i >= 0; i--) {
        rank[i] += cost[i];
        const okto__task *t = &g->tasks[i];
        for (int k = 0; k < t->ndeps; k++)
            if (rank[t->deps[k]] < rank[i])
                rank[t->deps[k]] = rank[i];
    }
    for (int i = 0; i < n; i++)
        ix[i] = (rank_ix){rank[i], i};
    qsort(ix, (size_t)n, sizeof *ix, by_rank);

    double avail[OKTO_MAX_LANES] = {0}, hop[2];
    pthread_mutex_lock(&ctx->perf.lock);
    hop[0] = ctx->perf.hop_ms[0];
    hop[1] = ctx->perf.hop_ms[1];
    pthread_mutex_unlock(&ctx->perf.lock);
    for (int k = 0; k < n; k++) {
        int i = ix[k].task;
        const okto__task *t = &g->tasks[i];
        /* Copies go to the copy lanes, unless a copy is shorter than the hand-off to a copy
         * lane and back (EFT alone would miss that: the successors pay it): then it stays
         * with the compute lanes, which is where its inputs or outputs are used. Compute tasks
         * never go to a copy lane. */
        int first, nl = lane_for_class(ctx, t->cls, &first), ncand = nl;
        if (t->cls == OKTO__COPY && first > 0 && cost[i] < 2 * hop[1]) {
            first = 0;
            ncand = ctx->ncompute;
        }
        int best = first;
        double best_eft = INFINITY;
        for (int l = first; l < first + ncand; l++) {
            double est = avail[l];
            for (int d = 0; d < t->ndeps; d++) {
                int dep = t->deps[d], dl = g->tasks[dep].lane;
                double ready = finish[dep];
                if (dl != l)
                    ready += hop[dl >= ctx->ncompute || l >= ctx->ncompute];
                if (ready > est)
                    est = ready;
            }
            if (est + cost[i] < best_eft) {
                best_eft = est + cost[i];
                best = l;
            }
        }
        finish[i] = best_eft;
        avail[best] = best_eft;
        push(p, g, best, i);
    }
    free(cost), free(rank), free(finish), free(ix);
    return 0;
}

okto_status okto__plan_make(okto_graph *g, okto_sched sched)
{
    okto__plan *p = &g->plan;
    okto_context *ctx = g->ctx;
    int nlanes = sched == OKTO_SCHED_SEQUENTIAL ? 1 : ctx->ncompute + ctx->ncopy;
    unsigned version = atomic_load(&ctx->perf.version);
    if (plan_alloc(p, nlanes, g->ntasks) < 0)
        goto oom;
    for (int i = 0; i < g->ntasks; i++)
        g->tasks[i].lane = -1;
    if (sched == OKTO_SCHED_SEQUENTIAL)
        plan_sequential(g, p);
    else if (sched == OKTO_SCHED_ROUND_ROBIN)
        plan_round_robin(g, p);
    else if (plan_heft(g, p) < 0)
        goto oom;
    /* a task whose successor runs on another lane is flushed right after its enqueue, so the
     * other queue never waits on a command that was never submitted */
    for (int i = 0; i < g->ntasks; i++)
        g->tasks[i].flush = 0;
    for (int i = 0; i < g->ntasks; i++) {
        okto__task *t = &g->tasks[i];
        for (int k = 0; k < t->ndeps; k++)
            if (g->tasks[t->deps[k]].lane != t->lane)
                g->tasks[t->deps[k]].flush = 1;
    }
    p->sched = sched;
    p->perf_version = version;
    g->planned = 1;
    return OKTO_OK;
oom:
    okto__plan_free(p);
    g->planned = 0;
    return okto__fail(ctx, OKTO_ENOMEM, "planning a graph of %d tasks: out of host memory",
                      g->ntasks);
}
