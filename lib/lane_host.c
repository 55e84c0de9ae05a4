/* lib/lane_host.c: the host lane: tasks that a lane thread runs on the CPU itself with the
 * system's CBLAS (OpenBLAS), on the device's own buffers, in place.
 *
 * Where. Only on PoCL's CPU devices: their CL_MEM_USE_HOST_PTR buffers are computed in place
 * (other drivers may keep a copy, which the spec allows), and the BLAS runs on the same cores
 * the device would. A build without CBLAS has no host lane (okto_host_blas() returns NULL,
 * okto-probe says so); OKTO_HOST_LANE=0 or config.host_lane = 0 turns it off.
 *
 * How a host task joins the graph. It runs on the thread of the lane the plan gave it, in that
 * lane's place in the order, so the dependency rules are the device tasks' own:
 *   1. a marker with the task's wait list on the lane's queue, waited for on the host: the
 *      task's dependencies have completed (the marker's event is the task's start);
 *   2. cblas_sgemm on the storages' memory (a batch: one call per product);
 *   3. a marker enqueued after the call is the task's event, which later tasks of any lane
 *      wait on like any other.
 * The storages are host memory okto allocated and gave the device as CL_MEM_USE_HOST_PTR
 * (lib/tensor.c), which a CPU device computes in place: there is nothing to copy or map.
 * Tensors over a caller's cl_mem have no such memory, and their matmuls stay on the device.
 * The lane thread is busy while the BLAS runs; another lane's thread keeps enqueueing meanwhile
 * (the plan spreads a big product's row panels over the lanes, so two panels run side by side).
 * A dependency that failed (the wait fails) skips the call and fails the task as a device task
 * whose enqueue failed: the run stops enqueueing, drains, and names this task and the wait.
 *
 * Threads. The BLAS runs with OKTO_HOST_THREADS threads per task (default 1): a big product's
 * row panels put one task on each compute lane (one per core on a CPU), so one BLAS thread per
 * lane covers the cores without OpenBLAS's own threads spinning against PoCL's workers; 1 and 2
 * measured alike on the shared 2-core machine (README, "Host lane"). OpenBLAS's thread count is
 * process-wide: it is set before each call when it differs, so a program that changes it
 * between okto's calls gets its own setting back only for its own calls. */
#include "ctx.h"
#include "op.h"

#include <stdlib.h>
#include <string.h>

#ifdef OKTO_HAVE_CBLAS
#include <cblas.h>
#ifdef OKTO_HAVE_OPENBLAS
/* openblas_config.h (included by cblas.h) declares these; repeated for builds against another
 * cblas.h in the same include path */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
#endif
#endif

const char *okto_host_blas(void)
{
#if defined(OKTO_HAVE_OPENBLAS)
    return openblas_get_config();
#elif defined(OKTO_HAVE_CBLAS)
    return "CBLAS";
#else
    return NULL;
#endif
}

int okto_context_host_lane(const okto_context *ctx) { return ctx ? ctx->host_lane : 0; }

int okto__ctx_host_lane(const okto_context *ctx) { return ctx->host_lane; }

/* Decides ctx->host_lane at context start (context.c): threads per host task, or 0. */
void okto__host_lane_init(okto_context *ctx)
{
    ctx->host_lane = 0;
#ifdef OKTO_HAVE_CBLAS
    if (ctx->cfg.host_lane == 0 || !okto__device_is_cpu(&ctx->dev))
        return;
    /* PoCL's CPU devices compute a CL_MEM_USE_HOST_PTR buffer in place, which the host lane
     * relies on (it reads and writes that memory without a map); the OpenCL spec lets other
     * drivers keep a copy, so they get no host lane until one is measured */
    char pname[128] = "";
    if (!ctx->platform ||
        clGetPlatformInfo(ctx->platform, CL_PLATFORM_NAME, sizeof pname, pname, NULL) !=
            CL_SUCCESS ||
        !strstr(pname, "Portable Computing Language"))
        return;
    int threads = 1;
    const char *e = getenv("OKTO_HOST_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 64)
            threads = (int)v;
        else
            okto__log(ctx, OKTO_LOG_WARN, "OKTO_HOST_THREADS=\"%s\": expected 1 to 64; using 1", e);
    }
    ctx->host_lane = threads;
#endif
}

cl_int okto__host_sgemm(const okto__exec *x, const okto__host_gemm *g)
{
#ifndef OKTO_HAVE_CBLAS
    (void)g;
    if (x->call)
        *x->call = "the host lane (this build has no CBLAS)";
    return CL_INVALID_OPERATION;
#else
    cl_command_queue q = x->queue;
    cl_event start = NULL;
    const char *call = "clEnqueueMarkerWithWaitList";
    /* the marker completes when the task's dependencies have (and, on an in-order lane, the
     * lane's earlier commands) */
    cl_int err = clEnqueueMarkerWithWaitList(q, x->nwait, x->nwait ? x->wait : NULL, &start);
    if (err == CL_SUCCESS) {
        call = "clWaitForEvents";
        err = clWaitForEvents(1, &start);
    }
    if (err == CL_SUCCESS && g->m && g->n) {
#ifdef OKTO_HAVE_OPENBLAS
        if (openblas_get_num_threads() != x->ctx->host_lane)
            openblas_set_num_threads(x->ctx->host_lane);
#endif
        for (size_t i = 0; i < g->count; i++)
            cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                        g->tb ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n, (int)g->k,
                        g->alpha, g->a + g->ao + i * g->sa, (int)g->lda, g->b + g->bo + i * g->sb,
                        (int)g->ldb, g->beta, g->c + g->co + i * g->sc, (int)g->ldc);
    }
    if (err == CL_SUCCESS) {
        /* the task's event: a marker enqueued once the product is in memory (on an
         * out-of-order queue it waits for nothing; the host wrote before enqueueing it) */
        call = "clEnqueueMarkerWithWaitList";
        err = clEnqueueMarkerWithWaitList(q, 0, NULL, x->done);
        if (err != CL_SUCCESS)
            *x->done = NULL;
        else
            clFlush(q); /* another lane may wait on it */
    }
    if (err == CL_SUCCESS && x->start)
        *x->start = start;
    else if (start)
        clReleaseEvent(start);
    if (err != CL_SUCCESS && x->call)
        *x->call = call;
    return err;
#endif
}
