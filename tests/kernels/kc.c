/* tests/kernels/kc.c: the kernel checks' OpenCL and comparison helpers (kc.h). */
#include "kc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef OKTO_SRC_DIR
#error "OKTO_SRC_DIR must name the source tree (meson passes it)"
#endif

cl_context kc_ctx;
cl_command_queue kc_q;
static cl_device_id kc_dev;
static const char *kc_name;
static int kc_failures, kc_checks;
static double kc_t0, kc_build_s, kc_launch_s;

#define KC_PROGRAMS 64
static cl_program kc_progs[KC_PROGRAMS];
static int kc_nprogs;
#define KC_KERNELS 256
static cl_kernel kc_kerns[KC_KERNELS];
static int kc_nkerns;

static const char *cl_name(cl_int e)
{
    switch (e) {
    case CL_SUCCESS: return "CL_SUCCESS";
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_PLATFORM: return "CL_INVALID_PLATFORM";
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
    case CL_INVALID_CONTEXT: return "CL_INVALID_CONTEXT";
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_PROGRAM: return "CL_INVALID_PROGRAM";
    case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_KERNEL: return "CL_INVALID_KERNEL";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_EVENT_WAIT_LIST: return "CL_INVALID_EVENT_WAIT_LIST";
    case CL_INVALID_OPERATION: return "CL_INVALID_OPERATION";
    default: return "CL_(other)";
    }
}

static void cl_ok(cl_int e, const char *call, const char *what)
{
    if (e == CL_SUCCESS)
        return;
    fprintf(stderr, "%s: %s failed (%s): %s (%d)\n", kc_name, call, what ? what : "", cl_name(e),
            (int)e);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "%s: out of host memory (%zu bytes)\n", kc_name, n);
        exit(1);
    }
    return p;
}

double kc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const kc_geom *kc_geoms(int dt, int *n)
{
    static const kc_geom f32[] = {{64, 4}, {1, 3}, {256, 2}}, f16[] = {{256, 2}},
                         bf16[] = {{32, 3}};
    *n = dt == KC_F32 ? 3 : 1;
    return dt == KC_F32 ? f32 : dt == KC_F16 ? f16 : bf16;
}

void kc_init(const char *name)
{
    kc_name = name;
    kc_t0 = kc_now();
    cl_uint np = 0;
    cl_platform_id plats[8];
    if (clGetPlatformIDs(8, plats, &np) != CL_SUCCESS || np == 0) {
        printf("%s: no OpenCL platform: skipped\n", name);
        exit(77);
    }
    if (np > 8)
        np = 8;
    for (cl_uint i = 0; i < np && !kc_dev; i++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 1, &kc_dev, &nd) != CL_SUCCESS)
            kc_dev = NULL;
    }
    if (!kc_dev) {
        printf("%s: no OpenCL device: skipped\n", name);
        exit(77);
    }
    char dname[256] = "";
    clGetDeviceInfo(kc_dev, CL_DEVICE_NAME, sizeof dname - 1, dname, NULL);
    printf("%s on %s\n", name, dname);
    cl_int e;
    kc_ctx = clCreateContext(NULL, 1, &kc_dev, NULL, NULL, &e);
    cl_ok(e, "clCreateContext", NULL);
    kc_q = clCreateCommandQueue(kc_ctx, kc_dev, 0, &e);
    cl_ok(e, "clCreateCommandQueue", NULL);
}

int kc_finish(void)
{
    for (int i = 0; i < kc_nkerns; i++)
        clReleaseKernel(kc_kerns[i]);
    for (int i = 0; i < kc_nprogs; i++)
        clReleaseProgram(kc_progs[i]);
    clReleaseCommandQueue(kc_q);
    clReleaseContext(kc_ctx);
    printf("%s: %d checks, %d failed, %.2f s (program builds %.2f s; kernel runs, with the "
           "device's work-group compiles, %.2f s)\n",
           kc_name, kc_checks, kc_failures, kc_now() - kc_t0, kc_build_s, kc_launch_s);
    return kc_failures ? 1 : 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open %s\n", kc_name, path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = xmalloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read %s\n", kc_name, path);
        exit(1);
    }
    s[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return s;
}

cl_program kc_build(const char *file, int dt)
{
    char path[1024];
    size_t l0, l1;
    snprintf(path, sizeof path, "%s/cl/common.h", OKTO_SRC_DIR);
    char *common = read_file(path, &l0);
    if (strchr(file, '/')) /* a path from the source root, e.g. a test-only kernel */
        snprintf(path, sizeof path, "%s/%s", OKTO_SRC_DIR, file);
    else
        snprintf(path, sizeof path, "%s/cl/%s", OKTO_SRC_DIR, file);
    char *src = read_file(path, &l1);
    const char *lines[2] = {common, src};
    cl_int e;
    cl_program p = clCreateProgramWithSource(kc_ctx, 2, lines, NULL, &e);
    cl_ok(e, "clCreateProgramWithSource", file);
    char opts[128];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DOKTO_DT=%d", dt);
    double t0 = kc_now();
    e = clBuildProgram(p, 1, &kc_dev, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        static char log[20000];
        clGetProgramBuildInfo(p, kc_dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fprintf(stderr, "%s: build of %s (%s) failed:\n%s\n", kc_name, file, opts, log);
        exit(1);
    }
    kc_build_s += kc_now() - t0;
    static char log[20000];
    log[0] = 0;
    clGetProgramBuildInfo(p, kc_dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    if (strstr(log, "warning") && getenv("KC_VERBOSE"))
        printf("%s: build of %s (%s) warns:\n%s\n", kc_name, file, opts, log);
    free(common);
    free(src);
    if (kc_nprogs < KC_PROGRAMS)
        kc_progs[kc_nprogs++] = p;
    return p;
}

cl_kernel kc_kernel(cl_program prog, const char *name)
{
    cl_int e;
    cl_kernel k = clCreateKernel(prog, name, &e);
    cl_ok(e, "clCreateKernel", name);
    if (kc_nkerns < KC_KERNELS)
        kc_kerns[kc_nkerns++] = k;
    return k;
}

cl_mem kc_alloc(size_t bytes)
{
    void *z = calloc(1, bytes ? bytes : 4);
    if (!z)
        exit(1);
    cl_mem m = kc_upload(z, bytes ? bytes : 4);
    free(z);
    return m;
}

cl_mem kc_upload(const void *src, size_t bytes)
{
    cl_int e;
    cl_mem m = clCreateBuffer(kc_ctx, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &e);
    cl_ok(e, "clCreateBuffer", NULL);
    if (bytes)
        kc_write(m, src, bytes);
    return m;
}

void kc_write(cl_mem m, const void *src, size_t bytes)
{
    cl_ok(clEnqueueWriteBuffer(kc_q, m, CL_TRUE, 0, bytes, src, 0, NULL, NULL),
          "clEnqueueWriteBuffer", NULL);
}

void kc_read(cl_mem m, void *dst, size_t bytes)
{
    cl_ok(clEnqueueReadBuffer(kc_q, m, CL_TRUE, 0, bytes, dst, 0, NULL, NULL),
          "clEnqueueReadBuffer", NULL);
}

void kc_free(cl_mem m)
{
    if (m)
        clReleaseMemObject(m);
}

void kc_args(cl_kernel k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char name[128] = "";
    clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
    cl_uint nargs = 0;
    clGetKernelInfo(k, CL_KERNEL_NUM_ARGS, sizeof nargs, &nargs, NULL);
    if (nargs != strlen(fmt)) {
        fprintf(stderr, "kc_args: %s takes %u arguments, the format has %zu\n", name, nargs,
                strlen(fmt));
        exit(1);
    }
    for (cl_uint i = 0; fmt[i]; i++) {
        cl_int e;
        switch (fmt[i]) {
        case 'b': {
            cl_mem m = va_arg(ap, cl_mem);
            e = clSetKernelArg(k, i, sizeof m, &m);
            break;
        }
        case 'u': {
            cl_ulong v = va_arg(ap, unsigned long long);
            e = clSetKernelArg(k, i, sizeof v, &v);
            break;
        }
        case 'i': {
            cl_int v = va_arg(ap, int);
            e = clSetKernelArg(k, i, sizeof v, &v);
            break;
        }
        case 'U': {
            cl_uint v = va_arg(ap, unsigned);
            e = clSetKernelArg(k, i, sizeof v, &v);
            break;
        }
        case 'f': {
            cl_float v = (cl_float)va_arg(ap, double);
            e = clSetKernelArg(k, i, sizeof v, &v);
            break;
        }
        default: fprintf(stderr, "kc_args: bad format '%c'\n", fmt[i]); exit(1);
        }
        if (e != CL_SUCCESS) {
            char what[160];
            snprintf(what, sizeof what, "%s arg %u", name, i);
            cl_ok(e, "clSetKernelArg", what);
        }
    }
    va_end(ap);
}

void kc_launch(cl_kernel k, kc_geom g)
{
    size_t global = g.local * g.groups, local = g.local;
    char name[128] = "";
    clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
    double t0 = kc_now();
    cl_ok(clEnqueueNDRangeKernel(kc_q, k, 1, NULL, &global, &local, 0, NULL, NULL),
          "clEnqueueNDRangeKernel", name);
    cl_ok(clFinish(kc_q), "clFinish", name);
    kc_launch_s += kc_now() - t0;
}

static void launch_nd(cl_kernel k, cl_uint dims, const size_t *n, const size_t *l)
{
    size_t global[2], local[2];
    for (cl_uint d = 0; d < dims; d++) {
        local[d] = l[d];
        global[d] = (n[d] + l[d] - 1) / l[d] * l[d] + l[d];
    }
    char name[128] = "";
    clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
    double t0 = kc_now();
    cl_ok(clEnqueueNDRangeKernel(kc_q, k, dims, NULL, global, local, 0, NULL, NULL),
          "clEnqueueNDRangeKernel", name);
    cl_ok(clFinish(kc_q), "clFinish", name);
    kc_launch_s += kc_now() - t0;
}

void kc_launch1(cl_kernel k, size_t nx, size_t lx) { launch_nd(k, 1, &nx, &lx); }

void kc_launch2(cl_kernel k, size_t nx, size_t ny, size_t lx, size_t ly)
{
    size_t n[2] = {nx, ny}, l[2] = {lx, ly};
    launch_nd(k, 2, n, l);
}

const kc_local *kc_locals(int dt, int *n)
{
    static const kc_local f32[] = {{16, 4}, {1, 1}}, f16[] = {{32, 2}}, bf16[] = {{8, 8}};
    *n = dt == KC_F32 ? 2 : 1;
    return dt == KC_F32 ? f32 : dt == KC_F16 ? f16 : bf16;
}

size_t kc_dt_size(int dt) { return dt == KC_F16 || dt == KC_BF16 ? 2 : 4; }

const char *kc_dt_name(int dt)
{
    static const char *n[] = {"f32", "f16", "bf16", "i32"};
    return dt >= 0 && dt < 4 ? n[dt] : "?";
}

static uint32_t f_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t kc_f32_to_f16(float f)
{
    uint32_t x = f_bits(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x47800000u) /* >= 65536 (and inf): inf; [65520, 65536) carries there below */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: a multiple of 2^-24, rounded to nearest even */
        float s = bits_f(a) * 16777216.0f;
        return (uint16_t)(sign | (uint32_t)nearbyintf(s));
    }
    uint32_t h = ((((a >> 23) - 127u + 15u)) << 10) | ((a & 0x7fffffu) >> 13), rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

float kc_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0)
        return (sign ? -1.0f : 1.0f) * (float)m * (1.0f / 16777216.0f);
    if (e == 31)
        return bits_f(sign | 0x7f800000u | (m << 13));
    return bits_f(sign | ((e - 15u + 127u) << 23) | (m << 13));
}

uint16_t kc_f32_to_bf16(float f)
{
    uint32_t u = f_bits(f);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float kc_bf16_to_f32(uint16_t h) { return bits_f((uint32_t)h << 16); }

double kc_round(int dt, double v)
{
    float f = (float)v;
    switch (dt) {
    case KC_F16: return kc_f16_to_f32(kc_f32_to_f16(f));
    case KC_BF16: return kc_bf16_to_f32(kc_f32_to_bf16(f));
    case KC_I32: return (double)(int32_t)f;
    default: return f;
    }
}

void *kc_pack(int dt, const double *src, size_t n)
{
    void *out = xmalloc(n * kc_dt_size(dt));
    for (size_t i = 0; i < n; i++) {
        float f = (float)src[i];
        switch (dt) {
        case KC_F16: ((uint16_t *)out)[i] = kc_f32_to_f16(f); break;
        case KC_BF16: ((uint16_t *)out)[i] = kc_f32_to_bf16(f); break;
        case KC_I32: ((int32_t *)out)[i] = (int32_t)src[i]; break;
        default: ((float *)out)[i] = f;
        }
    }
    return out;
}

void kc_unpack(int dt, const void *src, double *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case KC_F16: dst[i] = kc_f16_to_f32(((const uint16_t *)src)[i]); break;
        case KC_BF16: dst[i] = kc_bf16_to_f32(((const uint16_t *)src)[i]); break;
        case KC_I32: dst[i] = ((const int32_t *)src)[i]; break;
        default: dst[i] = ((const float *)src)[i];
        }
    }
}

cl_mem kc_upload_dt(int dt, const double *src, size_t n)
{
    void *p = kc_pack(dt, src, n);
    cl_mem m = kc_upload(p, n * kc_dt_size(dt));
    free(p);
    return m;
}

void kc_read_dt(int dt, cl_mem m, double *dst, size_t n)
{
    void *p = xmalloc(n * kc_dt_size(dt));
    kc_read(m, p, n * kc_dt_size(dt));
    kc_unpack(dt, p, dst, n);
    free(p);
}

void kc_write_dt(int dt, cl_mem m, const double *src, size_t n)
{
    void *p = kc_pack(dt, src, n);
    kc_write(m, p, n * kc_dt_size(dt));
    free(p);
}

void *kc_bits(cl_mem m, size_t bytes)
{
    void *p = xmalloc(bytes);
    kc_read(m, p, bytes);
    return p;
}

int kc_same_bits(cl_mem m, const void *host, size_t bytes)
{
    void *p = kc_bits(m, bytes);
    int ok = memcmp(p, host, bytes) == 0;
    free(p);
    return ok;
}

static void sentinel(int dt, void *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (kc_dt_size(dt) == 2)
            ((uint16_t *)dst)[i] = 0x7e55u;
        else if (dt == KC_I32)
            ((uint32_t *)dst)[i] = 0x7eadbeefu;
        else
            ((uint32_t *)dst)[i] = 0x7fc0deadu;
    }
}

kc_t kc_t_new(int dt, const double *src, size_t n, size_t off)
{
    size_t ds = kc_dt_size(dt), total = off + n + KC_PAD;
    char *buf = xmalloc(total * ds);
    sentinel(dt, buf, off);
    sentinel(dt, buf + (off + n) * ds, KC_PAD);
    if (src) {
        void *p = kc_pack(dt, src, n);
        memcpy(buf + off * ds, p, n * ds);
        free(p);
    } else {
        memset(buf + off * ds, 0, n * ds);
    }
    kc_t t = {kc_upload(buf, total * ds), off, n, dt};
    free(buf);
    return t;
}

void kc_t_read(const kc_t *t, double *dst)
{
    size_t ds = kc_dt_size(t->dt);
    void *p = xmalloc(t->n * ds);
    if (t->n)
        cl_ok(clEnqueueReadBuffer(kc_q, t->m, CL_TRUE, t->off * ds, t->n * ds, p, 0, NULL, NULL),
              "clEnqueueReadBuffer", NULL);
    kc_unpack(t->dt, p, dst, t->n);
    free(p);
}

void kc_t_write(const kc_t *t, const double *src)
{
    size_t ds = kc_dt_size(t->dt);
    void *p = kc_pack(t->dt, src, t->n);
    if (t->n)
        cl_ok(clEnqueueWriteBuffer(kc_q, t->m, CL_TRUE, t->off * ds, t->n * ds, p, 0, NULL, NULL),
              "clEnqueueWriteBuffer", NULL);
    free(p);
}

void kc_t_write_raw(const kc_t *t, const void *src)
{
    size_t ds = kc_dt_size(t->dt);
    if (t->n)
        cl_ok(clEnqueueWriteBuffer(kc_q, t->m, CL_TRUE, t->off * ds, t->n * ds, src, 0, NULL, NULL),
              "clEnqueueWriteBuffer", NULL);
}

int kc_t_pads_ok(const kc_t *t)
{
    size_t ds = kc_dt_size(t->dt), total = t->off + t->n + KC_PAD;
    char *got = kc_bits(t->m, total * ds), *want = xmalloc((t->off + KC_PAD) * ds);
    sentinel(t->dt, want, t->off + KC_PAD);
    int ok = memcmp(got, want, t->off * ds) == 0 &&
             memcmp(got + (t->off + t->n) * ds, want, KC_PAD * ds) == 0;
    free(got);
    free(want);
    return ok;
}

size_t kc_t_bytes(const kc_t *t) { return (t->off + t->n + KC_PAD) * kc_dt_size(t->dt); }

void kc_t_free(kc_t *t)
{
    kc_free(t->m);
    t->m = NULL;
}

double kc_rel_err(const double *got, const double *want, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / fabs(want[i]);
        if (!(d <= e))
            e = d;
    }
    return e;
}

uint64_t kc_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double kc_unif(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * (double)(kc_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

void kc_fill(double *x, size_t n, uint64_t seed, double lo, double hi, int dt)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++)
        x[i] = kc_round(dt, kc_unif(&s, lo, hi));
}

double *kc_dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "%s: out of host memory\n", kc_name);
        exit(1);
    }
    return p;
}

double kc_err(const double *got, const double *want, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i])) {
            if (isnan(got[i]) != isnan(want[i]))
                return INFINITY;
            continue;
        }
        if (isinf(got[i]) || isinf(want[i])) {
            if (got[i] != want[i])
                return INFINITY;
            continue;
        }
        double a = fabs(want[i]), e = fabs(got[i] - want[i]) / (a > 1 ? a : 1);
        if (e > m)
            m = e;
    }
    return m;
}

void kc_stat_add(kc_stat *s, double err, const char *fmt, ...)
{
    if (!(err <= s->err) || !s->at[0]) { /* NaN or larger: keep this one */
        if (s->at[0] && isnan(s->err))
            return;
        s->err = err;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->at, sizeof s->at, fmt, ap);
        va_end(ap);
    }
}

int kc_stat_check(const char *what, int dt, const kc_stat *s, double tol)
{
    int ok = kc_check(what, dt, s->err, tol);
    if (!ok || getenv("KC_VERBOSE"))
        printf("      worst at %s\n", s->at);
    return ok;
}

int kc_check(const char *what, int dt, double err, double tol)
{
    int ok = err <= tol; /* NaN fails */
    kc_checks++;
    if (!ok)
        kc_failures++;
    printf("  %-44s %-5s err %.3e  tol %.1e  %s\n", what, dt >= 0 ? kc_dt_name(dt) : "", err, tol,
           ok ? "ok" : "FAIL");
    return ok;
}

int kc_expect(const char *what, int dt, int ok, const char *detail)
{
    kc_checks++;
    if (!ok)
        kc_failures++;
    printf("  %-44s %-5s %s%s%s\n", what, dt >= 0 ? kc_dt_name(dt) : "", ok ? "ok" : "FAIL",
           detail ? "  " : "", detail ? detail : "");
    return ok;
}
