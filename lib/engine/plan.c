/* lib/engine/plan.c: turning a graph into per-lane ordered task lists with a policy
 * (lib/sched/), and what every plan needs afterwards: which tasks to flush.
 *
 * Every policy emits each lane's list in one global topological order. Lane threads only wait
 * for dependencies that come earlier in that order, and lanes take launches in the order they
 * were posted, so no two lanes can ever wait on each other. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

void okto__plan_free(okto__plan *p)
{
    for (int i = 0; i < OKTO__MAX_LANES; i++) {
        free(p->order[i]);
        p->order[i] = NULL;
        p->count[i] = 0;
    }
    free(p->lane);
    free(p->flush);
    p->lane = NULL;
    p->flush = NULL;
    p->nlanes = 0;
}

static int plan_alloc(okto__plan *p, int nlanes, int ntasks)
{
    okto__plan_free(p);
    p->nlanes = nlanes;
    p->ntasks = ntasks;
    size_t n = (size_t)(ntasks ? ntasks : 1);
    p->lane = malloc(n * sizeof *p->lane);
    p->flush = calloc(n, 1);
    if (!p->lane || !p->flush)
        return -1;
    for (int i = 0; i < ntasks; i++)
        p->lane[i] = -1;
    /* one list of all tasks per lane: a policy may put every task on one lane */
    for (int l = 0; l < nlanes; l++)
        if (!(p->order[l] = malloc(n * sizeof(int))))
            return -1;
    return 0;
}

void okto__plan_push(okto__plan *p, int lane, int task)
{
    p->order[lane][p->count[lane]++] = task;
    p->lane[task] = lane;
}

int okto__lanes_for(const okto_context *ctx, int cls, int *first)
{
    if (cls == OKTO__COPY && ctx->ncopy > 0) {
        *first = ctx->ncompute;
        return ctx->ncopy;
    }
    *first = 0;
    return ctx->ncompute;
}

okto_status okto__plan_make(okto_graph *g, okto_sched sched)
{
    okto__plan *p = &g->plan;
    okto_context *ctx = g->ctx;
    const okto__sched_ops *ops = okto__sched_get(sched);
    int nlanes = ops->single_queue ? 1 : ctx->ncompute + ctx->ncopy;
    unsigned version = okto__perf_version(ctx);
    okto_status s = okto__deps_analyze(g);
    if (s != OKTO_OK)
        return s;
    if (plan_alloc(p, nlanes, g->ntasks) < 0 || ops->plan(g, p) < 0) {
        okto__plan_free(p);
        g->planned = 0;
        return okto__fail(ctx, OKTO_ENOMEM, "planning a graph of %d tasks: out of host memory",
                          g->ntasks);
    }
    /* a task whose successor runs on another lane is flushed right after its enqueue, so the
     * other queue never waits on a command that was never submitted */
    for (int i = 0; i < g->ntasks; i++) {
        const okto__task *t = &g->tasks[i];
        const uint32_t *deps = okto__task_deps(g, t);
        for (uint32_t k = 0; k < t->ndeps; k++)
            if (p->lane[deps[k]] != p->lane[i])
                p->flush[deps[k]] = 1;
    }
    p->sched = sched;
    p->single_queue = ops->single_queue;
    p->perf_version = version;
    g->planned = 1;
    return OKTO_OK;
}
