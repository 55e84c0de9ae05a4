/* okto/graph.h: record once, launch many times.
 *
 * Ops (okto/ops.h) append tasks to a graph; okto plans the graph on its first launch (and again
 * when it changes or the cost model moves) and replays the plan on every launch. A graph may not
 * be changed or launched again while a launch is in flight (OKTO_EBUSY). Host pointers given to
 * okto_upload / okto_download must stay valid until okto_graph_wait returns. */
#ifndef OKTO_GRAPH_H
#define OKTO_GRAPH_H

#include "report.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct okto_graph okto_graph;

OKTO_API okto_status okto_graph_create(okto_context *ctx, okto_graph **out);
/* Per-graph override of the context's policy; OKTO_SCHED_AUTO returns to it. */
OKTO_API okto_status okto_graph_set_sched(okto_graph *g, okto_sched sched);
OKTO_API int okto_graph_task_count(const okto_graph *g);
/* Non-blocking: the lane threads enqueue the plan. OKTO_EBUSY while a launch is in flight. */
OKTO_API okto_status okto_graph_launch(okto_graph *g);
/* Waits for the launch to finish; returns the run's first error (its message names the task).
 * OKTO_OK when nothing is in flight. */
OKTO_API okto_status okto_graph_wait(okto_graph *g);
OKTO_API okto_status okto_graph_run(okto_graph *g);      /* launch + wait */
OKTO_API okto_status okto_graph_report(const okto_graph *g, okto_report *out);
/* Chrome trace-event JSON of the last run (open it in Perfetto or chrome://tracing). */
OKTO_API okto_status okto_graph_trace(const okto_graph *g, const char *path);
/* OKTO_EBUSY (graph intact) while a launch is in flight; NULL is OK. */
OKTO_API okto_status okto_graph_destroy(okto_graph *g);

#ifdef __cplusplus
}
#endif
#endif
