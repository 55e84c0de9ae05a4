/* lib/engine/perf.c: the cost model. Measured task durations, keyed by (op, dtype, shape
 * class, device) (the task's perf_key, lib/engine/graph.c), as moving averages; and the measured
 * cost of a hand-off between lanes. Before a key was measured, a task's flops and bytes at the
 * device's rough rates stand in. */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Before anything was measured: an event crossing lanes costs a little host time. */
#define OKTO__HOP_DEFAULT_MS 0.002

typedef struct perf_entry {
    uint64_t key;
    double ms; /* moving average of measured durations */
    int samples;
} perf_entry;

struct okto__perf_model {
    pthread_mutex_t lock;
    perf_entry *slots; /* open addressing, key 0 = empty */
    size_t cap, used;
    atomic_uint version; /* bumped when an estimate moves enough to re-plan */
    /* Measured cost of a dependency that crosses lanes: from the end of the task waited for
     * to the start of the task waiting, when nothing else held it back. [0] between compute
     * lanes of one device, [1] to or from a copy lane, [2] between compute lanes of two
     * devices. */
    double hop_ms[3];
    int hop_n[3];
};

okto__perf_model *okto__perf_create(void)
{
    okto__perf_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->hop_ms[0] = m->hop_ms[1] = m->hop_ms[2] = OKTO__HOP_DEFAULT_MS;
    atomic_init(&m->version, 0);
    return m;
}

void okto__perf_destroy(okto__perf_model *m)
{
    if (!m)
        return;
    free(m->slots);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

unsigned okto__perf_version(const okto_context *ctx) { return atomic_load(&ctx->perf->version); }

void okto__perf_hops(okto_context *ctx, double hop[3])
{
    okto__perf_model *m = ctx->perf;
    pthread_mutex_lock(&m->lock);
    hop[0] = m->hop_ms[0];
    hop[1] = m->hop_ms[1];
    hop[2] = m->hop_ms[2];
    pthread_mutex_unlock(&m->lock);
}

static perf_entry *find(okto__perf_model *m, uint64_t key, int insert)
{
    if (insert && (m->used + 1) * 2 > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        perf_entry *slots = calloc(cap, sizeof *slots);
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

/* A task's key on device dev: device 0 keeps the task's own key (what one-device contexts
 * always used), the others mix their index in, so each device's durations are its own. */
static uint64_t dev_key(uint64_t key, int dev)
{
    if (dev == 0)
        return key;
    key ^= (uint64_t)dev * 0x9e3779b97f4a7c15ull;
    key *= 1099511628211ull;
    return key ? key : 1;
}

static double measured(okto__perf_model *m, uint64_t key)
{
    double ms = -1;
    pthread_mutex_lock(&m->lock);
    perf_entry *e = find(m, key, 0);
    if (e && e->samples > 0)
        ms = e->ms;
    pthread_mutex_unlock(&m->lock);
    return ms;
}

double okto__task_estimate(okto_context *ctx, const okto__task *t)
{
    if (t->into)
        return 0; /* batched into another task (engine/optimize.c) */
    double ms = measured(ctx->perf, t->perf_key);
    if (ms >= 0)
        return ms > 1e-6 ? ms : 1e-6;
    /* Not measured yet: flops at the device's rough rate (a lane's share of it when lanes
     * are sub-devices), bytes at its rough bandwidth, plus a launch. */
    double share = ctx->nsub > 1 ? (double)ctx->nsub : 1.0;
    return (double)t->flops / (ctx->dev.gflops_est / share * 1e6) +
           (double)t->bytes / (ctx->dev.gbps_est * 1e6) + 0.005;
}

double okto__task_estimate_on(okto_context *ctx, const okto__task *t, int dev)
{
    if (dev == 0)
        return okto__task_estimate(ctx, t);
    double ms = measured(ctx->perf, dev_key(t->perf_key, dev));
    if (ms >= 0)
        return ms > 1e-6 ? ms : 1e-6;
    /* not measured there yet: the first device's figure at the two devices' rough ratio */
    const okto__device *d0 = &ctx->dev, *d = &ctx->xdev[dev - 1];
    double ratio = d->gflops_est > 0 ? d0->gflops_est / d->gflops_est : 1.0;
    return okto__task_estimate(ctx, t) * ratio;
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
 * On PoCL this is 10-40 us against ~1 us within one queue, which is why heft must know it:
 * tasks shorter than a hand-off belong on one lane. Returns 1 when an estimate moved by more
 * than a third. Called with the model locked. */
static int learn_hops(okto_graph *g, okto__perf_model *m)
{
    const okto__plan *p = &g->plan;
    okto_context *ctx = g->ctx;
    int moved = 0, ncompute = ctx->ncompute;
    double sum[3] = {0, 0, 0};
    int n[3] = {0, 0, 0};
    span *busy = malloc((size_t)(g->ntasks ? g->ntasks : 1) * sizeof *busy);
    if (!busy)
        return 0;
    int nb = 0;
    for (int i = 0; i < g->ntasks; i++)
        if (okto__task_times(g, i, &busy[nb].a, &busy[nb].b))
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
            int ti = p->order[l][k];
            const okto__task *t = &g->tasks[ti];
            cl_ulong a, b, da, db, ready = 0;
            if (!okto__task_times(g, ti, &a, &b))
                continue;
            int from = -1;
            const uint32_t *deps = okto__task_deps(g, t);
            for (uint32_t d = 0; d < t->ndeps; d++)
                if (okto__task_times(g, (int)deps[d], &da, &db) && db >= ready) {
                    ready = db;
                    from = p->lane[deps[d]];
                }
            if (from >= 0 && from != l && ready >= prev_end && a > ready &&
                device_idle(busy, merged, ready, a)) {
                int c = l >= ncompute || from >= ncompute           ? 1
                        : ctx->lanes[l].dev != ctx->lanes[from].dev ? 2
                                                                    : 0;
                sum[c] += (double)(a - ready) * 1e-6;
                n[c]++;
            }
            prev_end = b;
        }
    }
    free(busy);
    for (int c = 0; c < 3; c++) {
        if (!n[c])
            continue;
        double mean = sum[c] / n[c], old = m->hop_ms[c];
        m->hop_ms[c] = m->hop_n[c] ? 0.75 * old + 0.25 * mean : mean;
        if (m->hop_n[c] < 3 && fabs(m->hop_ms[c] - old) > old / 3)
            moved = 1;
        m->hop_n[c]++;
    }
    if (moved)
        okto__log(g->ctx, OKTO_LOG_INFO,
                  "lane hand-off measured: %.1f us between compute lanes, "
                  "%.1f us to or from a copy lane, %.1f us between devices",
                  m->hop_ms[0] * 1e3, m->hop_ms[1] * 1e3, m->hop_ms[2] * 1e3);
    return moved;
}

/* Feeds the last run's measured durations into the model; bumps its version when an estimate
 * moved by more than a third (or appeared), which makes learning policies plan again. */
void okto__perf_learn(okto_graph *g)
{
    okto__perf_model *m = g->ctx->perf;
    int moved = 0;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < g->ntasks; i++) {
        cl_ulong a = 0, b = 0;
        if (!okto__task_times(g, i, &a, &b))
            continue;
        double ms = (double)(b - a) * 1e-6;
        int dev = g->plan.single_queue ? 0 : g->ctx->lanes[g->plan.lane[i]].dev;
        perf_entry *e = find(m, dev_key(g->tasks[i].perf_key, dev), 1);
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
    if (!g->plan.single_queue)
        moved |= learn_hops(g, m);
    pthread_mutex_unlock(&m->lock);
    if (moved)
        atomic_fetch_add(&m->version, 1);
}

double okto__perf_set_hop(okto_context *ctx, int which, double ms)
{
    okto__perf_model *m = ctx->perf;
    pthread_mutex_lock(&m->lock);
    double old = m->hop_ms[which];
    m->hop_ms[which] = ms;
    pthread_mutex_unlock(&m->lock);
    return old;
}

int okto__perf_hop_samples(okto_context *ctx, int which)
{
    okto__perf_model *m = ctx->perf;
    pthread_mutex_lock(&m->lock);
    int n = m->hop_n[which];
    pthread_mutex_unlock(&m->lock);
    return n;
}
