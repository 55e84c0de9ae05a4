/* lib/report.c: the last run seen through its events' profiling times: the report (span, busy
 * time as the union of task intervals, utilization, per-lane figures) and the Chrome
 * trace-event JSON that Perfetto opens. */
#include "internal.h"

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

int okto__task_times(const okto__task *t, cl_ulong *a, cl_ulong *b)
{
    cl_ulong s;
    if (!t->ev ||
        clGetEventProfilingInfo(t->ev, CL_PROFILING_COMMAND_START, sizeof *a, a, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(t->ev, CL_PROFILING_COMMAND_END, sizeof *b, b, NULL) != CL_SUCCESS)
        return 0;
    /* the start marker completes when the task's inputs are ready and its first command may run */
    if (t->ev_start &&
        clGetEventProfilingInfo(t->ev_start, CL_PROFILING_COMMAND_END, sizeof s, &s, NULL) ==
            CL_SUCCESS &&
        s < *a)
        *a = s;
    if (*b < *a)
        *b = *a;
    return 1;
}

okto_status okto_graph_report(const okto_graph *g, okto_report *out)
{
    if (!g || !out)
        return okto__fail(g ? g->ctx : NULL, OKTO_EINVAL,
                          "okto_graph_report: g and out must not be NULL");
    if (atomic_load(&((okto_graph *)g)->busy))
        return okto__fail(g->ctx, OKTO_EBUSY, "okto_graph_report: the graph is in flight");
    if (!g->has_run)
        return okto__fail(g->ctx, OKTO_ESTATE, "okto_graph_report: the graph has not run yet");
    memset(out, 0, sizeof *out);
    const okto__plan *p = &g->plan;
    out->sched = p->sched;
    out->lanes = p->nlanes;
    out->host_ms = g->t_done - g->t_launch;
    ivl *all = malloc((size_t)(g->ntasks ? g->ntasks : 1) * sizeof *all);
    ivl *mine = malloc((size_t)(g->ntasks ? g->ntasks : 1) * sizeof *mine);
    if (!all || !mine) {
        free(all), free(mine);
        return okto__fail(g->ctx, OKTO_ENOMEM, "okto_graph_report: out of host memory");
    }
    int n = 0;
    cl_ulong lo = (cl_ulong)-1, hi = 0;
    for (int l = 0; l < p->nlanes; l++) {
        int m = 0;
        for (int k = 0; k < p->count[l]; k++) {
            cl_ulong a, b;
            if (!okto__task_times(&g->tasks[p->order[l][k]], &a, &b))
                continue;
            mine[m++] = all[n++] = (ivl){a, b};
            lo = a < lo ? a : lo;
            hi = b > hi ? b : hi;
        }
        out->lane[l].tasks = m;
        out->lane[l].busy_ms = (double)union_len(mine, m) * 1e-6;
        out->lane[l].is_copy = p->sched != OKTO_SCHED_SEQUENTIAL && l >= g->ctx->ncompute;
    }
    out->tasks = n;
    out->busy_ms = (double)union_len(all, n) * 1e-6;
    out->span_ms = n ? (double)(hi - lo) * 1e-6 : 0;
    out->utilization = out->span_ms > 0 ? out->busy_ms / out->span_ms : (n ? 1.0 : 0.0);
    free(all), free(mine);
    return OKTO_OK;
}

okto_status okto_graph_trace(const okto_graph *g, const char *path)
{
    if (!g || !path)
        return okto__fail(g ? g->ctx : NULL, OKTO_EINVAL,
                          "okto_graph_trace: g and path must not be NULL");
    /* like okto_graph_report: a launch replaces (and releases) the events read below */
    if (atomic_load(&((okto_graph *)g)->busy))
        return okto__fail(g->ctx, OKTO_EBUSY, "okto_graph_trace: the graph is in flight");
    if (!g->has_run)
        return okto__fail(g->ctx, OKTO_ESTATE, "okto_graph_trace: the graph has not run yet");
    FILE *f = fopen(path, "w");
    if (!f)
        return okto__fail(g->ctx, OKTO_EIO, "okto_graph_trace: cannot open \"%s\" for writing",
                          path);
    const okto__plan *p = &g->plan;
    cl_ulong t0 = (cl_ulong)-1;
    for (int i = 0; i < g->ntasks; i++) {
        cl_ulong a, b;
        if (okto__task_times(&g->tasks[i], &a, &b) && a < t0)
            t0 = a;
    }
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"policy\":\"%s\",\"tasks\":%d},"
               "\"traceEvents\":[\n",
            okto_sched_name(p->sched), g->ntasks);
    int first = 1;
    for (int l = 0; l < p->nlanes; l++) {
        int copy = p->sched != OKTO_SCHED_SEQUENTIAL && l >= g->ctx->ncompute;
        fprintf(f, "%s{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_name\","
                   "\"args\":{\"name\":\"%s %d\"}}",
                first ? "" : ",\n", l,
                p->sched == OKTO_SCHED_SEQUENTIAL ? "sequential queue" : copy ? "copy lane"
                                                                               : "compute lane",
                l);
        first = 0;
    }
    for (int l = 0; l < p->nlanes; l++)
        for (int k = 0; k < p->count[l]; k++) {
            int ti = p->order[l][k];
            const okto__task *t = &g->tasks[ti];
            cl_ulong a, b;
            if (!okto__task_times(t, &a, &b))
                continue;
            fprintf(f, ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"name\":\"%s\",\"ts\":%.3f,"
                       "\"dur\":%.3f,\"args\":{\"task\":%d,\"part\":%d,\"parts\":%d,\"deps\":[",
                    l, t->op, (double)(a - t0) * 1e-3, (double)(b - a) * 1e-3, ti, t->part,
                    t->nparts ? t->nparts : 1);
            for (int d = 0; d < t->ndeps; d++)
                fprintf(f, "%s%d", d ? "," : "", t->deps[d]);
            fprintf(f, "]}}");
        }
    fprintf(f, "\n]}\n");
    if (fclose(f) != 0)
        return okto__fail(g->ctx, OKTO_EIO, "okto_graph_trace: writing \"%s\" failed", path);
    return OKTO_OK;
}
