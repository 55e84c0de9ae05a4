/* lib/sched/reverse.c: a topological order as far from the recorded one as the dependencies
 * allow (of the tasks whose dependencies are done, the latest recorded first), dealt to the
 * lanes in turn. Nobody wants it for speed: it is there so the tests run every graph in an
 * order unlike the recorded one, which catches an edge the dependency analysis missed. */
#include "engine.h"

#include <stdlib.h>

/* a binary max-heap of task indices */
static void push(int *h, int *n, int v)
{
    int i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] < v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static int pop(int *h, int *n)
{
    int top = h[0], v = h[--*n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] > h[c])
            c++;
        if (h[c] <= v)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = v;
    return top;
}

static int plan(okto_graph *g, okto__plan *p)
{
    int n = g->ntasks, nh = 0, next[2] = {0, 0};
    int *left = malloc((size_t)(n ? n : 1) * sizeof *left); /* dependencies not yet placed */
    int *heap = malloc((size_t)(n ? n : 1) * sizeof *heap);
    int *soff = calloc((size_t)n + 1, sizeof *soff), *succ = NULL;
    if (!left || !heap || !soff)
        goto oom;
    /* successors, from the dependencies */
    for (int i = 0; i < n; i++) {
        const uint32_t *d = okto__task_deps(g, &g->tasks[i]);
        left[i] = (int)g->tasks[i].ndeps;
        for (uint32_t k = 0; k < g->tasks[i].ndeps; k++)
            soff[d[k] + 1]++;
    }
    for (int i = 0; i < n; i++)
        soff[i + 1] += soff[i];
    if (!(succ = malloc((size_t)(soff[n] ? soff[n] : 1) * sizeof *succ)))
        goto oom;
    int *fill = heap; /* borrowed as a cursor per task before the heap is used */
    for (int i = 0; i < n; i++)
        fill[i] = soff[i];
    for (int i = 0; i < n; i++) {
        const uint32_t *d = okto__task_deps(g, &g->tasks[i]);
        for (uint32_t k = 0; k < g->tasks[i].ndeps; k++)
            succ[fill[d[k]]++] = i;
    }
    for (int i = 0; i < n; i++)
        if (left[i] == 0)
            push(heap, &nh, i);
    while (nh > 0) {
        int t = pop(heap, &nh), cls = g->tasks[t].cls, first, nl;
        nl = okto__lanes_for(g->ctx, cls, &first);
        okto__plan_push(p, first + next[cls]++ % nl, t);
        for (int k = soff[t]; k < soff[t + 1]; k++)
            if (--left[succ[k]] == 0)
                push(heap, &nh, succ[k]);
    }
    free(left), free(heap), free(soff), free(succ);
    return 0;
oom:
    free(left), free(heap), free(soff), free(succ);
    return -1;
}

const okto__sched_ops okto__sched_reverse = {.name = "reverse", .plan = plan};
