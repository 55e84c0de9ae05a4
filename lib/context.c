/* lib/context.c: configuration from the environment, device selection, and the context's
 * lifetime (it owns the OpenCL context, the device state, the lanes and the perf model). */
#include "ctx.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* "0,1,3": distinct indices, at most OKTO_MAX_DEVICES of them. */
static int parse_list(const char *s, okto_config *cfg)
{
    int n = 0;
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return 0;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (n == OKTO_MAX_DEVICES || !all_digits(tok) || !parse_int(tok, 0, 1 << 20, &v))
            return 0;
        for (int i = 0; i < n; i++)
            if (cfg->devices[i] == (int)v)
                return 0;
        cfg->devices[n++] = (int)v;
    }
    if (n < 2 || s[strlen(s) - 1] == ',' || s[0] == ',' || strstr(s, ",,"))
        return 0;
    cfg->ndevices = n;
    return 1;
}

static const char *const log_names[] = {"error", "warn", "info", "debug"};

void okto_config_init(okto_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->device_index = -1;
    cfg->copy_lanes = -1;
    cfg->subdevices = -1;
    cfg->sched = OKTO_SCHED_HEFT;
    cfg->log = OKTO_LOG_WARN;
    cfg->host_lane = -1;

    const char *e;
    if ((e = getenv("OKTO_DEVICE")) && *e) {
        long v;
        if (strcmp(e, "all") == 0) {
            cfg->ndevices = -1;
        } else if (strchr(e, ',')) {
            if (!parse_list(e, cfg))
                env_fail(cfg, "OKTO_DEVICE", e,
                         "a list of 2 to 8 distinct device indices such as 0,1");
        } else if (all_digits(e)) {
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
    if ((e = getenv("OKTO_INORDER")) && *e) {
        if (strcmp(e, "0") == 0 || strcmp(e, "1") == 0)
            cfg->in_order = e[0] - '0';
        else
            env_fail(cfg, "OKTO_INORDER", e, "0 or 1");
    }
    if ((e = getenv("OKTO_FUSE")) && *e) {
        unsigned m;
        if (!okto__fuse_parse(e, &m))
            env_fail(cfg, "OKTO_FUSE", e, "0, 1, none, all or a comma list of gemm, optim, ew");
    }
    if ((e = getenv("OKTO_ATTENTION")) && *e && strcmp(e, "fused") != 0 &&
        strcmp(e, "matmul") != 0 && strcmp(e, "auto") != 0)
        env_fail(cfg, "OKTO_ATTENTION", e, "fused, matmul or auto (lib/nn's attention blocks)");
    if ((e = getenv("OKTO_HOST_LANE")) && *e) {
        if (strcmp(e, "0") == 0 || strcmp(e, "1") == 0)
            cfg->host_lane = e[0] == '0' ? 0 : -1;
        else
            env_fail(cfg, "OKTO_HOST_LANE", e, "0 or 1");
    }
    if ((e = getenv("OKTO_SCHED")) && *e) {
        okto_sched s;
        if (okto__sched_parse(e, &s) && s != OKTO_SCHED_AUTO)
            cfg->sched = s;
        else
            env_fail(cfg, "OKTO_SCHED", e, okto__sched_names());
    }
    if ((e = getenv("OKTO_LOG")) && *e) {
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strcmp(e, log_names[i]) == 0) {
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

/* ---- lifetime -------------------------------------------------------------------------------- */

static void context_free(okto_context *ctx)
{
    for (int i = 0; i < ctx->ncompute + ctx->ncopy; i++)
        okto__lane_fini(&ctx->lanes[i]);
    okto__lane_fini(&ctx->seq);
    if (ctx->xfer)
        clReleaseCommandQueue(ctx->xfer);
    okto__programs_free(ctx);
    if (ctx->cl)
        clReleaseContext(ctx->cl);
    for (int i = 0; i < ctx->nsub; i++)
        clReleaseDevice(ctx->sub[i]);
    if (ctx->dev.id)
        clReleaseDevice(ctx->dev.id);
    for (int i = 1; i < ctx->ndev; i++)
        clReleaseDevice(ctx->xdev[i - 1].id);
    okto__perf_destroy(ctx->perf);
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

okto_status okto_context_destroy(okto_context *ctx)
{
    okto__context_release(ctx);
    return OKTO_OK;
}

/* Sub-devices for CPU lanes, only when asked for (config.subdevices = 1, OKTO_SUBDEVICES=1):
 * one sub-device per lane gives each lane cores of its own. Measured with okto-bench on the
 * 2-core PoCL machine, lanes sharing the whole device did as well or better everywhere
 * (copy-overlap 1.32x against 1.02x, small-gemm 1.34x against 1.28x): PoCL spreads every
 * queue's work-groups over all cores, while a 1-core sub-device leaves a core idle whenever
 * its sibling lane has nothing to run. */
static void make_subdevices(okto_context *ctx, int lanes)
{
    cl_uint cu = ctx->dev.cus;
    if (!okto__device_is_cpu(&ctx->dev) || lanes < 2 || cu < 2 || ctx->cfg.subdevices != 1)
        return;
    int want = lanes < (int)cu ? lanes : (int)cu;
    cl_device_partition_property props[] = {CL_DEVICE_PARTITION_EQUALLY,
                                            (cl_device_partition_property)(cu / (cl_uint)want), 0};
    cl_uint got = 0;
    cl_device_id subs[256];
    cl_int err = clCreateSubDevices(ctx->dev.id, props, 256, subs, &got);
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
    atomic_init(&ctx->refs, 1);
    atomic_init(&ctx->nkids, 0);
    ctx->ndev = 1;
    pthread_mutex_init(&ctx->post_lock, NULL);
    pthread_mutex_init(&ctx->err_lock, NULL);
    pthread_mutex_init(&ctx->prog_lock, NULL);
    if (cfg->size != sizeof *cfg)
        return okto__fail(NULL, OKTO_EINVAL,
                          "okto_config.size is %zu but this okto's okto_config is %zu bytes: "
                          "initialise it with okto_config_init (and rebuild against this okto)",
                          cfg->size, sizeof *cfg);
    ctx->cfg = *cfg;
    if (!(ctx->perf = okto__perf_create()))
        return okto__fail(NULL, OKTO_ENOMEM, "out of host memory creating a context");
    if (cfg->env_status != OKTO_OK)
        return okto__fail(NULL, cfg->env_status, "%s", cfg->env_error);
    if (cfg->device_index < -1)
        return okto__fail(NULL, OKTO_EINVAL,
                          "config device_index = %d: expected -1 (automatic) "
                          "or a device index",
                          cfg->device_index);
    if (cfg->ndevices < -1 || cfg->ndevices > OKTO_MAX_DEVICES)
        return okto__fail(NULL, OKTO_EINVAL, "config ndevices = %d: expected -1, 0 or 1 to %d",
                          cfg->ndevices, OKTO_MAX_DEVICES);
    for (int i = 0; i < cfg->ndevices; i++)
        if (cfg->devices[i] < 0)
            return okto__fail(NULL, OKTO_EINVAL, "config devices[%d] = %d: expected an index", i,
                              cfg->devices[i]);
    if (cfg->compute_lanes < 0 || cfg->compute_lanes > OKTO_MAX_COMPUTE_LANES)
        return okto__fail(NULL, OKTO_EINVAL, "config compute_lanes = %d: expected 0 to %d",
                          cfg->compute_lanes, OKTO_MAX_COMPUTE_LANES);
    if (cfg->copy_lanes < -1 || cfg->copy_lanes > OKTO_MAX_COPY_LANES)
        return okto__fail(NULL, OKTO_EINVAL, "config copy_lanes = %d: expected -1 to %d",
                          cfg->copy_lanes, OKTO_MAX_COPY_LANES);
    if (cfg->subdevices < -1 || cfg->subdevices > 1)
        return okto__fail(NULL, OKTO_EINVAL, "config subdevices = %d: expected -1, 0 or 1",
                          cfg->subdevices);
    if (cfg->in_order < 0 || cfg->in_order > 1)
        return okto__fail(NULL, OKTO_EINVAL, "config in_order = %d: expected 0 or 1",
                          cfg->in_order);
    if (cfg->host_lane < -1 || cfg->host_lane > 1)
        return okto__fail(NULL, OKTO_EINVAL, "config host_lane = %d: expected -1, 0 or 1",
                          cfg->host_lane);
    if (cfg->sched < OKTO_SCHED_AUTO || cfg->sched >= OKTO_SCHED_COUNT)
        return okto__fail(NULL, OKTO_EINVAL, "config sched = %d is not an okto_sched",
                          (int)cfg->sched);
    if (cfg->log < OKTO_LOG_ERROR || cfg->log > OKTO_LOG_DEBUG)
        return okto__fail(NULL, OKTO_EINVAL,
                          "config log = %d: expected OKTO_LOG_ERROR (0) to "
                          "OKTO_LOG_DEBUG (3)",
                          (int)cfg->log);
    if (!memchr(cfg->device_name, 0, sizeof cfg->device_name) ||
        !memchr(cfg->trace_path, 0, sizeof cfg->trace_path))
        return okto__fail(NULL, OKTO_EINVAL,
                          "config device_name or trace_path is not "
                          "terminated");
    if (ctx->cfg.sched == OKTO_SCHED_AUTO)
        ctx->cfg.sched = OKTO_SCHED_HEFT;
    return OKTO_OK;
}

/* Lanes, the sequential queue and the transfer queue, once ctx->cl and the devices are set.
 * Several devices: compute_lanes and copy_lanes count per device (the first device's automatic
 * rule for all of them), compute lanes grouped by device, copy lanes dealt to the devices in
 * turn; the sequential queue and the transfer queue are the first device's. */
static okto_status context_start(okto_context *ctx)
{
    int dc, dcopy, nd = ctx->ndev;
    okto_device_lanes(ctx->dev.id, &dc, &dcopy);
    int per = ctx->cfg.compute_lanes > 0 ? ctx->cfg.compute_lanes : dc;
    int copies = ctx->cfg.copy_lanes >= 0 ? ctx->cfg.copy_lanes : dcopy;
    if (per * nd > OKTO_MAX_COMPUTE_LANES)
        per = OKTO_MAX_COMPUTE_LANES / nd;
    copies *= nd;
    if (copies > OKTO_MAX_COPY_LANES)
        copies = OKTO_MAX_COPY_LANES;
    int ncomp = per * nd, lanes = ncomp + copies;
    ctx->ncompute = ctx->ncopy = 0; /* counted as they start: context_free stops only those */
    okto_status s;
    for (int i = 0; i < lanes; i++) {
        int copy = i >= ncomp, d = copy ? (i - ncomp) % nd : i / per;
        cl_device_id dev =
            (!copy && ctx->nsub) ? ctx->sub[i % ctx->nsub] : okto__ctx_dev(ctx, d)->id;
        if ((s = okto__lane_init(ctx, &ctx->lanes[i], i, copy, dev, ctx->cfg.in_order)) != OKTO_OK)
            return s;
        ctx->lanes[i].dev = d;
        if (copy)
            ctx->ncopy++;
        else
            ctx->ncompute++;
    }
    ctx->in_order = ctx->ncompute > 0 && ctx->lanes[0].ops->implies_order;
    if ((s = okto__lane_init(ctx, &ctx->seq, -1, 0, ctx->dev.id, 1)) != OKTO_OK)
        return s;
    cl_int err;
    ctx->xfer = clCreateCommandQueue(ctx->cl, ctx->dev.id, 0, &err);
    if (err != CL_SUCCESS) {
        ctx->xfer = NULL;
        return okto__fail_cl(NULL, err, "clCreateCommandQueue", "the transfer queue");
    }
    okto__host_lane_init(ctx);
    okto__log(ctx, OKTO_LOG_INFO,
              "context: %d device%s, %d compute lanes (%s, %d sub-devices), %d copy lanes, "
              "host lane %s",
              nd, nd == 1 ? "" : "s", ctx->ncompute, ctx->in_order ? "in-order" : "out-of-order",
              ctx->nsub, ctx->ncopy, ctx->host_lane ? "on" : "off");
    return OKTO_OK;
}

static void list_devices(const okto__dev_entry *list, int n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s[%d] %s", i ? ", " : "", i, list[i].name);
}

static okto_status pick_device(okto_context *ctx, const okto__dev_entry *list, int n, int *pick)
{
    char avail[2048];
    list_devices(list, n, avail, sizeof avail);
    if (ctx->cfg.device_index >= 0) {
        if (ctx->cfg.device_index >= n)
            return okto__fail(NULL, OKTO_ENODEV,
                              "device index %d (OKTO_DEVICE or config) is out of range: %d "
                              "device%s available: %s",
                              ctx->cfg.device_index, n, n == 1 ? "" : "s", avail);
        *pick = ctx->cfg.device_index;
    } else if (ctx->cfg.device_name[0]) {
        *pick = okto__best_device(list, n, ctx->cfg.device_name);
        if (*pick < 0)
            return okto__fail(NULL, OKTO_ENODEV,
                              "no device name contains \"%s\" (OKTO_DEVICE or config); "
                              "available: %s",
                              ctx->cfg.device_name, avail);
    } else {
        *pick = okto__best_device(list, n, NULL);
    }
    return OKTO_OK;
}

/* The devices of a multi-device config (ndevices != 0) into pick[]: the listed indices, all on
 * one platform, or every device of the platform of the device that pick_device chooses. */
static okto_status pick_devices(okto_context *ctx, const okto__dev_entry *list, int n, int *pick,
                                int *npick)
{
    char avail[2048];
    list_devices(list, n, avail, sizeof avail);
    if (ctx->cfg.ndevices < 0) {
        int first;
        okto_status s = pick_device(ctx, list, n, &first);
        if (s != OKTO_OK)
            return s;
        *npick = 0;
        for (int i = 0; i < n && *npick < OKTO_MAX_DEVICES; i++)
            if (list[i].platform == list[first].platform)
                pick[(*npick)++] = i;
        return OKTO_OK;
    }
    for (int i = 0; i < ctx->cfg.ndevices; i++) {
        int d = ctx->cfg.devices[i];
        if (d >= n)
            return okto__fail(NULL, OKTO_ENODEV,
                              "device index %d (OKTO_DEVICE or config devices[%d]) is out of "
                              "range: %d device%s available: %s",
                              d, i, n, n == 1 ? "" : "s", avail);
        if (list[d].platform != list[ctx->cfg.devices[0]].platform)
            return okto__fail(NULL, OKTO_EINVAL,
                              "devices %d and %d (OKTO_DEVICE or config devices) are on different "
                              "platforms: one context takes the devices of one platform; "
                              "available: %s",
                              ctx->cfg.devices[0], d, avail);
        for (int k = 0; k < i; k++)
            if (pick[k] == d)
                return okto__fail(NULL, OKTO_EINVAL,
                                  "device %d is listed twice (config devices[%d] and [%d])", d, k,
                                  i);
        pick[i] = d;
    }
    *npick = ctx->cfg.ndevices;
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
    okto__dev_entry *list = NULL;
    int n = 0, pick[OKTO_MAX_DEVICES] = {0}, npick = 1;
    if (s == OKTO_OK)
        s = okto__discover(&list, &n);
    if (s == OKTO_OK)
        s = ctx->cfg.ndevices ? pick_devices(ctx, list, n, pick, &npick)
                              : pick_device(ctx, list, n, &pick[0]);
    if (s != OKTO_OK) {
        free(list);
        context_free(ctx);
        return s;
    }
    ctx->platform = list[pick[0]].platform;
    cl_device_id dev = list[pick[0]].device;
    clRetainDevice(dev); /* no-op for root devices; keeps release symmetric */
    okto__device_init(&ctx->dev, dev);
    cl_device_id devs[OKTO_MAX_DEVICES + OKTO_MAX_COMPUTE_LANES];
    devs[0] = dev;
    for (int i = 1; i < npick; i++) {
        devs[i] = list[pick[i]].device;
        clRetainDevice(devs[i]);
        okto__device_init(&ctx->xdev[i - 1], devs[i]);
        ctx->ndev++;
    }
    free(list);

    /* sub-devices split one device among its lanes; several devices are already that */
    int lanes = ctx->cfg.compute_lanes;
    if (lanes == 0)
        okto_device_lanes(dev, &lanes, &(int){0});
    if (npick == 1)
        make_subdevices(ctx, lanes);
    for (int i = 0; i < ctx->nsub; i++)
        devs[npick + i] = ctx->sub[i];
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
    cl_int err;
    ctx->cl = clCreateContext(props, (cl_uint)(npick + ctx->nsub), devs, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        s = okto__fail_cl(NULL, err, "clCreateContext", "device %s%s", ctx->dev.name,
                          npick > 1 ? " and the others listed" : "");
        ctx->cl = NULL;
        context_free(ctx);
        return s;
    }
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
    okto__device_init(&ctx->dev, device);
    if ((s = context_start(ctx)) != OKTO_OK) {
        context_free(ctx);
        return s;
    }
    *out = ctx;
    return OKTO_OK;
}

int okto_context_lane_count(const okto_context *ctx)
{
    return ctx ? ctx->ncompute + ctx->ncopy : 0;
}
int okto_context_compute_lanes(const okto_context *ctx) { return ctx ? ctx->ncompute : 0; }
int okto_context_copy_lanes(const okto_context *ctx) { return ctx ? ctx->ncopy : 0; }
int okto_context_in_order(const okto_context *ctx) { return ctx ? ctx->in_order : 0; }
cl_context okto_context_cl(const okto_context *ctx) { return ctx ? ctx->cl : NULL; }
cl_device_id okto_context_device(const okto_context *ctx) { return ctx ? ctx->dev.id : NULL; }
int okto_context_device_count(const okto_context *ctx) { return ctx ? ctx->ndev : 0; }
cl_device_id okto_context_device_at(const okto_context *ctx, int i)
{
    return ctx && i >= 0 && i < ctx->ndev ? okto__ctx_dev((okto_context *)ctx, i)->id : NULL;
}
int okto_context_lane_device(const okto_context *ctx, int lane)
{
    return ctx && lane >= 0 && lane < ctx->ncompute + ctx->ncopy ? ctx->lanes[lane].dev : -1;
}
okto_sched okto_context_sched(const okto_context *ctx)
{
    return ctx ? ctx->cfg.sched : OKTO_SCHED_AUTO;
}

okto__device *okto__ctx_device(const okto_context *ctx) { return (okto__device *)&ctx->dev; }
int okto__ctx_compute_lanes(const okto_context *ctx) { return ctx->ncompute; }
cl_context okto__ctx_cl(const okto_context *ctx) { return ctx->cl; }
cl_command_queue okto__ctx_xfer_queue(const okto_context *ctx) { return ctx->xfer; }
