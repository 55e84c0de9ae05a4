/* okto/graph.h: record once, launch many times.
 *
 * Ops (okto/ops.h) append tasks to a graph; okto plans the graph on its first launch (and again
 * when it changes or the cost model moves) and replays the plan on every launch.
 *
 * Errors: a graph keeps its first recording error. An op call that fails records nothing and
 * returns its status; every later op call on that graph returns the same status without
 * recording, and so does okto_graph_launch, until okto_graph_clear_error. So a chain of ops
 * needs one check, at the launch.
 *
 * Threads: recording, launching, okto_graph_set_sched and okto_graph_destroy are exclusive per
 * graph: while a launch is in flight (or another thread is recording) they return OKTO_EBUSY and
 * change nothing. Different graphs may be recorded and launched from different threads at once.
 * Host pointers given to okto_upload / okto_download must stay valid until okto_graph_wait
 * returns. */
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
/* The first recording error (OKTO_OK if none) and, when msg is not NULL, its message (owned by
 * the graph, valid until the graph changes). */
OKTO_API okto_status okto_graph_status(const okto_graph *g, const char **msg);
OKTO_API void okto_graph_clear_error(okto_graph *g);
/* Non-blocking: the lane threads enqueue the plan. OKTO_EBUSY while a launch is in flight. */
OKTO_API okto_status okto_graph_launch(okto_graph *g);
/* For callers that mix okto with their own OpenCL work: the run's first tasks wait for the
 * nwait events of wait_list (events of okto's context; retained until the run is done), and
 * *done (if not NULL) receives a user event that completes when every task of the run has
 * completed (or is set to a negative status if the run fails). *done is the caller's to
 * release. */
OKTO_API okto_status okto_graph_launch_ex(okto_graph *g, cl_uint nwait, const cl_event *wait_list,
                                          cl_event *done);
/* Waits for the launch to finish; returns the run's first error (its message names the task).
 * OKTO_OK when nothing is in flight. */
OKTO_API okto_status okto_graph_wait(okto_graph *g);
OKTO_API okto_status okto_graph_run(okto_graph *g); /* launch + wait */
OKTO_API okto_status okto_graph_report(const okto_graph *g, okto_report *out);
/* Lane `lane` (0 .. report.lanes - 1) of the last run. */
OKTO_API okto_status okto_graph_report_lane(const okto_graph *g, int lane, okto_lane_report *out);
/* Chrome trace-event JSON of the last run (open it in Perfetto or chrome://tracing). */
OKTO_API okto_status okto_graph_trace(const okto_graph *g, const char *path);
/* A new contiguous tensor that belongs to the graph: it lives (and its handle stays valid) until
 * okto_graph_destroy, which frees it; okto_tensor_destroy refuses it. For activations and other
 * intermediates of a recorded computation (the layers of okto/nn.h make theirs this way). */
OKTO_API okto_status okto_graph_tensor(okto_graph *g, okto_dtype dtype, int rank,
                                       const size_t *shape, okto_tensor **out);
/* OKTO_EBUSY (graph intact) while a launch is in flight; NULL is OK. */
OKTO_API okto_status okto_graph_destroy(okto_graph *g);

#ifdef __cplusplus
}
#endif
#endif
