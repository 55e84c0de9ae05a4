/* tests/kernels/kcheck.c: see kcheck.h. */
#include "kcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef OKTO_SRC_DIR
#error "meson passes -DOKTO_SRC_DIR=<source root>"
#endif

static int failures;

void *kc_alloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

const char *kc_cl_name(cl_int err)
{
    switch (err) {
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
        /* clang-format off */
#define C(x) case x: return #x;
        C(CL_SUCCESS) C(CL_DEVICE_NOT_FOUND) C(CL_DEVICE_NOT_AVAILABLE)
        C(CL_COMPILER_NOT_AVAILABLE) C(CL_MEM_OBJECT_ALLOCATION_FAILURE) C(CL_OUT_OF_RESOURCES)
        C(CL_OUT_OF_HOST_MEMORY) C(CL_BUILD_PROGRAM_FAILURE) C(CL_INVALID_VALUE)
        C(CL_INVALID_DEVICE) C(CL_INVALID_CONTEXT) C(CL_INVALID_COMMAND_QUEUE)
        C(CL_INVALID_MEM_OBJECT) C(CL_INVALID_BUILD_OPTIONS) C(CL_INVALID_PROGRAM)
        C(CL_INVALID_PROGRAM_EXECUTABLE) C(CL_INVALID_KERNEL_NAME) C(CL_INVALID_KERNEL)
        C(CL_INVALID_ARG_INDEX) C(CL_INVALID_ARG_VALUE) C(CL_INVALID_ARG_SIZE)
        C(CL_INVALID_KERNEL_ARGS) C(CL_INVALID_WORK_DIMENSION) C(CL_INVALID_WORK_GROUP_SIZE)
        C(CL_INVALID_WORK_ITEM_SIZE) C(CL_INVALID_GLOBAL_OFFSET) C(CL_INVALID_BUFFER_SIZE)
        C(CL_INVALID_GLOBAL_WORK_SIZE) C(CL_INVALID_OPERATION)
#undef C
        /* clang-format on */
    }
    return "CL_UNKNOWN_ERROR";
}

void kc_cl(cl_int err, const char *call)
{
    if (err == CL_SUCCESS)
        return;
    fprintf(stderr, "%s failed: %s (%d)\n", call, kc_cl_name(err), (int)err);
    exit(1);
}

void kc_init(kc_env *env)
{
    memset(env, 0, sizeof *env);
    cl_platform_id plats[8];
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(8, plats, &np);
    if (err == -1001 || np == 0) {
        fprintf(stderr, "skipped: no OpenCL platform\n");
        exit(77);
    }
    kc_cl(err, "clGetPlatformIDs");
    for (cl_uint i = 0; i < np && !env->dev; i++)
        if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 1, &env->dev, NULL) != CL_SUCCESS)
            env->dev = NULL;
    if (!env->dev) {
        fprintf(stderr, "skipped: no OpenCL device\n");
        exit(77);
    }
    env->ctx = clCreateContext(NULL, 1, &env->dev, NULL, NULL, &err);
    kc_cl(err, "clCreateContext");
    env->queue = clCreateCommandQueue(env->ctx, env->dev, 0, &err);
    kc_cl(err, "clCreateCommandQueue");
    kc_cl(clGetDeviceInfo(env->dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof env->units, &env->units,
                          NULL),
          "clGetDeviceInfo(CL_DEVICE_MAX_COMPUTE_UNITS)");
    char name[256] = "";
    clGetDeviceInfo(env->dev, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
    printf("device: %s, %u compute units\n", name, (unsigned)env->units);
}

void kc_free(kc_env *env)
{
    if (env->queue)
        clReleaseCommandQueue(env->queue);
    if (env->ctx)
        clReleaseContext(env->ctx);
    memset(env, 0, sizeof *env);
}

const char *kc_dt_name(int dt)
{
    switch (dt) {
    case KC_F32: return "f32";
    case KC_F16: return "f16";
    case KC_BF16: return "bf16";
    case KC_F64: return "f64";
    }
    return "?";
}

size_t kc_dt_size(int dt) { return dt == KC_F32 ? 4 : 2; }

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE binary16, round to nearest even (what vstore_half_rte does) */
static uint16_t f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u, ex = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (ex == 0xff)
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0u));
    int e = (int)ex - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal half (or zero) */
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry into the exponent is right, up to infinity */
    return (uint16_t)(sign | h);
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (ex == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (ex == 0) {
        float v = (float)man * (1.0f / 16777216.0f); /* man * 2^-24 */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((ex + 112u) << 23) | (man << 13));
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

double kc_round(int dt, double v)
{
    float f = (float)v;
    switch (dt) {
    case KC_F16: return f16_to_f32(f32_to_f16(f));
    case KC_BF16: return bf16_to_f32(f32_to_bf16(f));
    }
    return f;
}

void kc_round_all(int dt, double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = kc_round(dt, x[i]);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = kc_alloc((size_t)len + 1);
    if (fread(s, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    return s;
}

static cl_program build(kc_env *env, const char *what, const char *body, int dt, const char *extra)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/cl/common.h", OKTO_SRC_DIR);
    char *common = read_file(path);
    const char *src[2] = {common, body};
    cl_int err;
    cl_program prog = clCreateProgramWithSource(env->ctx, 2, src, NULL, &err);
    kc_cl(err, "clCreateProgramWithSource");
    char opts[512];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DOKTO_DT=%d %s", dt, extra ? extra : "");
    err = clBuildProgram(prog, 1, &env->dev, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        static char log[20000];
        log[0] = 0;
        clGetProgramBuildInfo(prog, env->dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fprintf(stderr, "clBuildProgram(%s, %s) failed: %s\n%s\n", what, opts, kc_cl_name(err),
                log);
        exit(1);
    }
    free(common);
    return prog;
}

cl_program kc_build(kc_env *env, const char *file, int dt, const char *extra)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/cl/%s", OKTO_SRC_DIR, file);
    char *body = read_file(path);
    cl_program prog = build(env, file, body, dt, extra);
    free(body);
    return prog;
}

cl_program kc_build_src(kc_env *env, const char *what, const char *src, int dt, const char *extra)
{
    return build(env, what, src, dt, extra);
}

cl_kernel kc_kernel(cl_program prog, const char *name)
{
    cl_int err;
    cl_kernel k = clCreateKernel(prog, name, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clCreateKernel(%s) failed: %s\n", name, kc_cl_name(err));
        exit(1);
    }
    return k;
}

cl_mem kc_buf(kc_env *env, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(env->ctx, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &err);
    kc_cl(err, "clCreateBuffer");
    return m;
}

void kc_write(kc_env *env, cl_mem m, int dt, const double *x, size_t n)
{
    size_t es = kc_dt_size(dt);
    unsigned char *h = kc_alloc(n * es);
    for (size_t i = 0; i < n; i++) {
        float f = (float)x[i];
        if (dt == KC_F32) {
            memcpy(h + 4 * i, &f, 4);
        } else {
            uint16_t b = dt == KC_F16 ? f32_to_f16(f) : f32_to_bf16(f);
            memcpy(h + 2 * i, &b, 2);
        }
    }
    if (n)
        kc_cl(clEnqueueWriteBuffer(env->queue, m, CL_TRUE, 0, n * es, h, 0, NULL, NULL),
              "clEnqueueWriteBuffer");
    free(h);
}

cl_mem kc_upload(kc_env *env, int dt, const double *x, size_t n)
{
    cl_mem m = kc_buf(env, n * kc_dt_size(dt));
    kc_write(env, m, dt, x, n);
    return m;
}

void kc_read_bytes(kc_env *env, cl_mem m, size_t bytes, void *out)
{
    if (bytes)
        kc_cl(clEnqueueReadBuffer(env->queue, m, CL_TRUE, 0, bytes, out, 0, NULL, NULL),
              "clEnqueueReadBuffer");
}

void kc_download(kc_env *env, cl_mem m, int dt, size_t n, double *out)
{
    size_t es = kc_dt_size(dt);
    unsigned char *h = kc_alloc(n * es);
    kc_read_bytes(env, m, n * es, h);
    for (size_t i = 0; i < n; i++) {
        if (dt == KC_F32) {
            float f;
            memcpy(&f, h + 4 * i, 4);
            out[i] = f;
        } else {
            uint16_t b;
            memcpy(&b, h + 2 * i, 2);
            out[i] = dt == KC_F16 ? f16_to_f32(b) : bf16_to_f32(b);
        }
    }
    free(h);
}

cl_mem kc_upload_f32(kc_env *env, const double *x, size_t n)
{
    return kc_upload(env, KC_F32, x, n);
}

void kc_download_f32(kc_env *env, cl_mem m, size_t n, double *out)
{
    kc_download(env, m, KC_F32, n, out);
}

void kc_download_i32(kc_env *env, cl_mem m, size_t n, int32_t *out)
{
    kc_read_bytes(env, m, n * 4, out);
}

void kc_fill_zero(kc_env *env, cl_mem m, size_t bytes)
{
    void *z = kc_alloc(bytes);
    if (bytes)
        kc_cl(clEnqueueWriteBuffer(env->queue, m, CL_TRUE, 0, bytes, z, 0, NULL, NULL),
              "clEnqueueWriteBuffer");
    free(z);
}

kc_args kc_begin(cl_kernel k) { return (kc_args){k, 0}; }

static void set_arg(kc_args *a, size_t size, const void *v)
{
    cl_int err = clSetKernelArg(a->k, a->n, size, v);
    if (err != CL_SUCCESS) {
        char name[128] = "";
        clGetKernelInfo(a->k, CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
        fprintf(stderr, "clSetKernelArg(%s, %u) failed: %s\n", name, (unsigned)a->n,
                kc_cl_name(err));
        exit(1);
    }
    a->n++;
}

void kc_mem(kc_args *a, cl_mem m) { set_arg(a, sizeof m, &m); }
void kc_ul(kc_args *a, uint64_t v)
{
    cl_ulong x = v;
    set_arg(a, sizeof x, &x);
}
void kc_l(kc_args *a, int64_t v)
{
    cl_long x = v;
    set_arg(a, sizeof x, &x);
}
void kc_i(kc_args *a, int32_t v)
{
    cl_int x = v;
    set_arg(a, sizeof x, &x);
}
void kc_f(kc_args *a, float v)
{
    cl_float x = v;
    set_arg(a, sizeof x, &x);
}

void kc_run(kc_env *env, cl_kernel k, size_t groups, size_t local)
{
    size_t global = groups * local;
    cl_int err = clEnqueueNDRangeKernel(env->queue, k, 1, NULL, &global, &local, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char name[128] = "";
        clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
        fprintf(stderr, "clEnqueueNDRangeKernel(%s) failed: %s\n", name, kc_cl_name(err));
        exit(1);
    }
    kc_cl(clFinish(env->queue), "clFinish");
}

double kc_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void kc_rand(double *x, size_t n, double lo, double hi, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull); /* splitmix64 */
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        x[i] = lo + (hi - lo) * ((double)(z >> 11) * (1.0 / 9007199254740992.0));
    }
}

double kc_err(const double *got, const double *ref, size_t n)
{
    double scale = 0, e = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    if (scale == 0)
        scale = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (isnan(d))
            return NAN;
        e = fmax(e, d);
    }
    return e / scale;
}

typedef struct track {
    char what[64];
    int dt, exact, cases, fails;
    double err, tol;
} track;

static track tracks[256];
static int ntracks;

static track *find_track(const char *what, int dt, int exact)
{
    for (int i = 0; i < ntracks; i++)
        if (tracks[i].dt == dt && !strcmp(tracks[i].what, what))
            return &tracks[i];
    if (ntracks == (int)(sizeof tracks / sizeof tracks[0])) {
        fprintf(stderr, "kcheck: too many tracked checks\n");
        exit(1);
    }
    track *t = &tracks[ntracks++];
    snprintf(t->what, sizeof t->what, "%s", what);
    t->dt = dt;
    t->exact = exact;
    return t;
}

int kc_track(const char *what, int dt, double err, double tol, const char *case_desc)
{
    track *t = find_track(what, dt, 0);
    int ok = err <= tol; /* NaN compares false */
    t->cases++;
    t->tol = tol;
    if (!(err <= t->err))
        t->err = err; /* keeps a NaN */
    if (!ok) {
        t->fails++;
        failures++;
        printf("FAIL %s %s: err %.3e > tol %.1e at %s\n", what, kc_dt_name(dt), err, tol,
               case_desc);
    }
    return ok;
}

int kc_track_exact(const char *what, int dt, int ok, const char *case_desc)
{
    track *t = find_track(what, dt, 1);
    t->cases++;
    if (!ok) {
        t->fails++;
        failures++;
        printf("FAIL %s %s at %s\n", what, kc_dt_name(dt), case_desc);
    }
    return ok;
}

int kc_status(void)
{
    printf("%-48s %-4s %6s %10s %9s  %s\n", "check", "type", "cases", "max err", "tol", "result");
    for (int i = 0; i < ntracks; i++) {
        track *t = &tracks[i];
        const char *dn = kc_dt_name(t->dt);
        if (t->exact)
            printf("%-48s %-4s %6d %10s %9s  %s\n", t->what, dn, t->cases, "exact", "-",
                   t->fails ? "FAIL" : "ok");
        else
            printf("%-48s %-4s %6d %10.3e %9.1e  %s\n", t->what, dn, t->cases, t->err, t->tol,
                   t->fails ? "FAIL" : "ok");
    }
    if (failures)
        printf("%d check(s) FAILED\n", failures);
    else
        printf("all checks passed\n");
    return failures ? 1 : 0;
}
