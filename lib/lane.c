/* lib/lane.c: lanes and their backends. A lane is a command queue (profiling on) on the
 * context's device or on one of its sub-devices, plus a host thread that runs the lane's jobs
 * in the order they were posted. The thread lives from context create to context destroy.
 *
 * Backends (lib/lane.h): out-of-order queues where the device takes them, in-order ones where
 * it does not (AMD's OpenCL has none) or when config.in_order / OKTO_INORDER asks for them.
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
#include "ctx.h"

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

/* ---- backends -------------------------------------------------------------------------------- */

/* In-order: the call goes on the lane's own queue after a marker that waits for the other
 * lanes' events (its own lane's work is ordered already). */
static cl_int inorder_begin(okto__lane *l, cl_uint nwait, const cl_event *wait, cl_command_queue *q,
                            cl_event *start, const char **call)
{
    *q = l->queue;
    *call = "clEnqueueMarkerWithWaitList";
    return clEnqueueMarkerWithWaitList(l->queue, nwait, nwait ? wait : NULL, start);
}

static void inorder_end(okto__lane *l, cl_command_queue q) { (void)l, (void)q; }

/* Out-of-order: a marker with the wait list on a small in-order queue beside the lane's,
 * used only for such calls. A barrier on the lane's own queue would also be correct, but it
 * would hold back every later command of the lane, unrelated work included; the marker orders
 * only the call (~0.2 us of host time on PoCL). */
static cl_int ooo_begin(okto__lane *l, cl_uint nwait, const cl_event *wait, cl_command_queue *q,
                        cl_event *start, const char **call)
{
    cl_int err = CL_SUCCESS;
    pthread_mutex_lock(&l->foreign_lock);
    if (!l->foreign)
        l->foreign = clCreateCommandQueue(l->ctx->cl, l->device, CL_QUEUE_PROFILING_ENABLE, &err);
    *q = l->foreign;
    pthread_mutex_unlock(&l->foreign_lock);
    if (err != CL_SUCCESS) {
        l->foreign = NULL;
        *call = "clCreateCommandQueue";
        return err;
    }
    *call = "clEnqueueMarkerWithWaitList";
    return clEnqueueMarkerWithWaitList(*q, nwait, nwait ? wait : NULL, start);
}

static void ooo_end(okto__lane *l, cl_command_queue q)
{
    if (q != l->queue)
        clFlush(q);
}

const okto__lane_ops okto__lane_inorder = {"in-order", 1, inorder_begin, inorder_end};
const okto__lane_ops okto__lane_ooo = {"out-of-order", 0, ooo_begin, ooo_end};

/* ---- threads --------------------------------------------------------------------------------- */

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
        job->run(job, lane);
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

cl_int okto__lane_kernel(okto__lane *lane, okto__kid kid, cl_kernel *out)
{
    if (kid >= lane->nkernels) {
        uint32_t n = lane->nkernels ? lane->nkernels : 64;
        while (n <= kid)
            n *= 2;
        cl_kernel *k = realloc(lane->kernels, n * sizeof *k);
        if (!k)
            return CL_OUT_OF_HOST_MEMORY;
        memset(k + lane->nkernels, 0, (n - lane->nkernels) * sizeof *k);
        lane->kernels = k;
        lane->nkernels = n;
    }
    if (!lane->kernels[kid]) {
        cl_program prog;
        const char *name;
        cl_int err;
        okto__kernel_lookup(lane->ctx, kid, &prog, &name);
        lane->kernels[kid] = clCreateKernel(prog, name, &err);
        if (err != CL_SUCCESS) {
            lane->kernels[kid] = NULL;
            return err;
        }
    }
    *out = lane->kernels[kid];
    return CL_SUCCESS;
}

okto_status okto__lane_init(okto_context *ctx, okto__lane *lane, int index, int is_copy,
                            cl_device_id device, int in_order)
{
    memset(lane, 0, sizeof *lane);
    lane->ctx = ctx;
    lane->index = index;
    lane->is_copy = is_copy;
    lane->device = device;
    pthread_mutex_init(&lane->lock, NULL);
    pthread_cond_init(&lane->cond, NULL);
    pthread_mutex_init(&lane->foreign_lock, NULL);

    cl_int err;
    cl_command_queue_properties sup = 0;
    OKTO__DEVICE_INFO(device, CL_DEVICE_QUEUE_PROPERTIES, sup);
    int ooo = !in_order && (sup & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
    lane->ops = ooo ? &okto__lane_ooo : &okto__lane_inorder;
    lane->queue = clCreateCommandQueue(
        ctx->cl, device,
        CL_QUEUE_PROFILING_ENABLE | (ooo ? CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE : 0), &err);
    if (err == CL_INVALID_QUEUE_PROPERTIES && ooo) {
        /* advertised but refused (seen on some drivers): the in-order backend is correct too */
        okto__log(ctx, OKTO_LOG_WARN,
                  "lane %d: the device advertises out-of-order queues but refused one "
                  "(CL_INVALID_QUEUE_PROPERTIES): using an in-order queue",
                  index);
        lane->ops = &okto__lane_inorder;
        lane->queue = clCreateCommandQueue(ctx->cl, device, CL_QUEUE_PROFILING_ENABLE, &err);
    }
    if (err != CL_SUCCESS) {
        lane->queue = NULL;
        return okto__fail_cl(NULL, err, "clCreateCommandQueue", "lane %d (%s)", index,
                             lane->ops->name);
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
    if (lane->foreign) {
        clFinish(lane->foreign);
        clReleaseCommandQueue(lane->foreign);
    }
    /* newest first: PoCL's release walks its list of kernels of a program */
    for (uint32_t i = lane->nkernels; i-- > 0;)
        if (lane->kernels[i])
            clReleaseKernel(lane->kernels[i]);
    free(lane->kernels);
    if (lane->ctx) {
        pthread_mutex_destroy(&lane->lock);
        pthread_cond_destroy(&lane->cond);
        pthread_mutex_destroy(&lane->foreign_lock);
    }
    lane->queue = lane->foreign = NULL;
    lane->kernels = NULL;
    lane->nkernels = 0;
    lane->ctx = NULL;
}
