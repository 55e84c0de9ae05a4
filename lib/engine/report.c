/* lib/engine/report.c: the last run seen through its events' profiling times: the report (span,
 * busy time as the union of task intervals, utilization, per-lane figures) and the Chrome
 * trace-event JSON that Perfetto opens. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct ivl {
    cl_ulong a, b;
} ivl;

static int by_start(const void *x, const void *y)
{
    const ivl *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a;
}

/* Total length of the union of n intervals (sorts them). */
static cl_ulong union_len(ivl *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, by_start);
    cl_ulong total = 0, a = v[0].a, b = v[0].b;
    for (int i = 1; i < n; i++) {
        if (v[i].a > b) {
            total += b - a;
            a = v[i].a;
            b = v[i].b;
        } else if (v[i].b > b) {
            b = v[i].b;
        }
    }
    return total + (b - a);
}

/* Reading a report excludes a launch (which replaces the events read here). */
static okto_status begin_read(const okto_graph *cg, const char *fn)
{
    okto_graph *g = (okto_graph *)cg; /* the state is not part of its logical constness */
    int idle = OKTO__G_IDLE;
    if (!atomic_compare_exchange_strong(&g->state, &idle, OKTO__G_READING))
        return okto__fail(g->ctx, OKTO_EBUSY,
                          "%s: the graph is in flight or being recorded "
                          "into",
                          fn);
    if (!g->run.has_run) {
        atomic_store(&g->state, OKTO__G_IDLE);
        return okto__fail(g->ctx, OKTO_ESTATE, "%s: the graph has not run yet", fn);
    }
    return OKTO_OK;
}

static void end_read(const okto_graph *g) { atomic_store(&((okto_graph *)g)->state, OKTO__G_IDLE); }

static int lane_is_copy(const okto_graph *g, int l)
{
    return !g->plan.single_queue && l >= g->ctx->ncompute;
}

okto_status okto_graph_report(const okto_graph *g, okto_report *out)
{
    if (!g || !out)
        return okto__fail(g ? g->ctx : NULL, OKTO_EINVAL,
                          "okto_graph_report: g and out must not be NULL");
    okto_status s = begin_read(g, "okto_graph_report");
    if (s != OKTO_OK)
        return s;
    memset(out, 0, sizeof *out);
    const okto__plan *p = &g->plan;
    out->sched = p->sched;
    out->policy = okto__graph_sched(g);
    out->lanes = p->nlanes;
    out->host_ms = g->t_done - g->t_launch;
    ivl *all = malloc((size_t)(g->ntasks ? g->ntasks : 1) * sizeof *all);
    if (!all) {
        end_read(g);
        return okto__fail(g->ctx, OKTO_ENOMEM, "okto_graph_report: out of host memory");
    }
    int n = 0;
    cl_ulong lo = (cl_ulong)-1, hi = 0;
    for (int i = 0; i < g->ntasks; i++) {
        cl_ulong a, b;
        if (!okto__task_times(g, i, &a, &b))
            continue;
        all[n++] = (ivl){a, b};
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    out->tasks = n;
    out->busy_ms = (double)union_len(all, n) * 1e-6;
    out->span_ms = n ? (double)(hi - lo) * 1e-6 : 0;
    out->utilization = out->span_ms > 0 ? out->busy_ms / out->span_ms : (n ? 1.0 : 0.0);
    free(all);
    end_read(g);
    return OKTO_OK;
}

okto_status okto_graph_report_lane(const okto_graph *g, int lane, okto_lane_report *out)
{
    if (!g || !out)
        return okto__fail(g ? g->ctx : NULL, OKTO_EINVAL,
                          "okto_graph_report_lane: g and out must not be NULL");
    okto_status s = begin_read(g, "okto_graph_report_lane");
    if (s != OKTO_OK)
        return s;
    const okto__plan *p = &g->plan;
    if (lane < 0 || lane >= p->nlanes) {
        end_read(g);
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_graph_report_lane: lane %d (the last run used %d lane%s)", lane,
                          p->nlanes, p->nlanes == 1 ? "" : "s");
    }
    memset(out, 0, sizeof *out);
    ivl *mine = malloc((size_t)(p->count[lane] ? p->count[lane] : 1) * sizeof *mine);
    if (!mine) {
        end_read(g);
        return okto__fail(g->ctx, OKTO_ENOMEM, "okto_graph_report_lane: out of host memory");
    }
    int m = 0;
    for (int k = 0; k < p->count[lane]; k++) {
        cl_ulong a, b;
        if (okto__task_times(g, p->order[lane][k], &a, &b))
            mine[m++] = (ivl){a, b};
    }
    out->tasks = m;
    out->busy_ms = (double)union_len(mine, m) * 1e-6;
    out->is_copy = lane_is_copy(g, lane);
    out->in_order = p->single_queue || g->ctx->lanes[lane].ops->implies_order;
    free(mine);
    end_read(g);
    return OKTO_OK;
}

okto_status okto_graph_trace(const okto_graph *g, const char *path)
{
    if (!g || !path)
        return okto__fail(g ? g->ctx : NULL, OKTO_EINVAL,
                          "okto_graph_trace: g and path must not be NULL");
    okto_status s = begin_read(g, "okto_graph_trace");
    if (s != OKTO_OK)
        return s;
    FILE *f = fopen(path, "w");
    if (!f) {
        end_read(g);
        return okto__fail(g->ctx, OKTO_EIO, "okto_graph_trace: cannot open \"%s\" for writing",
                          path);
    }
    const okto__plan *p = &g->plan;
    cl_ulong t0 = (cl_ulong)-1;
    for (int i = 0; i < g->ntasks; i++) {
        cl_ulong a, b;
        if (okto__task_times(g, i, &a, &b) && a < t0)
            t0 = a;
    }
    fprintf(f,
            "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"policy\":\"%s\",\"tasks\":%d},"
            "\"traceEvents\":[\n",
            okto_sched_name(p->sched), g->ntasks);
    int first = 1;
    for (int l = 0; l < p->nlanes; l++) {
        fprintf(f,
                "%s{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_name\","
                "\"args\":{\"name\":\"%s %d\"}}",
                first ? "" : ",\n", l,
                p->single_queue      ? "sequential queue"
                : lane_is_copy(g, l) ? "copy lane"
                                     : "compute lane",
                l);
        first = 0;
    }
    for (int l = 0; l < p->nlanes; l++)
        for (int k = 0; k < p->count[l]; k++) {
            int ti = p->order[l][k];
            const okto__task *t = &g->tasks[ti];
            cl_ulong a, b;
            if (!okto__task_times(g, ti, &a, &b))
                continue;
            fprintf(f,
                    ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"name\":\"%s\",\"ts\":%.3f,"
                    "\"dur\":%.3f,\"args\":{\"task\":%d,\"part\":%d,\"parts\":%d,\"deps\":[",
                    l, okto__ops[t->op]->name, (double)(a - t0) * 1e-3, (double)(b - a) * 1e-3, ti,
                    t->part, t->nparts ? t->nparts : 1);
            const uint32_t *d = okto__task_deps(g, t);
            for (uint32_t e = 0; e < t->ndeps; e++)
                fprintf(f, "%s%u", e ? "," : "", d[e]);
            fprintf(f, "]");
            /* a batch (engine/optimize.c): the recorded tasks it does, itself last */
            if (t->nfused) {
                fprintf(f, ",\"replaced\":[");
                for (int j = 0; j < g->ntasks; j++)
                    if (g->tasks[j].into == (uint32_t)ti + 1)
                        fprintf(f, "%d,", j);
                fprintf(f, "%d]", ti);
            }
            fprintf(f, "}}");
        }
    fprintf(f, "\n]}\n");
    int bad = fclose(f) != 0;
    end_read(g);
    if (bad)
        return okto__fail(g->ctx, OKTO_EIO, "okto_graph_trace: writing \"%s\" failed", path);
    return OKTO_OK;
}
