/* lib/device.c: per-device state and the programs built for a context: device discovery (once
 * per process at a time), the device's limits, the program cache (one program per cl/ file and
 * build options, or per generated source) and the kernel ids the lanes cache kernels by.
 *
 * Launch geometry. PoCL 3.1 (Debian 12) keeps compiled work-group functions in a cache looked up
 * by (kernel, local size, grid width <= the entry's) but released by (kernel, local size) only.
 * A launch wider than any before adds a second entry for the same kernel and local size, after
 * which two such commands in flight at once can release each other's entry and PoCL aborts
 * ("pocl_release_dlhandle_cache: Assertion found->ref_count > 0"); seen here with 3 lanes, whose
 * row parts differ in size and run concurrently. (Later PoCL releases the entry the command
 * took.) So on CPUs okto never launches one kernel with one local size at two grid widths: every
 * kernel loops over its work (cl/common.h, OKTO_FOR), and okto__grid_1d gives each local size one
 * fixed grid. GPUs have no such cache: there the grid follows the work. */
#include "ctx.h"
#include "op.h"

#include "cl_sources.h"

#include <clblast_c.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int okto__device_is_cpu(const okto__device *d) { return (d->type & CL_DEVICE_TYPE_CPU) != 0; }

void okto__device_init(okto__device *d, cl_device_id id)
{
    memset(d, 0, sizeof *d);
    d->id = id;
    /* An unknown allocation limit is none: clCreateBuffer then says what the device refuses.
     * (A default of 0 refused every tensor with "the device allows at most 0 bytes", found by
     * the fault sweep, tests/fault, failing this query.) */
    cl_ulong max_alloc = SIZE_MAX, local = 32768;
    size_t wg = 256, items[3] = {256, 256, 256};
    cl_uint cu = 1, mhz = 1000;
    cl_bool unified = CL_FALSE;
    cl_command_queue_properties qp = 0;
    OKTO__DEVICE_INFO(id, CL_DEVICE_TYPE, d->type);
    okto__device_info(id, CL_DEVICE_NAME, "CL_DEVICE_NAME", sizeof d->name - 1, d->name);
    okto__device_info(id, CL_DEVICE_VENDOR, "CL_DEVICE_VENDOR", sizeof d->vendor - 1, d->vendor);
    OKTO__DEVICE_INFO(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, max_alloc);
    OKTO__DEVICE_INFO(id, CL_DEVICE_LOCAL_MEM_SIZE, local);
    OKTO__DEVICE_INFO(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, wg);
    OKTO__DEVICE_INFO(id, CL_DEVICE_MAX_WORK_ITEM_SIZES, items);
    OKTO__DEVICE_INFO(id, CL_DEVICE_MAX_COMPUTE_UNITS, cu);
    OKTO__DEVICE_INFO(id, CL_DEVICE_MAX_CLOCK_FREQUENCY, mhz);
    OKTO__DEVICE_INFO(id, CL_DEVICE_HOST_UNIFIED_MEMORY, unified);
    OKTO__DEVICE_INFO(id, CL_DEVICE_QUEUE_PROPERTIES, qp);
    char ext[8192] = "";
    okto__device_info(id, CL_DEVICE_EXTENSIONS, "CL_DEVICE_EXTENSIONS", sizeof ext - 1, ext);
    d->cus = cu ? cu : 1;
    d->mhz = mhz ? mhz : 1000;
    d->max_alloc = (size_t)max_alloc;
    d->local_mem = (size_t)local;
    d->max_wg = wg ? wg : 1;
    memcpy(d->max_items, items, sizeof items);
    d->ooo = (qp & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    d->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    d->unified = unified == CL_TRUE;
    /* CPUs: 4 groups per core balance the cores; GPUs need many more in flight per unit */
    int gpu = (d->type & CL_DEVICE_TYPE_GPU) != 0;
    d->grid_groups = (size_t)d->cus * (gpu ? 16 : 4);
    if (d->grid_groups < 8)
        d->grid_groups = 8;
    /* First guesses only; the perf model replaces them with measured durations. CPUs through
     * PoCL reach a few flops per cycle per core in practice; GPUs far more. */
    d->gflops_est = (double)d->cus * (double)d->mhz * 1e-3 * (gpu ? 64.0 : 8.0);
    d->gbps_est = gpu ? 300.0 : 10.0;
    atomic_init(&d->clblast_warm, 0);
    atomic_init(&d->clblast_tuned, 0);
}

/* CPU: a ladder of grid widths, the first >= the work, each with a local size of its own
 * (64 + 16 c items for width class c, at least 2^(c+6) items): a kernel and local size always
 * come with one width, and a launch pays at most 2x idle items, which exit at once. */
static void ladder(size_t n, size_t *width, size_t *local)
{
    size_t c = 0;
    while (((size_t)64 << c) < n)
        c++;
    size_t l = 64 + 16 * c, want = (size_t)64 << c;
    *local = l;
    *width = (want + l - 1) / l * l;
}

void okto__grid_1d(const okto__device *d, size_t n, size_t *global, size_t *local)
{
    if (!okto__device_is_cpu(d)) {
        *local = OKTO__WG;
        *global = (n + OKTO__WG - 1) / OKTO__WG * OKTO__WG;
        return;
    }
    ladder(n ? n : 1, global, local);
}

void okto__grid_nd(const okto__device *d, unsigned dims, const size_t *want, size_t *global,
                   size_t *local)
{
    size_t l0 = 1;
    while (l0 < want[0] && l0 < 64)
        l0 <<= 1;
    /* local[] and global[] have dims entries: callers size them so (AddressSanitizer found
     * local[2] written past a 2-entry array of ew_record, lib/ops/elementwise.c) */
    if (!okto__device_is_cpu(d)) {
        local[0] = l0;
        if (dims > 1)
            local[1] = l0 >= 64 ? 1 : 64 / l0;
        if (dims > 2)
            local[2] = 1;
        for (unsigned i = 0; i < dims; i++)
            global[i] = (want[i] + local[i] - 1) / local[i] * local[i];
        return;
    }
    /* The widest dimension gets its class's width w; the class shows in local[1] (1 + c rows
     * a group), so a local size always comes with one widest dimension. w is a multiple of the
     * local sizes, so every other dimension, rounded up to its local size, stays within it. */
    size_t natural[3] = {(want[0] + l0 - 1) / l0 * l0, dims > 1 ? want[1] : 1,
                         dims > 2 ? want[2] : 1};
    unsigned widest = 0;
    for (unsigned i = 1; i < dims; i++)
        if (natural[i] > natural[widest])
            widest = i;
    size_t c = 0;
    while (((size_t)64 << c) < natural[widest])
        c++;
    size_t l1 = dims > 1 ? 1 + c : 1, m = l0 * l1, w = (((size_t)64 << c) + m - 1) / m * m;
    local[0] = dims > 1 ? l0 : 64 + 16 * c; /* 1-D: the plain ladder (okto__grid_1d) */
    if (dims > 1)
        local[1] = l1;
    if (dims > 2)
        local[2] = 1;
    if (dims == 1) {
        okto__grid_1d(d, want[0], &global[0], &local[0]);
        return;
    }
    for (unsigned i = 0; i < dims; i++)
        global[i] = i == widest ? w : (natural[i] + local[i] - 1) / local[i] * local[i];
}

/* ---- discovery ------------------------------------------------------------------------------- */

/* PoCL's lazy platform initialisation is not thread-safe (two threads creating their first
 * contexts at once crashed in clGetDeviceInfo or saw no device), so every walk of the platforms
 * and devices holds this lock. */
static pthread_mutex_t discover_lock = PTHREAD_MUTEX_INITIALIZER;

static int type_rank(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return 3;
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return 2;
    if (t & CL_DEVICE_TYPE_CPU)
        return 1;
    return 0;
}

static const char no_platform_hint[] =
    "no OpenCL platform found: install an OpenCL driver (ICD), for example "
    "`apt-get install pocl-opencl-icd` for CPUs, and check /etc/OpenCL/vendors "
    "(or OCL_ICD_VENDORS)";

static okto_status discover_locked(okto__dev_entry **out, int *count)
{
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && np == 0))
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
    okto__dev_entry *list = NULL;
    int n = 0;
    /* A platform whose devices cannot be listed is skipped, but when that leaves no device at
     * all, its error is the reason, not "no device" (the fault sweep, tests/fault, found a
     * failed clGetDeviceIDs reported as OKTO_ENODEV without naming it). */
    cl_int list_err = CL_SUCCESS;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        cl_int derr = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (derr != CL_SUCCESS && derr != CL_DEVICE_NOT_FOUND && list_err == CL_SUCCESS)
            list_err = derr;
        if (derr != CL_SUCCESS || !nd)
            continue;
        cl_device_id *devs = calloc(nd, sizeof *devs);
        okto__dev_entry *grown = realloc(list, (size_t)(n + (int)nd) * sizeof *list);
        if (!devs || !grown) {
            free(devs);
            free(grown ? grown : list);
            free(plats);
            return okto__fail(NULL, OKTO_ENOMEM, "out of host memory listing devices");
        }
        list = grown;
        if ((err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL)) != CL_SUCCESS) {
            free(devs);
            free(list);
            free(plats);
            return okto__fail_cl(NULL, err, "clGetDeviceIDs", "platform %u", p);
        }
        for (cl_uint d = 0; d < nd; d++) {
            okto__dev_entry *e = &list[n++];
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
        if (list_err != CL_SUCCESS)
            return okto__fail_cl(NULL, list_err, "clGetDeviceIDs",
                                 "listing the devices of %u platform%s", np, np == 1 ? "" : "s");
        return okto__fail(NULL, OKTO_ENODEV, "OpenCL platforms found but no device: %s",
                          no_platform_hint);
    }
    *out = list;
    *count = n;
    return OKTO_OK;
}

okto_status okto__discover(okto__dev_entry **out, int *count)
{
    *out = NULL;
    *count = 0;
    pthread_mutex_lock(&discover_lock);
    okto_status s = discover_locked(out, count);
    pthread_mutex_unlock(&discover_lock);
    return s;
}

/* GPU before accelerator before CPU, then the largest compute units x clock. */
static int better(const okto__dev_entry *a, const okto__dev_entry *b)
{
    int ra = type_rank(a->type), rb = type_rank(b->type);
    if (ra != rb)
        return ra > rb;
    return a->score > b->score;
}

int okto__best_device(const okto__dev_entry *list, int n, const char *substr)
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

okto_status okto_devices(okto_device_info **out, int *count)
{
    if (!out || !count)
        return okto__fail(NULL, OKTO_EINVAL, "okto_devices: out and count must not be NULL");
    *out = NULL;
    *count = 0;
    okto__dev_entry *list;
    int n;
    okto_status s = okto__discover(&list, &n);
    if (s != OKTO_OK)
        return s;
    okto_device_info *info = calloc((size_t)n, sizeof *info);
    if (!info) {
        free(list);
        return okto__fail(NULL, OKTO_ENOMEM, "out of host memory listing devices");
    }
    int def = okto__best_device(list, n, NULL);
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

/* ---- programs -------------------------------------------------------------------------------- */

static const okto__cl_file *cl_file(const char *name)
{
    for (unsigned i = 0; i < okto__cl_nfiles; i++)
        if (strcmp(okto__cl_files[i].name, name) == 0)
            return &okto__cl_files[i];
    return NULL;
}

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The build log is queried by size and kept up to the message's room: a fixed buffer once made
 * the query itself fail, leaving "build log:" and nothing. */
static void build_log(cl_program prog, cl_device_id dev, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) != CL_SUCCESS ||
        len == 0)
        return;
    char *all = malloc(len + 1);
    if (!all)
        return;
    if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, len, all, NULL) == CL_SUCCESS) {
        all[len] = 0;
        snprintf(buf, cap, "%s%s", all, len >= cap ? "\n[... build log truncated]" : "");
    }
    free(all);
}

static okto_status build_lines(okto_context *ctx, const char *const *lines, cl_uint nlines,
                               const char *options, const char *what, cl_program *out)
{
    cl_int err;
    *out = NULL;
    cl_program prog = clCreateProgramWithSource(ctx->cl, nlines, (const char **)lines, NULL, &err);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, "clCreateProgramWithSource", "%s", what);
    char opts[1024];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DOKTO_WG=%d %s", OKTO__WG, options ? options : "");
    /* all devices of the context: the lanes' sub-devices too */
    err = clBuildProgram(prog, 0, NULL, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[OKTO__ERR_MAX - 512];
        build_log(prog, ctx->dev.id, log, sizeof log);
        clReleaseProgram(prog);
        return okto__fail(ctx, err == CL_BUILD_PROGRAM_FAILURE ? OKTO_EBUILD : okto__cl_status(err),
                          "clBuildProgram failed for %s: %s (%d); build log:\n%s", what,
                          okto__cl_name(err), (int)err, log);
    }
    *out = prog;
    return OKTO_OK;
}

okto_status okto__build(okto_context *ctx, const char *source, const char *options,
                        const char *what, cl_program *out)
{
    return build_lines(ctx, &source, 1, options, what, out);
}

/* Programs of cl/ files and generated sources alike get cl/common.h in front. */
static okto_status build_key(okto_context *ctx, const okto__progkey *key, cl_program *out)
{
    char what[160];
    const okto__cl_file *f = key->file ? cl_file(key->file) : NULL, *common = cl_file("common");
    if ((key->file && !f) || !common)
        return okto__fail(ctx, OKTO_EINVAL, "no embedded program cl/%s.cl",
                          key->file ? key->file : "common.h");
    unsigned n = common->nlines + (f ? f->nlines : 1);
    const char **lines = malloc(n * sizeof *lines);
    if (!lines)
        return okto__fail(ctx, OKTO_ENOMEM, "out of host memory building a program");
    memcpy(lines, common->lines, common->nlines * sizeof *lines);
    if (f)
        memcpy(lines + common->nlines, f->lines, f->nlines * sizeof *lines);
    else
        lines[common->nlines] = key->source;
    if (f)
        snprintf(what, sizeof what, "cl/%s.cl (%s)", key->file, key->options ? key->options : "");
    else
        snprintf(what, sizeof what, "a generated kernel");
    okto_status s = build_lines(ctx, lines, n, key->options, what, out);
    free(lines);
    return s;
}

static okto_status program(okto_context *ctx, const okto__progkey *key, cl_program *out)
{
    /* the cache key: "file|options" or the whole generated source */
    char buf[512];
    const char *k = key->source;
    if (key->file) {
        snprintf(buf, sizeof buf, "%s|%s", key->file, key->options ? key->options : "");
        k = buf;
    } else if (key->options) {
        return okto__fail(ctx, OKTO_EINVAL, "generated sources take no build options");
    }
    uint64_t h = fnv(k, 1469598103934665603ull);
    okto_status s = OKTO_OK;
    pthread_mutex_lock(&ctx->prog_lock);
    if ((ctx->nprogs + 1) * 2 > ctx->progcap) {
        size_t cap = ctx->progcap ? ctx->progcap * 2 : 64;
        okto__progentry *p = calloc(cap, sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&ctx->prog_lock);
            return okto__fail(ctx, OKTO_ENOMEM, "out of host memory caching programs");
        }
        for (size_t i = 0; i < ctx->progcap; i++)
            if (ctx->progs[i].key) {
                size_t j = ctx->progs[i].hash & (cap - 1);
                while (p[j].key)
                    j = (j + 1) & (cap - 1);
                p[j] = ctx->progs[i];
            }
        free(ctx->progs);
        ctx->progs = p;
        ctx->progcap = cap;
    }
    size_t j = h & (ctx->progcap - 1);
    while (ctx->progs[j].key && (ctx->progs[j].hash != h || strcmp(ctx->progs[j].key, k) != 0))
        j = (j + 1) & (ctx->progcap - 1);
    if (!ctx->progs[j].key) {
        /* built under the lock: two graphs recording the same op at once build it once */
        cl_program prog;
        char *dup = strdup(k);
        if (!dup)
            s = okto__fail(ctx, OKTO_ENOMEM, "out of host memory caching programs");
        else if ((s = build_key(ctx, key, &prog)) != OKTO_OK)
            free(dup);
        if (s == OKTO_OK) {
            ctx->progs[j] = (okto__progentry){h, dup, prog};
            ctx->nprogs++;
        }
    }
    *out = s == OKTO_OK ? ctx->progs[j].prog : NULL;
    pthread_mutex_unlock(&ctx->prog_lock);
    return s;
}

void okto__programs_free(okto_context *ctx)
{
    for (size_t i = 0; i < ctx->progcap; i++)
        if (ctx->progs[i].key) {
            clReleaseProgram(ctx->progs[i].prog);
            free(ctx->progs[i].key);
        }
    free(ctx->progs);
    unsigned n = atomic_load(&ctx->nkids);
    for (unsigned i = 0; i < n; i++)
        clReleaseProgram(ctx->kchunks[i / OKTO__KID_CHUNK][i % OKTO__KID_CHUNK].prog);
    for (int c = 0; c < OKTO__KID_CHUNKS; c++)
        free(ctx->kchunks[c]);
    free(ctx->memo);
}

/* ---- kernel ids ------------------------------------------------------------------------------ */

okto_status okto__kernel_id_of(okto_context *ctx, cl_program prog, const char *name, okto__kid *out)
{
    if (strlen(name) >= sizeof ctx->kchunks[0][0].name)
        return okto__fail(ctx, OKTO_EINVAL, "kernel name \"%.80s...\" is too long", name);
    pthread_mutex_lock(&ctx->prog_lock);
    unsigned n = atomic_load(&ctx->nkids);
    /* newest first: an op records the kernel it used last far more often than any other */
    for (unsigned i = n; i-- > 0;) {
        const okto__kentry *e = &ctx->kchunks[i / OKTO__KID_CHUNK][i % OKTO__KID_CHUNK];
        if (e->prog == prog && strcmp(e->name, name) == 0) {
            pthread_mutex_unlock(&ctx->prog_lock);
            *out = i;
            return OKTO_OK;
        }
    }
    unsigned c = n / OKTO__KID_CHUNK;
    if (c >= OKTO__KID_CHUNKS) {
        pthread_mutex_unlock(&ctx->prog_lock);
        return okto__fail(ctx, OKTO_ENOMEM, "more than %d kernels in one context",
                          OKTO__KID_CHUNK * OKTO__KID_CHUNKS);
    }
    if (!ctx->kchunks[c] && !(ctx->kchunks[c] = calloc(OKTO__KID_CHUNK, sizeof(okto__kentry)))) {
        pthread_mutex_unlock(&ctx->prog_lock);
        return okto__fail(ctx, OKTO_ENOMEM, "out of host memory registering kernel %s", name);
    }
    okto__kentry *e = &ctx->kchunks[c][n % OKTO__KID_CHUNK];
    clRetainProgram(prog);
    e->prog = prog;
    snprintf(e->name, sizeof e->name, "%s", name);
    atomic_store(&ctx->nkids, n + 1); /* published after the entry is written */
    pthread_mutex_unlock(&ctx->prog_lock);
    *out = n;
    return OKTO_OK;
}

okto_status okto__kernel_id(okto_context *ctx, const okto__progkey *key, const char *name,
                            okto__kid *out)
{
    cl_program prog;
    okto_status s = program(ctx, key, &prog);
    return s != OKTO_OK ? s : okto__kernel_id_of(ctx, prog, name, out);
}

int okto__kid_memo_get(okto_context *ctx, uint64_t key, okto__kid *out)
{
    int found = 0;
    key = key ? key : 1;
    pthread_mutex_lock(&ctx->prog_lock);
    if (ctx->memocap) {
        size_t j = key & (ctx->memocap - 1);
        while (ctx->memo[j].key && ctx->memo[j].key != key)
            j = (j + 1) & (ctx->memocap - 1);
        if (ctx->memo[j].key == key) {
            *out = ctx->memo[j].kid;
            found = 1;
        }
    }
    pthread_mutex_unlock(&ctx->prog_lock);
    return found;
}

void okto__kid_memo_put(okto_context *ctx, uint64_t key, okto__kid kid)
{
    key = key ? key : 1;
    pthread_mutex_lock(&ctx->prog_lock);
    if ((ctx->nmemo + 1) * 2 > ctx->memocap) {
        size_t cap = ctx->memocap ? 2 * ctx->memocap : 64;
        __typeof__(ctx->memo) m = calloc(cap, sizeof *m);
        if (!m) { /* a memo that cannot grow just stays as it is */
            pthread_mutex_unlock(&ctx->prog_lock);
            return;
        }
        for (size_t i = 0; i < ctx->memocap; i++)
            if (ctx->memo[i].key) {
                size_t j = ctx->memo[i].key & (cap - 1);
                while (m[j].key)
                    j = (j + 1) & (cap - 1);
                m[j] = ctx->memo[i];
            }
        free(ctx->memo);
        ctx->memo = m;
        ctx->memocap = cap;
    }
    size_t j = key & (ctx->memocap - 1);
    while (ctx->memo[j].key && ctx->memo[j].key != key)
        j = (j + 1) & (ctx->memocap - 1);
    if (!ctx->memo[j].key)
        ctx->nmemo++;
    ctx->memo[j].key = key;
    ctx->memo[j].kid = kid;
    pthread_mutex_unlock(&ctx->prog_lock);
}

void okto__kernel_lookup(okto_context *ctx, okto__kid kid, cl_program *prog, const char **name)
{
    const okto__kentry *e = &ctx->kchunks[kid / OKTO__KID_CHUNK][kid % OKTO__KID_CHUNK];
    *prog = e->prog;
    *name = e->name;
}

/* ---- CLBlast ------------------------------------------------------------------------------------ */

static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;

/* The warm bits of the queue's device: the context's device, or one of its sub-devices. */
static atomic_uint *warm_bits(okto_context *ctx, cl_command_queue q)
{
    cl_device_id dev = NULL;
    clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof dev, &dev, NULL);
    for (int i = 0; i < ctx->nsub; i++)
        if (ctx->sub[i] == dev)
            return &ctx->sub_warm[i];
    for (int i = 1; i < ctx->ndev; i++)
        if (ctx->xdev[i - 1].id == dev)
            return &ctx->xdev[i - 1].clblast_warm;
    return &ctx->dev.clblast_warm;
}

int okto__clblast_begin(okto_context *ctx, cl_command_queue q, int routine)
{
    if (atomic_load(warm_bits(ctx, q)) & (1u << routine))
        return 0;
    pthread_mutex_lock(&clblast_lock);
    return 1;
}

void okto__clblast_end(okto_context *ctx, cl_command_queue q, int routine, int took, int ok)
{
    if (!took)
        return;
    if (ok)
        atomic_fetch_or(warm_bits(ctx, q), 1u << routine);
    pthread_mutex_unlock(&clblast_lock);
}

/* CLBlast picks its "direct" GEMM kernel below XGEMM_MIN_INDIRECT_SIZE (per device, from its
 * tuning database; PoCL CPUs get the defaults). On PoCL the direct kernel is the slower one:
 * 512x1024x1024 took 90 ms direct against 62 ms indirect, and 512-cubed 11.6 ms against 7.8 ms
 * as two panels. So for CPU devices okto lowers the threshold to 128-cubed, once per device,
 * before its first CLBlast call; smaller products use okto's own kernel or stay direct. */
void okto__clblast_tune(okto_context *ctx)
{
    if (atomic_load(&ctx->dev.clblast_tuned))
        return;
    pthread_mutex_lock(&ctx->prog_lock);
    if (!atomic_load(&ctx->dev.clblast_tuned) && okto__device_is_cpu(&ctx->dev)) {
        const char *names[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
        const size_t values[1] = {128};
        for (int i = -ctx->ndev; i < ctx->nsub; i++) {
            CLBlastStatusCode st =
                CLBlastOverrideParameters(i < 0 ? okto__ctx_dev(ctx, -1 - i)->id : ctx->sub[i],
                                          "GemmRoutine", CLBlastPrecisionSingle, 1, names, values);
            if (st != CLBlastSuccess)
                okto__log(ctx, OKTO_LOG_INFO, "CLBlast GEMM tuning override refused: %s",
                          okto__cl_name(st));
        }
    }
    atomic_store(&ctx->dev.clblast_tuned, 1);
    pthread_mutex_unlock(&ctx->prog_lock);
}

okto_status okto__kernel_wg_size(okto_context *ctx, okto__kid kid, size_t *out)
{
    cl_program prog;
    const char *name;
    cl_int err;
    okto__kernel_lookup(ctx, kid, &prog, &name);
    cl_kernel k = clCreateKernel(prog, name, &err);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, "clCreateKernel", "kernel %s", name);
    /* the smallest over the context's devices: a task may run on any of them */
    *out = 0;
    for (int i = 0; i < ctx->ndev && err == CL_SUCCESS; i++) {
        size_t wg = 0;
        err = clGetKernelWorkGroupInfo(k, okto__ctx_dev(ctx, i)->id, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof wg, &wg, NULL);
        if (err == CL_SUCCESS && (i == 0 || wg < *out))
            *out = wg;
    }
    clReleaseKernel(k);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, "clGetKernelWorkGroupInfo", "kernel %s", name);
    return OKTO_OK;
}
