/* lib/context.c: configuration from the environment, device discovery and selection, and the
 * context's lifetime (it owns the OpenCL context, the lanes and the perf model). */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *okto_sched_name(okto_sched s)
{
    switch (s) {
    case OKTO_SCHED_SEQUENTIAL: return "sequential";
    case OKTO_SCHED_ROUND_ROBIN: return "round-robin";
    case OKTO_SCHED_HEFT: return "heft";
    case OKTO_SCHED_AUTO: return "auto";
    }
    return "unknown";
}

static void env_fail(okto_config *cfg, const char *var, const char *value, const char *want)
{
    if (cfg->env_status != OKTO_OK)
        return; /* the first bad variable is the one reported */
    cfg->env_status = OKTO_EINVAL;
    snprintf(cfg->env_error, sizeof cfg->env_error, "invalid %s=\"%s\": expected %s", var, value,
             want);
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

void okto_config_init(okto_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->device_index = -1;
    cfg->copy_lanes = -1;
    cfg->subdevices = -1;
    cfg->sched = OKTO_SCHED_HEFT;
    cfg->log = OKTO_LOG_WARN;

    const char *e;
    if ((e = getenv("OKTO_DEVICE")) && *e) {
        long v;
        if (all_digits(e)) {
            if (parse_int(e, 0, 1 << 20, &v))
                cfg->device_index = (int)v;
            else
                env_fail(cfg, "OKTO_DEVICE", e, "a device index or a device name substring");
        } else if (strlen(e) >= sizeof cfg->device_name) {
            env_fail(cfg, "OKTO_DEVICE", e, "a device name substring under 128 characters");
        } else {
            snprintf(cfg->device_name, sizeof cfg->device_name, "%s", e);
        }
    }
    if ((e = getenv("OKTO_LANES")) && *e) {
        long v;
        if (parse_int(e, 1, OKTO_MAX_COMPUTE_LANES, &v))
            cfg->compute_lanes = (int)v;
        else
            env_fail(cfg, "OKTO_LANES", e, "an integer from 1 to 64");
    }
    if ((e = getenv("OKTO_SUBDEVICES")) && *e) {
        if (strcmp(e, "0") == 0 || strcmp(e, "1") == 0)
            cfg->subdevices = e[0] - '0';
        else
            env_fail(cfg, "OKTO_SUBDEVICES", e, "0 or 1");
    }
    if ((e = getenv("OKTO_SCHED")) && *e) {
        if (strcmp(e, "sequential") == 0)
            cfg->sched = OKTO_SCHED_SEQUENTIAL;
        else if (strcmp(e, "round-robin") == 0)
            cfg->sched = OKTO_SCHED_ROUND_ROBIN;
        else if (strcmp(e, "heft") == 0)
            cfg->sched = OKTO_SCHED_HEFT;
        else
            env_fail(cfg, "OKTO_SCHED", e, "sequential, round-robin or heft");
    }
    if ((e = getenv("OKTO_LOG")) && *e) {
        static const char *lv[] = {"error", "warn", "info", "debug"};
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strcmp(e, lv[i]) == 0) {
                cfg->log = (okto_log_level)i;
                found = 1;
            }
        if (!found)
            env_fail(cfg, "OKTO_LOG", e, "error, warn, info or debug");
    }
    if ((e = getenv("OKTO_TRACE")) && *e) {
        if (strlen(e) >= sizeof cfg->trace_path)
            env_fail(cfg, "OKTO_TRACE", e, "a path under 256 characters");
        else
            snprintf(cfg->trace_path, sizeof cfg->trace_path, "%s", e);
    }
}

/* ---- device discovery ---------------------------------------------------------------- */

typedef struct dev_entry {
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char name[256];
    double score;                /* compute units x clock */
} dev_entry;

static int type_rank(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return 3;
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return 2;
    if (t & CL_DEVICE_TYPE_CPU) return 1;
    return 0;
}

static const char no_platform_hint[] =
    "no OpenCL platform found: install an OpenCL driver (ICD), for example "
    "`apt-get install pocl-opencl-icd` for CPUs, and check /etc/OpenCL/vendors "
    "(or OCL_ICD_VENDORS)";

/* Every device of every platform in ICD order; *out malloc'd. */
static okto_status discover(dev_entry **out, int *count)
{
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    *out = NULL;
    *count = 0;
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || np == 0)
        return okto__fail(NULL, OKTO_ENODEV, "%s", no_platform_hint);
    if (err != CL_SUCCESS)
        return okto__fail_cl(NULL, err, "clGetPlatformIDs", "%s", no_platform_hint);
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats)
        return okto__fail(NULL, OKTO_ENOMEM, "out of host memory listing platforms");
    if ((err = clGetPlatformIDs(np, plats, NULL)) != CL_SUCCESS) {
        free(plats);
        return okto__fail_cl(NULL, err, "clGetPlatformIDs", "%s", no_platform_hint);
    }

    dev_entry *list = NULL;
    int n = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || !nd)
            continue;
        cl_device_id *devs = calloc(nd, sizeof *devs);
        dev_entry *grown = realloc(list, (size_t)(n + (int)nd) * sizeof *list);
        if (!devs || !grown) {
            free(devs);
            free(grown ? grown : list);
            free(plats);
            return okto__fail(NULL, OKTO_ENOMEM, "out of host memory listing devices");
        }
        list = grown;
        clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
        for (cl_uint d = 0; d < nd; d++) {
            dev_entry *e = &list[n++];
            memset(e, 0, sizeof *e);
            e->platform = plats[p];
            e->device = devs[d];
            cl_uint cu = 0, mhz = 0;
            OKTO__DEVICE_INFO(devs[d], CL_DEVICE_TYPE, e->type);
            okto__device_info(devs[d], CL_DEVICE_NAME, "CL_DEVICE_NAME", sizeof e->name - 1,
                              e->name);
            OKTO__DEVICE_INFO(devs[d], CL_DEVICE_MAX_COMPUTE_UNITS, cu);
            OKTO__DEVICE_INFO(devs[d], CL_DEVICE_MAX_CLOCK_FREQUENCY, mhz);
            e->score = (double)cu * (double)(mhz ? mhz : 1);
        }
        free(devs);
    }
    free(plats);
    if (n == 0) {
        free(list);
        return okto__fail(NULL, OKTO_ENODEV, "OpenCL platforms found but no device: %s",
                          no_platform_hint);
    }
    *out = list;
    *count = n;
    return OKTO_OK;
}

/* GPU before accelerator before CPU, then the largest compute units x clock. */
static int better(const dev_entry *a, const dev_entry *b)
{
    int ra = type_rank(a->type), rb = type_rank(b->type);
    if (ra != rb)
        return ra > rb;
    return a->score > b->score;
}

static int best_of(const dev_entry *list, int n, const char *substr)
{
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (substr) {
            char hay[256], needle[128];
            size_t j;
            for (j = 0; list[i].name[j] && j < sizeof hay - 1; j++)
                hay[j] = (char)tolower((unsigned char)list[i].name[j]);
            hay[j] = 0;
            for (j = 0; substr[j] && j < sizeof needle - 1; j++)
                needle[j] = (char)tolower((unsigned char)substr[j]);
            needle[j] = 0;
            if (!strstr(hay, needle))
                continue;
        }
        if (best < 0 || better(&list[i], &list[best]))
            best = i;
    }
    return best;
}

static void list_devices(const dev_entry *list, int n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s[%d] %s", i ? ", " : "", i,
                                list[i].name);
}

okto_status okto_devices(okto_device_info **out, int *count)
{
    if (!out || !count)
        return okto__fail(NULL, OKTO_EINVAL, "okto_devices: out and count must not be NULL");
    *out = NULL;
    *count = 0;
    dev_entry *list;
    int n;
    okto_status s = discover(&list, &n);
    if (s != OKTO_OK)
        return s;
    okto_device_info *info = calloc((size_t)n, sizeof *info);
    if (!info) {
        free(list);
        return okto__fail(NULL, OKTO_ENOMEM, "out of host memory listing devices");
    }
    int def = best_of(list, n, NULL);
    for (int i = 0; i < n; i++) {
        info[i].index = i;
        info[i].platform = list[i].platform;
        info[i].device = list[i].device;
        info[i].is_default = i == def;
        okto_device_lanes(list[i].device, &info[i].compute_lanes, &info[i].copy_lanes);
    }
    free(list);
    *out = info;
    *count = n;
    return OKTO_OK;
}

void okto_devices_free(okto_device_info *devices) { free(devices); }

/* ---- lifetime -------------------------------------------------------------------------- */

static void context_free(okto_context *ctx)
{
    for (int i = 0; i < ctx->ncompute + ctx->ncopy; i++)
        okto__lane_fini(&ctx->lanes[i]);
    okto__lane_fini(&ctx->seq);
    if (ctx->program)
        clReleaseProgram(ctx->program);
    if (ctx->cl)
        clReleaseContext(ctx->cl);
    for (int i = 0; i < ctx->nsub; i++)
        clReleaseDevice(ctx->sub[i]);
    if (ctx->device)
        clReleaseDevice(ctx->device);
    okto__perf_fini(&ctx->perf);
    pthread_mutex_destroy(&ctx->post_lock);
    pthread_mutex_destroy(&ctx->err_lock);
    pthread_mutex_destroy(&ctx->prog_lock);
    free(ctx);
}

void okto__context_retain(okto_context *ctx) { atomic_fetch_add(&ctx->refs, 1); }

void okto__context_release(okto_context *ctx)
{
    if (ctx && atomic_fetch_sub(&ctx->refs, 1) == 1)
        context_free(ctx);
}

void okto_context_destroy(okto_context *ctx) { okto__context_release(ctx); }

/* Sub-devices for CPU lanes, only when asked for (config.subdevices = 1, OKTO_SUBDEVICES=1):
 * one sub-device per lane gives each lane cores of its own. Measured with okto-bench on the
 * 2-core PoCL machine, lanes sharing the whole device did as well or better everywhere
 * (copy-overlap 1.32x against 1.02x, small-gemm 1.34x against 1.28x): PoCL spreads every
 * queue's work-groups over all cores, while a 1-core sub-device leaves a core idle whenever
 * its sibling lane has nothing to run. */
static void make_subdevices(okto_context *ctx, int lanes)
{
    cl_uint cu = 0;
    OKTO__DEVICE_INFO(ctx->device, CL_DEVICE_MAX_COMPUTE_UNITS, cu);
    if (!(ctx->device_type & CL_DEVICE_TYPE_CPU) || lanes < 2 || cu < 2 ||
        ctx->cfg.subdevices != 1)
        return;
    int want = lanes < (int)cu ? lanes : (int)cu;
    cl_device_partition_property props[] = {CL_DEVICE_PARTITION_EQUALLY,
                                            (cl_device_partition_property)(cu / (cl_uint)want),
                                            0};
    cl_uint got = 0;
    cl_device_id subs[256];
    cl_int err = clCreateSubDevices(ctx->device, props, 256, subs, &got);
    if (err != CL_SUCCESS || got < 2) {
        okto__log(ctx, OKTO_LOG_INFO, "no sub-devices (%s): lanes share the device",
                  okto__cl_name(err));
        for (cl_uint i = 0; err == CL_SUCCESS && i < got; i++)
            clReleaseDevice(subs[i]);
        return;
    }
    for (cl_uint i = 0; i < got; i++) {
        if ((int)i < want)
            ctx->sub[ctx->nsub++] = subs[i];
        else
            clReleaseDevice(subs[i]);
    }
}

static okto_status context_init(okto_context *ctx, const okto_config *cfg)
{
    okto_config def;
    if (!cfg) {
        okto_config_init(&def);
        cfg = &def;
    }
    ctx->cfg = *cfg;
    atomic_init(&ctx->refs, 1);
    pthread_mutex_init(&ctx->post_lock, NULL);
    pthread_mutex_init(&ctx->err_lock, NULL);
    pthread_mutex_init(&ctx->prog_lock, NULL);
    okto__perf_init(&ctx->perf);
    if (cfg->env_status != OKTO_OK)
        return okto__fail(NULL, cfg->env_status, "%s", cfg->env_error);
    if (cfg->compute_lanes < 0 || cfg->compute_lanes > OKTO_MAX_COMPUTE_LANES)
        return okto__fail(NULL, OKTO_EINVAL, "config compute_lanes = %d: expected 0 to %d",
                          cfg->compute_lanes, OKTO_MAX_COMPUTE_LANES);
    if (cfg->copy_lanes < -1 || cfg->copy_lanes > OKTO_MAX_COPY_LANES)
        return okto__fail(NULL, OKTO_EINVAL, "config copy_lanes = %d: expected -1 to %d",
                          cfg->copy_lanes, OKTO_MAX_COPY_LANES);
    if (cfg->subdevices < -1 || cfg->subdevices > 1)
        return okto__fail(NULL, OKTO_EINVAL, "config subdevices = %d: expected -1, 0 or 1",
                          cfg->subdevices);
    if (cfg->sched < OKTO_SCHED_AUTO || cfg->sched > OKTO_SCHED_HEFT)
        return okto__fail(NULL, OKTO_EINVAL, "config sched = %d is not an okto_sched",
                          (int)cfg->sched);
    if (ctx->cfg.sched == OKTO_SCHED_AUTO)
        ctx->cfg.sched = OKTO_SCHED_HEFT;
    return OKTO_OK;
}

/* Lanes, the sequential queue and the cost-model constants, once ctx->cl and ctx->device are
 * set. */
static okto_status context_start(okto_context *ctx)
{
    OKTO__DEVICE_INFO(ctx->device, CL_DEVICE_TYPE, ctx->device_type);
    cl_ulong max_alloc = 0;
    cl_uint cu = 1, mhz = 1000;
    OKTO__DEVICE_INFO(ctx->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, max_alloc);
    OKTO__DEVICE_INFO(ctx->device, CL_DEVICE_MAX_COMPUTE_UNITS, cu);
    OKTO__DEVICE_INFO(ctx->device, CL_DEVICE_MAX_CLOCK_FREQUENCY, mhz);
    ctx->max_alloc = (size_t)max_alloc;
    /* CPUs: 4 groups per core balance the cores; GPUs need many more in flight per unit */
    ctx->grid_groups = (size_t)(cu ? cu : 1) * ((ctx->device_type & CL_DEVICE_TYPE_GPU) ? 16 : 4);
    /* First guesses only; the perf model replaces them with measured durations. CPUs through
     * PoCL reach a few flops per cycle per core in practice; GPUs far more. */
    int gpu = (ctx->device_type & CL_DEVICE_TYPE_GPU) != 0;
    ctx->gflops_est = (double)cu * (double)mhz * 1e-3 * (gpu ? 64.0 : 8.0);
    ctx->gbps_est = gpu ? 300.0 : 10.0;

    int dc, dcopy;
    okto_device_lanes(ctx->device, &dc, &dcopy);
    ctx->ncompute = ctx->cfg.compute_lanes > 0 ? ctx->cfg.compute_lanes : dc;
    ctx->ncopy = ctx->cfg.copy_lanes >= 0 ? ctx->cfg.copy_lanes : dcopy;
    okto_status s;
    for (int i = 0; i < ctx->ncompute + ctx->ncopy; i++) {
        int copy = i >= ctx->ncompute;
        cl_device_id dev = (!copy && ctx->nsub) ? ctx->sub[i % ctx->nsub] : ctx->device;
        if ((s = okto__lane_init(ctx, &ctx->lanes[i], i, copy, dev)) != OKTO_OK) {
            /* context_free finalizes only the lanes counted so far */
            ctx->ncompute = copy ? ctx->ncompute : i;
            ctx->ncopy = copy ? i - ctx->ncompute : 0;
            return s;
        }
    }
    if ((s = okto__lane_init(ctx, &ctx->seq, -1, 0, ctx->device)) != OKTO_OK)
        return s;
    okto__log(ctx, OKTO_LOG_INFO, "context: %d compute lanes (%d sub-devices), %d copy lanes",
              ctx->ncompute, ctx->nsub, ctx->ncopy);
    return OKTO_OK;
}

okto_status okto_context_create(const okto_config *cfg, okto_context **out)
{
    if (!out)
        return okto__fail(NULL, OKTO_EINVAL, "okto_context_create: out must not be NULL");
    *out = NULL;
    okto_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return okto__fail(NULL, OKTO_ENOMEM, "out of host memory creating a context");
    okto_status s = context_init(ctx, cfg);
    dev_entry *list = NULL;
    int n = 0;
    if (s == OKTO_OK)
        s = discover(&list, &n);
    if (s != OKTO_OK) {
        context_free(ctx);
        return s;
    }

    int pick = -1;
    char avail[2048];
    list_devices(list, n, avail, sizeof avail);
    if (ctx->cfg.device_index >= 0) {
        if (ctx->cfg.device_index >= n) {
            s = okto__fail(NULL, OKTO_ENODEV,
                           "device index %d (OKTO_DEVICE or config) is out of range: %d "
                           "device%s available: %s",
                           ctx->cfg.device_index, n, n == 1 ? "" : "s", avail);
        }
        pick = ctx->cfg.device_index;
    } else if (ctx->cfg.device_name[0]) {
        pick = best_of(list, n, ctx->cfg.device_name);
        if (pick < 0)
            s = okto__fail(NULL, OKTO_ENODEV,
                           "no device name contains \"%s\" (OKTO_DEVICE or config); available: %s",
                           ctx->cfg.device_name, avail);
    } else {
        pick = best_of(list, n, NULL);
    }
    if (s != OKTO_OK) {
        free(list);
        context_free(ctx);
        return s;
    }
    ctx->platform = list[pick].platform;
    ctx->device = list[pick].device;
    ctx->device_type = list[pick].type;
    free(list);
    clRetainDevice(ctx->device); /* no-op for root devices; keeps release symmetric */

    int lanes = ctx->cfg.compute_lanes;
    if (lanes == 0)
        okto_device_lanes(ctx->device, &lanes, &(int){0});
    make_subdevices(ctx, lanes);

    cl_device_id devs[1 + OKTO_MAX_COMPUTE_LANES];
    devs[0] = ctx->device;
    for (int i = 0; i < ctx->nsub; i++)
        devs[1 + i] = ctx->sub[i];
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform,
                                     0};
    cl_int err;
    ctx->cl = clCreateContext(props, (cl_uint)(1 + ctx->nsub), devs, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        s = okto__fail_cl(NULL, err, "clCreateContext", "device %s",
                          ctx->cfg.device_name[0] ? ctx->cfg.device_name : "(default)");
        ctx->cl = NULL;
        context_free(ctx);
        return s;
    }
    ctx->owns_cl = 1;
    if ((s = context_start(ctx)) != OKTO_OK) {
        context_free(ctx);
        return s;
    }
    *out = ctx;
    return OKTO_OK;
}

okto_status okto_context_create_from_cl(cl_context cl_ctx, cl_device_id device,
                                        const okto_config *cfg, okto_context **out)
{
    if (!out)
        return okto__fail(NULL, OKTO_EINVAL, "okto_context_create_from_cl: out must not be NULL");
    *out = NULL;
    if (!cl_ctx || !device)
        return okto__fail(NULL, OKTO_EINVAL,
                          "okto_context_create_from_cl: cl_ctx and device must not be NULL");
    cl_uint nd = 0;
    cl_int err = clGetContextInfo(cl_ctx, CL_CONTEXT_NUM_DEVICES, sizeof nd, &nd, NULL);
    if (err != CL_SUCCESS)
        return okto__fail_cl(NULL, err, "clGetContextInfo", "CL_CONTEXT_NUM_DEVICES");
    cl_device_id devs[64];
    if (nd == 0 || nd > 64)
        return okto__fail(NULL, OKTO_EINVAL, "okto_context_create_from_cl: context has %u devices",
                          nd);
    if ((err = clGetContextInfo(cl_ctx, CL_CONTEXT_DEVICES, sizeof devs, devs, NULL)) != CL_SUCCESS)
        return okto__fail_cl(NULL, err, "clGetContextInfo", "CL_CONTEXT_DEVICES");
    int found = 0;
    for (cl_uint i = 0; i < nd; i++)
        found |= devs[i] == device;
    if (!found)
        return okto__fail(NULL, OKTO_EINVAL,
                          "okto_context_create_from_cl: the device is not in the cl_context");

    okto_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return okto__fail(NULL, OKTO_ENOMEM, "out of host memory creating a context");
    okto_status s = context_init(ctx, cfg);
    if (s != OKTO_OK) {
        context_free(ctx);
        return s;
    }
    OKTO__DEVICE_INFO(device, CL_DEVICE_PLATFORM, ctx->platform);
    clRetainContext(cl_ctx);
    clRetainDevice(device);
    ctx->cl = cl_ctx;
    ctx->device = device;
    if ((s = context_start(ctx)) != OKTO_OK) {
        context_free(ctx);
        return s;
    }
    *out = ctx;
    return OKTO_OK;
}

int okto_lane_count(const okto_context *ctx) { return ctx ? ctx->ncompute + ctx->ncopy : 0; }
int okto_compute_lane_count(const okto_context *ctx) { return ctx ? ctx->ncompute : 0; }
int okto_copy_lane_count(const okto_context *ctx) { return ctx ? ctx->ncopy : 0; }
cl_context okto_context_cl(const okto_context *ctx) { return ctx ? ctx->cl : NULL; }
cl_device_id okto_context_device(const okto_context *ctx) { return ctx ? ctx->device : NULL; }
okto_sched okto_context_sched(const okto_context *ctx)
{
    return ctx ? ctx->cfg.sched : OKTO_SCHED_AUTO;
}
