/* lib/sched/heft.c: HEFT, the default. Upward rank (cost plus the longest path to an exit)
 * orders the tasks; each goes to the lane where it would finish first given that lane's queue,
 * its inputs' finish times and the measured cost of a hand-off between lanes. Costs come from
 * the perf model (engine/perf.c), so heft plans again when the model moves.
 *
 * Its trial against the sequential plan. HEFT's model cannot see everything that costs time
 * (on a CPU device the lanes' threads and the kernels share the cores; a hand-off between lanes
 * costs tens of us under PoCL), so a graph of many tiny dependent tasks can run slower on its
 * HEFT plan than in one in-order queue. So heft runs a graph's first two launches on its own
 * plan (the perf model learns), a third on the sequential plan (the first run on a queue is
 * slow: not counted), then alternates the two plans for six runs and keeps whichever was faster,
 * sequential only when clearly so (by 10%): the best of three runs each, interleaved, because on
 * a shared machine other work only ever makes a run slower and the machine's speed drifts.
 * okto_graph_report says which plan ran. Changing the graph or its policy starts it over. */
#include "engine.h"

#include <math.h>
#include <stdlib.h>

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

static int plan(okto_graph *g, okto__plan *p)
{
    okto_context *ctx = g->ctx;
    int n = g->ntasks;
    double *cost = malloc((size_t)(n ? n : 1) * sizeof *cost);
    double *rank = calloc((size_t)(n ? n : 1), sizeof *rank);
    double *finish = calloc((size_t)(n ? n : 1), sizeof *finish);
    rank_ix *ix = malloc((size_t)(n ? n : 1) * sizeof *ix);
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
        const uint32_t *d = okto__task_deps(g, &g->tasks[i]);
        for (uint32_t k = 0; k < g->tasks[i].ndeps; k++)
            if (rank[d[k]] < rank[i])
                rank[d[k]] = rank[i];
    }
    for (int i = 0; i < n; i++)
        ix[i] = (rank_ix){rank[i], i};
    /* a task's rank exceeds each successor's (costs are positive), so this order is
     * topological */
    qsort(ix, (size_t)n, sizeof *ix, by_rank);

    double avail[OKTO__MAX_LANES] = {0}, hop[3];
    okto__perf_hops(ctx, hop);
    for (int k = 0; k < n; k++) {
        int i = ix[k].task;
        const okto__task *t = &g->tasks[i];
        const uint32_t *d = okto__task_deps(g, t);
        /* Copies go to the copy lanes, unless a copy is shorter than the hand-off to a copy
         * lane and back (EFT alone would miss that: the successors pay it): then it stays
         * with the compute lanes, which is where its inputs or outputs are used. Compute tasks
         * never go to a copy lane. */
        int first, nl = okto__lanes_for(ctx, t->cls, &first), ncand = nl;
        if (t->cls == OKTO__COPY && first > 0 && cost[i] < 2 * hop[1]) {
            first = 0;
            ncand = ctx->ncompute;
        }
        /* several devices: the task's cost on each (measured there), and a hand-off between
         * compute lanes of two devices at its own measured price */
        double on[OKTO_MAX_DEVICES];
        for (int dv = 0; dv < ctx->ndev; dv++)
            on[dv] = dv == 0 ? cost[i] : okto__task_estimate_on(ctx, t, dv);
        int best = first;
        double best_eft = INFINITY;
        for (int l = first; l < first + ncand; l++) {
            double est = avail[l];
            for (uint32_t e = 0; e < t->ndeps; e++) {
                int dl = p->lane[d[e]];
                double ready = finish[d[e]];
                if (dl != l)
                    ready += hop[dl >= ctx->ncompute || l >= ctx->ncompute ? 1
                                 : ctx->lanes[dl].dev != ctx->lanes[l].dev ? 2
                                                                           : 0];
                if (ready > est)
                    est = ready;
            }
            double c = on[ctx->lanes[l].dev];
            if (est + c < best_eft) {
                best_eft = est + c;
                best = l;
            }
        }
        finish[i] = best_eft;
        avail[best] = best_eft;
        okto__plan_push(p, best, i);
    }
    free(cost), free(rank), free(finish), free(ix);
    return 0;
}

#define TRIAL_WARM 3 /* heft, heft, sequential: not timed */
#define TRIAL_EACH 3
#define TRIAL_RUNS (TRIAL_WARM + 2 * TRIAL_EACH)

static okto_sched choose(okto_graph *g)
{
    const okto__trial *tr = &g->trial;
    if (tr->decided)
        return tr->choice;
    int n = tr->runs;
    if (n < TRIAL_WARM)
        return n < TRIAL_WARM - 1 ? OKTO_SCHED_HEFT : OKTO_SCHED_SEQUENTIAL;
    return (n - TRIAL_WARM) % 2 ? OKTO_SCHED_SEQUENTIAL : OKTO_SCHED_HEFT;
}

static void observe(okto_graph *g, double ms)
{
    okto__trial *tr = &g->trial;
    if (tr->decided)
        return;
    int n = tr->runs++;
    double *best = n < TRIAL_WARM ? NULL : (n - TRIAL_WARM) % 2 ? &tr->seq_ms : &tr->heft_ms;
    if (best && (*best == 0 || ms < *best))
        *best = ms;
    if (tr->runs == TRIAL_RUNS) {
        tr->decided = 1;
        tr->choice = tr->seq_ms < 0.9 * tr->heft_ms ? OKTO_SCHED_SEQUENTIAL : OKTO_SCHED_HEFT;
        okto__log(g->ctx, OKTO_LOG_INFO,
                  "heft trial of a %d-task graph: heft plan %.3f ms, sequential plan %.3f ms: "
                  "keeping %s",
                  g->ntasks, tr->heft_ms, tr->seq_ms, okto_sched_name(tr->choice));
    }
}

const okto__sched_ops okto__sched_heft = {
    .name = "heft", .plan = plan, .learns = 1, .choose = choose, .observe = observe};
