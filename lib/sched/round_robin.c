/* lib/sched/round_robin.c: tasks dealt to the lanes in turn, in recorded order (copies to the
 * copy lanes when there are any). */
#include "engine.h"

static int plan(okto_graph *g, okto__plan *p)
{
    int next[2] = {0, 0};
    for (int i = 0; i < g->ntasks; i++) {
        int cls = g->tasks[i].cls, first, n = okto__lanes_for(g->ctx, cls, &first);
        okto__plan_push(p, first + next[cls]++ % n, i);
    }
    return 0;
}

const okto__sched_ops okto__sched_round_robin = {.name = "round-robin", .plan = plan};
