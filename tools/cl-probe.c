/* tools/cl-probe.c: two raw-OpenCL measurements that say what a device gives okto's lanes to
 * work with, without okto in the way (tools/gpu-check.sh runs both on the GPU machine):
 *
 *   latency   an empty kernel: enqueue + clFinish round trip, host cost of one enqueue and the
 *             back-to-back throughput, and the device-side gap between consecutive kernels.
 *             This is the floor under every okto task.
 *   overlap   two independent long-running kernels, each too small to fill the device, on one
 *             in-order queue (the baseline: they cannot overlap), on two in-order queues (what
 *             okto's lanes are) and on one out-of-order queue. Overlap is read from the
 *             profiling timestamps of both events: the time both ran / the shorter one's
 *             duration, so 0 is serial and 1 is the shorter kernel entirely beside the other.
 *             Overlap alone can mislead (two kernels that share one core overlap fully and
 *             each takes twice as long), so the span of the pair is compared with the in-order
 *             baseline's too: that ratio is what lanes can gain. Host wall time is reported as
 *             a check that needs no profiling clock.
 *
 * Prints one JSON document on stdout and a short reading on stderr. The device is --device N
 * (numbered as okto-probe numbers them: every device of every platform, in ICD order), else
 * OKTO_DEVICE when it is an index, else the first GPU, else device 0.
 *
 * Exit status: 0 on success, 1 when there is no device or an OpenCL call fails (the call and
 * its CL_* name are printed), 2 on a bad command line. */
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: cl-probe latency|overlap [--device N] [--iters N] [--ms MS] [--groups G]\n"
    "  latency   empty-kernel round trip (enqueue + clFinish) and enqueue throughput\n"
    "  overlap   two independent kernels on 1 in-order, 2 in-order and 1 out-of-order queue\n"
    "  --device N  device index as okto-probe prints it (default: OKTO_DEVICE, first GPU, 0)\n"
    "  --iters N   latency: round trips to time (default 2000; throughput uses 10x)\n"
    "  --ms MS     overlap: how long each kernel runs alone (default 20)\n"
    "  --groups G  overlap: work-groups of 64 per kernel (default compute units / 4, >= 1)\n";

static const char *cl_err_name(cl_int err)
{
    switch (err) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_PROFILING_INFO_NOT_AVAILABLE: return "CL_PROFILING_INFO_NOT_AVAILABLE";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
    case CL_INVALID_QUEUE_PROPERTIES: return "CL_INVALID_QUEUE_PROPERTIES";
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_EVENT: return "CL_INVALID_EVENT";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "CL error";
}

/* Every OpenCL call goes through CHECK: on failure it names the call and jumps to `fail`,
 * where the function releases what it made. */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        cl_int e_ = (call);                                                                        \
        if (e_ != CL_SUCCESS) {                                                                    \
            fprintf(stderr, "cl-probe: %s failed: %s (%d)\n", #call, cl_err_name(e_), (int)e_);    \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
#define CHECK_ERR(what)                                                                            \
    do {                                                                                           \
        if (err != CL_SUCCESS) {                                                                   \
            fprintf(stderr, "cl-probe: %s failed: %s (%d)\n", what, cl_err_name(err), (int)err);   \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of v; sorts v. */
static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* The device and what this probe made on it; probe_close releases it all. */
typedef struct probe {
    cl_device_id dev;
    cl_context ctx;
    cl_program prog;
    char name[256], platform[256], version[256];
    cl_uint compute_units;
    cl_command_queue_properties queue_props;
    int index;
} probe;

static void probe_close(probe *p)
{
    if (p->prog)
        clReleaseProgram(p->prog);
    if (p->ctx)
        clReleaseContext(p->ctx);
}

/* Opens device `want` (-1: OKTO_DEVICE if an index, else the first GPU, else 0) and builds
 * `src`. Returns 0, or -1 after printing why. */
static int probe_open(probe *p, int want, const char *src)
{
    cl_platform_id plats[16];
    cl_uint np = 0;
    cl_device_id devs[64];
    int nd = 0, gpu = -1;
    cl_int err = clGetPlatformIDs(16, plats, &np);
    if (err != CL_SUCCESS || np == 0) {
        fprintf(stderr, "cl-probe: no OpenCL platform found (clGetPlatformIDs: %s)\n",
                err == CL_SUCCESS ? "0 platforms" : cl_err_name(err));
        return -1;
    }
    for (cl_uint i = 0; i < np && nd < 64; i++) {
        cl_uint n = 0;
        if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, (cl_uint)(64 - nd), devs + nd, &n) !=
            CL_SUCCESS)
            continue; /* a platform without devices, as okto-probe counts it */
        for (cl_uint j = 0; j < n; j++) {
            cl_device_type t = 0;
            clGetDeviceInfo(devs[nd + (int)j], CL_DEVICE_TYPE, sizeof t, &t, NULL);
            if (gpu < 0 && (t & CL_DEVICE_TYPE_GPU))
                gpu = nd + (int)j;
        }
        nd += (int)n;
    }
    const char *env = getenv("OKTO_DEVICE");
    char *end = NULL;
    if (want < 0 && env && *env) {
        long v = strtol(env, &end, 10);
        if (*end == '\0')
            want = (int)v;
    }
    if (want < 0)
        want = gpu >= 0 ? gpu : 0;
    if (nd == 0 || want >= nd) {
        fprintf(stderr, "cl-probe: no OpenCL device %d (%d found)\n", want, nd);
        return -1;
    }
    p->index = want;
    p->dev = devs[want];
    cl_platform_id plat;
    CHECK(clGetDeviceInfo(p->dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL));
    CHECK(clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof p->platform - 1, p->platform, NULL));
    CHECK(clGetDeviceInfo(p->dev, CL_DEVICE_NAME, sizeof p->name - 1, p->name, NULL));
    CHECK(clGetDeviceInfo(p->dev, CL_DEVICE_VERSION, sizeof p->version - 1, p->version, NULL));
    CHECK(clGetDeviceInfo(p->dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof p->compute_units,
                          &p->compute_units, NULL));
    CHECK(clGetDeviceInfo(p->dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof p->queue_props,
                          &p->queue_props, NULL));
    p->ctx = clCreateContext(NULL, 1, &p->dev, NULL, NULL, &err);
    CHECK_ERR("clCreateContext");
    p->prog = clCreateProgramWithSource(p->ctx, 1, &src, NULL, &err);
    CHECK_ERR("clCreateProgramWithSource");
    err = clBuildProgram(p->prog, 1, &p->dev, "", NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[4096] = "";
        clGetProgramBuildInfo(p->prog, p->dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fprintf(stderr, "cl-probe: clBuildProgram failed: %s (%d)\n%s\n", cl_err_name(err),
                (int)err, log);
        goto fail;
    }
    return 0;
fail:
    probe_close(p);
    memset(p, 0, sizeof *p);
    return -1;
}

/* JSON string contents: drivers' names are plain, but quote what needs it. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

static void json_device(const probe *p)
{
    printf("  \"device_index\": %d,\n  \"device\": ", p->index);
    json_str(p->name);
    printf(",\n  \"platform\": ");
    json_str(p->platform);
    printf(",\n  \"device_version\": ");
    json_str(p->version);
    printf(",\n  \"compute_units\": %u,\n", p->compute_units);
}

static double event_ns(cl_event e, cl_profiling_info what)
{
    cl_ulong t = 0;
    if (clGetEventProfilingInfo(e, what, sizeof t, &t, NULL) != CL_SUCCESS)
        return -1;
    return (double)t;
}

/* ---- latency ------------------------------------------------------------------------------ */

static int run_latency(int want, int iters)
{
    static const char *src = "__kernel void empty(void) {}\n";
    probe p = {0};
    cl_command_queue q = NULL, qp = NULL;
    cl_kernel k = NULL;
    cl_event *ev = NULL;
    double *rt = NULL, *gap = NULL, *dur = NULL;
    int rc = 1, nev = 1000, tput = iters * 10;
    cl_int err;
    size_t one = 1;
    if (probe_open(&p, want, src))
        return 1;
    q = clCreateCommandQueue(p.ctx, p.dev, 0, &err);
    CHECK_ERR("clCreateCommandQueue");
    qp = clCreateCommandQueue(p.ctx, p.dev, CL_QUEUE_PROFILING_ENABLE, &err);
    CHECK_ERR("clCreateCommandQueue(CL_QUEUE_PROFILING_ENABLE)");
    k = clCreateKernel(p.prog, "empty", &err);
    CHECK_ERR("clCreateKernel");
    rt = malloc((size_t)iters * sizeof *rt);
    ev = calloc((size_t)nev, sizeof *ev);
    gap = malloc((size_t)nev * sizeof *gap);
    dur = malloc((size_t)nev * sizeof *dur);
    if (!rt || !ev || !gap || !dur) {
        fprintf(stderr, "cl-probe: out of memory\n");
        goto fail;
    }
    /* warm-up: the first launches carry the driver's lazy set-up */
    for (int i = 0; i < 200; i++) {
        CHECK(clEnqueueNDRangeKernel(q, k, 1, NULL, &one, NULL, 0, NULL, NULL));
        CHECK(clFinish(q));
    }
    for (int i = 0; i < iters; i++) {
        double t0 = now_us();
        CHECK(clEnqueueNDRangeKernel(q, k, 1, NULL, &one, NULL, 0, NULL, NULL));
        CHECK(clFinish(q));
        rt[i] = now_us() - t0;
    }
    /* throughput: back to back without events, the way okto's lanes enqueue */
    double t0 = now_us();
    for (int i = 0; i < tput; i++)
        CHECK(clEnqueueNDRangeKernel(q, k, 1, NULL, &one, NULL, 0, NULL, NULL));
    double t1 = now_us();
    CHECK(clFinish(q));
    double t2 = now_us();
    /* device side: each kernel's duration and the gap to the next, from profiling events */
    for (int i = 0; i < nev; i++)
        CHECK(clEnqueueNDRangeKernel(qp, k, 1, NULL, &one, NULL, 0, NULL, &ev[i]));
    CHECK(clFinish(qp));
    int ngap = 0, ndur = 0;
    for (int i = 0; i < nev; i++) {
        double s = event_ns(ev[i], CL_PROFILING_COMMAND_START);
        double e = event_ns(ev[i], CL_PROFILING_COMMAND_END);
        if (s >= 0 && e >= s)
            dur[ndur++] = (e - s) * 1e-3;
        if (i > 0) {
            double pe = event_ns(ev[i - 1], CL_PROFILING_COMMAND_END);
            if (s >= 0 && pe >= 0)
                gap[ngap++] = (s - pe) * 1e-3;
        }
    }
    double rt_mean = 0;
    for (int i = 0; i < iters; i++)
        rt_mean += rt[i] / iters;
    double rt_min = quantile(rt, iters, 0), rt_p10 = quantile(rt, iters, 0.1),
           rt_med = quantile(rt, iters, 0.5), rt_p90 = quantile(rt, iters, 0.9),
           rt_p99 = quantile(rt, iters, 0.99);
    double enq_us = (t1 - t0) / tput, all_us = (t2 - t0) / tput;
    double gap_med = ngap ? quantile(gap, ngap, 0.5) : -1,
           dur_med = ndur ? quantile(dur, ndur, 0.5) : -1;
    printf("{\n  \"probe\": \"latency\",\n");
    json_device(&p);
    printf("  \"round_trip_us\": {\"iters\": %d, \"min\": %.2f, \"p10\": %.2f, \"median\": %.2f, "
           "\"p90\": %.2f, \"p99\": %.2f, \"mean\": %.2f},\n",
           iters, rt_min, rt_p10, rt_med, rt_p90, rt_p99, rt_mean);
    printf("  \"throughput\": {\"kernels\": %d, \"enqueue_us_per_kernel\": %.3f, "
           "\"us_per_kernel_until_finished\": %.3f, \"kernels_per_s\": %.0f},\n",
           tput, enq_us, all_us, 1e6 / all_us);
    printf("  \"device_profile\": {\"kernels\": %d, \"median_kernel_us\": %.3f, "
           "\"median_gap_us\": %.3f}\n}\n",
           nev, dur_med, gap_med);
    fprintf(stderr,
            "cl-probe latency on %s: round trip median %.1f us (p10 %.1f, p90 %.1f); enqueue "
            "%.2f us, back to back %.2f us per kernel (%.0f/s); on the device an empty kernel "
            "takes %.2f us with %.2f us between kernels\n",
            p.name, rt_med, rt_p10, rt_p90, enq_us, all_us, 1e6 / all_us, dur_med, gap_med);
    rc = 0;
fail:
    for (int i = 0; ev && i < nev; i++)
        if (ev[i])
            clReleaseEvent(ev[i]);
    free(ev), free(rt), free(gap), free(dur);
    if (k)
        clReleaseKernel(k);
    if (q)
        clReleaseCommandQueue(q);
    if (qp)
        clReleaseCommandQueue(qp);
    probe_close(&p);
    return rc;
}

/* ---- overlap ------------------------------------------------------------------------------ */

/* A dependent chain of multiply-adds per work-item: long-running, little memory traffic, and
 * few work-groups, so one kernel leaves most of the device free for the other. */
static const char *spin_src = "__kernel void spin(__global float *out, int iters)\n"
                              "{\n"
                              "    float a = (float)get_global_id(0) * 1e-6f, b = 0.5f;\n"
                              "    for (int i = 0; i < iters; i++) {\n"
                              "        a = mad(a, 0.9999f, 0.0001f);\n"
                              "        b = mad(b, 0.9999f, a);\n"
                              "    }\n"
                              "    out[get_global_id(0)] = a + b;\n"
                              "}\n";

typedef struct spin {
    cl_kernel k[2];
    cl_mem buf[2];
    size_t global, local;
} spin;

static cl_int spin_enqueue(spin *s, int which, cl_command_queue q, cl_event *ev)
{
    return clEnqueueNDRangeKernel(q, s->k[which], 1, NULL, &s->global, &s->local, 0, NULL, ev);
}

static cl_int spin_set_iters(spin *s, int iters)
{
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < 2 && err == CL_SUCCESS; i++)
        err = clSetKernelArg(s->k[i], 1, sizeof iters, &iters);
    return err;
}

/* One pair's figures: from the profiling timestamps and from the host clock. */
typedef struct pair {
    double d[2], span_ms, overlap, wall_ms;
} pair;

/* Runs kernel 0 on q0 and kernel 1 on q1 (the same queue for the in-order baseline and the
 * out-of-order queue), waits, and reads both events' timestamps. */
static int run_pair(spin *s, cl_command_queue q0, cl_command_queue q1, pair *out)
{
    cl_event ev[2] = {NULL, NULL};
    int rc = -1;
    double t0 = now_us();
    CHECK(spin_enqueue(s, 0, q0, &ev[0]));
    CHECK(clFlush(q0)); /* submit now, the way a lane does before another queue waits */
    CHECK(spin_enqueue(s, 1, q1, &ev[1]));
    CHECK(clFlush(q1));
    CHECK(clFinish(q0));
    if (q1 != q0)
        CHECK(clFinish(q1));
    out->wall_ms = (now_us() - t0) * 1e-3;
    double st[2], en[2];
    for (int i = 0; i < 2; i++) {
        st[i] = event_ns(ev[i], CL_PROFILING_COMMAND_START);
        en[i] = event_ns(ev[i], CL_PROFILING_COMMAND_END);
        if (st[i] < 0 || en[i] < st[i]) {
            fprintf(stderr, "cl-probe: profiling timestamps not available\n");
            goto fail;
        }
        out->d[i] = (en[i] - st[i]) * 1e-6;
    }
    double lo = st[0] > st[1] ? st[0] : st[1], hi = en[0] < en[1] ? en[0] : en[1];
    double shorter = out->d[0] < out->d[1] ? out->d[0] : out->d[1];
    out->overlap = hi > lo && shorter > 0 ? (hi - lo) * 1e-6 / shorter : 0;
    out->span_ms = ((en[0] > en[1] ? en[0] : en[1]) - (st[0] < st[1] ? st[0] : st[1])) * 1e-6;
    rc = 0;
fail:
    for (int i = 0; i < 2; i++)
        if (ev[i])
            clReleaseEvent(ev[i]);
    return rc;
}

static int run_overlap(int want, double target_ms, int groups)
{
    enum { REPS = 5 };
    static const char *mode_name[3] = {"in_order_1_queue", "in_order_2_queues",
                                       "out_of_order_1_queue"};
    probe p = {0};
    spin s = {{NULL, NULL}, {NULL, NULL}, 0, 64};
    cl_command_queue q[3] = {NULL, NULL, NULL}; /* in-order, in-order, out-of-order */
    int rc = 1, iters = 1 << 14;
    cl_int err;
    if (probe_open(&p, want, spin_src))
        return 1;
    if (groups < 1)
        groups = p.compute_units / 4 > 0 ? (int)(p.compute_units / 4) : 1;
    s.global = (size_t)groups * s.local;
    for (int i = 0; i < 2; i++) {
        s.buf[i] = clCreateBuffer(p.ctx, CL_MEM_WRITE_ONLY, s.global * sizeof(float), NULL, &err);
        CHECK_ERR("clCreateBuffer");
        s.k[i] = clCreateKernel(p.prog, "spin", &err);
        CHECK_ERR("clCreateKernel");
        CHECK(clSetKernelArg(s.k[i], 0, sizeof s.buf[i], &s.buf[i]));
    }
    for (int i = 0; i < 2; i++) {
        q[i] = clCreateCommandQueue(p.ctx, p.dev, CL_QUEUE_PROFILING_ENABLE, &err);
        CHECK_ERR("clCreateCommandQueue(CL_QUEUE_PROFILING_ENABLE)");
    }
    int ooo = (p.queue_props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    if (ooo) {
        q[2] = clCreateCommandQueue(
            p.ctx, p.dev, CL_QUEUE_PROFILING_ENABLE | CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
        CHECK_ERR("clCreateCommandQueue(CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)");
    }
    /* calibrate: scale the loop until one kernel alone runs about target_ms */
    double alone = 0;
    for (int tries = 0; tries < 8; tries++) {
        cl_event e = NULL;
        CHECK(spin_set_iters(&s, iters));
        CHECK(spin_enqueue(&s, 0, q[0], &e));
        err = clWaitForEvents(1, &e);
        alone = (event_ns(e, CL_PROFILING_COMMAND_END) - event_ns(e, CL_PROFILING_COMMAND_START)) *
                1e-6;
        clReleaseEvent(e);
        CHECK_ERR("clWaitForEvents");
        if (alone > 0.7 * target_ms && alone < 1.5 * target_ms)
            break;
        double scale = alone > 1e-3 ? target_ms / alone : 64;
        double next = (double)iters * (scale > 64 ? 64 : scale);
        iters = next > 1 << 30 ? 1 << 30 : next < 1 ? 1 : (int)next;
    }
    CHECK(spin_set_iters(&s, iters));
    printf("{\n  \"probe\": \"overlap\",\n");
    json_device(&p);
    printf("  \"kernel\": {\"work_groups\": %d, \"local_size\": %zu, \"iters\": %d, "
           "\"alone_ms\": %.3f},\n  \"reps\": %d,\n  \"modes\": {",
           groups, s.local, iters, alone, REPS);
    fprintf(stderr, "cl-probe overlap on %s: 2 kernels of %d x %zu work-items, %.2f ms alone\n",
            p.name, groups, s.local, alone);
    double base_span = 0; /* the in-order baseline's median span */
    for (int m = 0; m < 3; m++) {
        cl_command_queue q0 = m == 2 ? q[2] : q[0], q1 = m == 0 ? q[0] : m == 1 ? q[1] : q[2];
        printf("%s\n    \"%s\": ", m ? "," : "", mode_name[m]);
        if (!q0) {
            printf("{\"supported\": false}");
            fprintf(stderr, "  %-22s not supported by the device\n", mode_name[m]);
            continue;
        }
        pair r[REPS], warm;
        if (run_pair(&s, q0, q1, &warm))
            goto fail;
        double ov[REPS], span[REPS], wall[REPS], sum[REPS];
        for (int i = 0; i < REPS; i++) {
            if (run_pair(&s, q0, q1, &r[i]))
                goto fail;
            ov[i] = r[i].overlap, span[i] = r[i].span_ms, wall[i] = r[i].wall_ms;
            sum[i] = r[i].d[0] + r[i].d[1];
        }
        double ovm = quantile(ov, REPS, 0.5), ovmin = quantile(ov, REPS, 0),
               ovmax = quantile(ov, REPS, 1), spm = quantile(span, REPS, 0.5),
               wm = quantile(wall, REPS, 0.5), summ = quantile(sum, REPS, 0.5);
        if (m == 0)
            base_span = spm;
        double gain = spm > 0 ? base_span / spm : 0;
        printf("{\"supported\": true, \"overlap_median\": %.3f, \"overlap_min\": %.3f, "
               "\"overlap_max\": %.3f, \"span_ms\": %.3f, \"sum_of_kernels_ms\": %.3f, "
               "\"wall_ms\": %.3f, \"speedup_vs_in_order_1_queue\": %.3f, \"overlap_each\": [",
               ovm, ovmin, ovmax, spm, summ, wm, gain);
        for (int i = 0; i < REPS; i++)
            printf("%s%.3f", i ? ", " : "", r[i].overlap);
        printf("]}");
        fprintf(stderr,
                "  %-22s overlap %.2f (%.2f-%.2f), span %.2f ms for %.2f ms of kernels (%.2fx "
                "the baseline's speed), wall %.2f ms\n",
                mode_name[m], ovm, ovmin, ovmax, spm, summ, gain, wm);
    }
    printf("\n  }\n}\n");
    rc = 0;
fail:
    for (int i = 0; i < 3; i++)
        if (q[i])
            clReleaseCommandQueue(q[i]);
    for (int i = 0; i < 2; i++) {
        if (s.k[i])
            clReleaseKernel(s.k[i]);
        if (s.buf[i])
            clReleaseMemObject(s.buf[i]);
    }
    probe_close(&p);
    return rc;
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    int device = -1, iters = 2000, groups = 0;
    double ms = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end = NULL;
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (i + 1 < argc && (strcmp(a, "--device") == 0 || strcmp(a, "--iters") == 0 ||
                                    strcmp(a, "--ms") == 0 || strcmp(a, "--groups") == 0)) {
            double v = strtod(argv[++i], &end);
            if (*end || v < 0 || v > 1e9)
                goto bad;
            if (a[2] == 'd')
                device = (int)v;
            else if (a[2] == 'i')
                iters = (int)v;
            else if (a[2] == 'm')
                ms = v;
            else
                groups = (int)v;
        } else if (!mode && (strcmp(a, "latency") == 0 || strcmp(a, "overlap") == 0)) {
            mode = a;
        } else {
            goto bad;
        }
    }
    if (!mode || iters < 1 || ms <= 0)
        goto bad;
    return strcmp(mode, "latency") == 0 ? run_latency(device, iters)
                                        : run_overlap(device, ms, groups);
bad:
    fputs(usage, stderr);
    return 2;
}
