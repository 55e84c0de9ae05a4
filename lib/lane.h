/* lib/lane.h: lanes and their backends (lane.c). A lane is a command queue plus a host thread
 * that runs the lane's jobs in the order they were posted; a backend says how work reaches the
 * device through that queue. */
#ifndef OKTO_LANE_H
#define OKTO_LANE_H

#include "core.h"

typedef struct okto__lane okto__lane;
typedef struct okto__job okto__job;
struct okto__job {               /* one unit of host work for a lane thread */
    void (*run)(okto__job *job, okto__lane *lane);
    okto__job *next;
};

/* A lane backend. In-order: commands run in the order they are enqueued, so a task needs no
 * event for an earlier task of its own lane. Out-of-order: every dependency is an event. Room is
 * left for a command-buffer backend (cl_khr_command_buffer: record once, enqueue as one
 * command), which PoCL replays command by command, so nothing would be gained here yet. */
typedef struct okto__lane_ops {
    const char *name;            /* "in-order", "out-of-order" */
    int implies_order;
    /* A call that takes no event wait list (CLBlast, upstream issue #337) is ordered after
     * wait[] by a marker: *q is the in-order queue to issue the call on, *start the marker's
     * event (the task's real start: CLBlast's own event covers only its last kernel). On
     * failure *call names the OpenCL call that failed (the marker, or the queue's creation). */
    cl_int (*foreign_begin)(okto__lane *l, cl_uint nwait, const cl_event *wait,
                            cl_command_queue *q, cl_event *start, const char **call);
    /* After the call: flush q if it is not the lane's own queue (which the lane flushes), so a
     * lane waiting on the call's event never waits on a command that was never submitted. */
    void (*foreign_end)(okto__lane *l, cl_command_queue q);
} okto__lane_ops;

extern const okto__lane_ops okto__lane_inorder, okto__lane_ooo;

struct okto__lane {
    const okto__lane_ops *ops;
    int index;                   /* -1: the sequential policy's queue */
    int is_copy;
    okto_context *ctx;
    cl_device_id device;         /* the context device or one of its sub-devices */
    int dev;                     /* index of the context device it runs on (okto__ctx_dev) */
    cl_command_queue queue;      /* profiling on */
    cl_command_queue foreign;    /* out-of-order lanes: the in-order queue of foreign calls */
    pthread_mutex_t foreign_lock;
    /* The thread and its job queue. */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    okto__job *head, *tail;
    int stop, started;
    /* This thread's cl_kernel per kernel id (lib/core.h): only the lane's own thread sets a
     * kernel's arguments and enqueues it, so no two threads ever share a cl_kernel. */
    cl_kernel *kernels;
    uint32_t nkernels;
};

/* in_order: use the in-order backend even where the device takes out-of-order queues. An
 * out-of-order queue the device refuses with CL_INVALID_QUEUE_PROPERTIES falls back to in-order
 * (and says so at warn level); any other failure is an error. */
okto_status okto__lane_init(okto_context *ctx, okto__lane *lane, int index, int is_copy,
                            cl_device_id device, int in_order);
void okto__lane_fini(okto__lane *lane);
void okto__lane_post(okto__lane *lane, okto__job *job); /* caller holds the post lock */
/* The lane thread's kernel object for kid, created on first use (lane thread only). */
cl_int okto__lane_kernel(okto__lane *lane, okto__kid kid, cl_kernel *out);

#endif
