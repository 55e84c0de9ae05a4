/* okto/report.h: what the last run of a graph did, from the profiling times of its events. */
#ifndef OKTO_REPORT_H
#define OKTO_REPORT_H

#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct okto_lane_report {
    double busy_ms;          /* union of this lane's task intervals */
    int tasks;
    int is_copy;             /* 1 for a copy lane */
} okto_lane_report;

typedef struct okto_report {
    okto_sched sched;        /* the policy that ran */
    int tasks;
    int lanes;               /* entries used in lane[] (1 for sequential) */
    double span_ms;          /* first task start to last task end, device clock */
    double busy_ms;          /* union of all task intervals */
    double utilization;      /* busy / span */
    double host_ms;          /* launch to wait return, host clock */
    okto_lane_report lane[OKTO_MAX_LANES];
} okto_report;

#ifdef __cplusplus
}
#endif
#endif
