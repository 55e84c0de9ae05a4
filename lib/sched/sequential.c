/* lib/sched/sequential.c: the baseline. Every task in recorded order on the context's one
 * in-order queue and its one thread: what op-by-op execution would do. */
#include "engine.h"

static int plan(okto_graph *g, okto__plan *p)
{
    for (int i = 0; i < g->ntasks; i++)
        okto__plan_push(p, 0, i);
    return 0;
}

const okto__sched_ops okto__sched_sequential = {
    .name = "sequential", .plan = plan, .single_queue = 1};
