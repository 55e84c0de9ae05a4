/* lib/lane.c: lanes. A lane is an out-of-order command queue (profiling on) on the context's
 * device or on one of its sub-devices, plus a host thread that runs the lane's jobs in the
 * order they were posted. The thread lives from context create to context destroy.
 *
 * The automatic lane rule (okto_device_lanes):
 *   CPU: one compute lane per core up to 8, 1 copy lane, all on the device itself. (One
 *        sub-device per lane, OKTO_SUBDEVICES=1, measured worse on PoCL: a big kernel on a
 *        1-core sub-device cannot use an idle core, e.g. while an upload holds the other one.)
 *   GPU and accelerators: 4 compute lanes (enough host threads to cover CLBlast's ~tens of us
 *        of host time per call, few enough not to thrash the driver), 1 copy lane (most
 *        devices have one DMA engine per direction; uploads are what graphs overlap). A
 *        starting point, not a measurement: no GPU has run okto yet.
 *   Anything else: 2 compute lanes, 1 copy lane. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void okto_device_lanes(cl_device_id device, int *compute, int *copy)
{
    cl_device_type type = 0;
    cl_uint cu = 1;
    if (device) {
        OKTO__DEVICE_INFO(device, CL_DEVICE_TYPE, type);
        OKTO__DEVICE_INFO(device, CL_DEVICE_MAX_COMPUTE_UNITS, cu);
    }
    int c;
    if (type & CL_DEVICE_TYPE_CPU)
        c = cu < 1 ? 1 : (cu > 8 ? 8 : (int)cu);
    else if (type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR))
        c = 4;
    else
        c = 2;
    if (compute)
        *compute = c;
    if (copy)
        *copy = 1;
}

static void *lane_main(void *arg)
{
    okto__lane *lane = arg;
    for (;;) {
        pthread_mutex_lock(&lane->lock);
        while (!lane->head && !lane->stop)
            pthread_cond_wait(&lane->cond, &lane->lock);
        okto__job *job = lane->head;
        if (!job) { /* stop requested and nothing left */
            pthread_mutex_unlock(&lane->lock);
            return NULL;
        }
        lane->head = job->next;
        if (!lane->head)
            lane->tail = NULL;
        pthread_mutex_unlock(&lane->lock);
        job->run(job);
    }
}

void okto__lane_post(okto__lane *lane, okto__job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&lane->lock);
    if (lane->tail)
        lane->tail->next = job;
    else
        lane->head = job;
    lane->tail = job;
    pthread_cond_signal(&lane->cond);
    pthread_mutex_unlock(&lane->lock);
}

okto_status okto__lane_init(okto_context *ctx, okto__lane *lane, int index, int is_copy,
                            cl_device_id device)
{
    memset(lane, 0, sizeof *lane);
    lane->ctx = ctx;
    lane->index = index;
    lane->is_copy = is_copy;
    lane->device = device;
    pthread_mutex_init(&lane->lock, NULL);
    pthread_cond_init(&lane->cond, NULL);
    pthread_mutex_init(&lane->blas_lock, NULL);

    cl_int err;
    cl_command_queue_properties props = CL_QUEUE_PROFILING_ENABLE;
    if (index < 0) {
        /* the sequential policy's queue: in-order by definition */
        lane->queue = clCreateCommandQueue(ctx->cl, device, props, &err);
    } else {
        cl_command_queue_properties sup = 0;
        OKTO__DEVICE_INFO(device, CL_DEVICE_QUEUE_PROPERTIES, sup);
        lane->out_of_order = (sup & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
        if (lane->out_of_order)
            props |= CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE;
        lane->queue = clCreateCommandQueue(ctx->cl, device, props, &err);
        if (err != CL_SUCCESS && lane->out_of_order) {
            /* advertised but refused (seen on some drivers): fall back to in-order */
            lane->out_of_order = 0;
            lane->queue = clCreateCommandQueue(ctx->cl, device, CL_QUEUE_PROFILING_ENABLE, &err);
        }
    }
    if (err != CL_SUCCESS) {
        lane->queue = NULL;
        return okto__fail_cl(NULL, err, "clCreateCommandQueue", "lane %d", index);
    }
    if (pthread_create(&lane->thread, NULL, lane_main, lane) != 0) {
        clReleaseCommandQueue(lane->queue);
        lane->queue = NULL;
        return okto__fail(NULL, OKTO_ENOMEM, "pthread_create failed for lane %d", index);
    }
    lane->started = 1;
    return OKTO_OK;
}

void okto__lane_fini(okto__lane *lane)
{
    if (lane->started) {
        pthread_mutex_lock(&lane->lock);
        lane->stop = 1;
        pthread_cond_signal(&lane->cond);
        pthread_mutex_unlock(&lane->lock);
        pthread_join(lane->thread, NULL);
        lane->started = 0;
    }
    if (lane->queue) {
        clFinish(lane->queue);
        clReleaseCommandQueue(lane->queue);
    }
    if (lane->blas_queue) {
        clFinish(lane->blas_queue);
        clReleaseCommandQueue(lane->blas_queue);
    }
    if (lane->ctx) {
        pthread_mutex_destroy(&lane->lock);
        pthread_cond_destroy(&lane->cond);
        pthread_mutex_destroy(&lane->blas_lock);
    }
    lane->queue = lane->blas_queue = NULL;
    lane->ctx = NULL;
}

okto_status okto__lane_blas_queue(okto__lane *lane, cl_command_queue *out)
{
    if (!lane->out_of_order) {
        *out = lane->queue;
        return OKTO_OK;
    }
    pthread_mutex_lock(&lane->blas_lock);
    cl_int err = CL_SUCCESS;
    if (!lane->blas_queue)
        lane->blas_queue = clCreateCommandQueue(lane->ctx->cl, lane->device,
                                                CL_QUEUE_PROFILING_ENABLE, &err);
    *out = lane->blas_queue;
    pthread_mutex_unlock(&lane->blas_lock);
    if (err != CL_SUCCESS) {
        lane->blas_queue = NULL;
        return okto__fail_cl(lane->ctx, err, "clCreateCommandQueue", "lane %d BLAS queue",
                             lane->index);
    }
    return OKTO_OK;
}
