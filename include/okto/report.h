/* okto/report.h: what the last run of a graph did, from the profiling times of its events.
 * The per-lane figures come through okto_graph_report_lane, so this struct can grow without
 * breaking callers compiled against an older one. */
#ifndef OKTO_REPORT_H
#define OKTO_REPORT_H

#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct okto_report {
    okto_sched sched;        /* the plan that ran (heft's trial may run the sequential plan) */
    okto_sched policy;       /* the graph's policy (what okto_graph_set_sched or the context
                                chose); sched differs only while or after heft's trial */
    int tasks;               /* tasks that ran */
    int lanes;               /* lanes the plan used (1 for sequential); see report_lane */
    double span_ms;          /* first task start to last task end, device clock */
    double busy_ms;          /* union of all task intervals */
    double utilization;      /* busy / span */
    double host_ms;          /* launch to wait return, host clock */
} okto_report;

typedef struct okto_lane_report {
    double busy_ms;          /* union of this lane's task intervals */
    int tasks;
    int is_copy;             /* 1 for a copy lane */
    int in_order;            /* 1 when the lane is an in-order queue */
} okto_lane_report;

#ifdef __cplusplus
}
#endif
#endif
