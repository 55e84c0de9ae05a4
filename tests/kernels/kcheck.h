/* tests/kernels/kcheck.h: what the kernel checks (check_<family>.c) share: one OpenCL device, a
 * program built the way the library builds one (cl/common.h prepended to cl/<family>.c, then
 * -cl-std=CL1.2 -DOKTO_DT=<n>), dtype conversion on the host, and the error report.
 *
 * Raw OpenCL, no okto library: the checks test the kernels alone. Every OpenCL failure ends the
 * program with status 1 after naming the call and its CL_* code; no device at all ends it with
 * 77 (meson's "skipped"). Single-threaded; every launch is finished before the next starts. */
#ifndef OKTO_KCHECK_H
#define OKTO_KCHECK_H

#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

/* data dtypes, as cl/common.h numbers them */
enum { KC_F64 = -1, KC_F32 = 0, KC_F16 = 1, KC_BF16 = 2 }; /* f64: the references themselves */

typedef struct kc_env {
    cl_device_id dev;
    cl_context ctx;
    cl_command_queue queue;
    cl_uint units; /* compute units: the checks launch a fixed multiple of them */
} kc_env;

void kc_init(kc_env *env);
void kc_free(kc_env *env);
const char *kc_cl_name(cl_int err);
void kc_cl(cl_int err, const char *call); /* exits 1 with the call's name unless CL_SUCCESS */

const char *kc_dt_name(int dt);
size_t kc_dt_size(int dt);
/* the value v becomes once stored as dt (round to nearest even, as the kernels store) */
double kc_round(int dt, double v);
void kc_round_all(int dt, double *x, size_t n);

/* Builds cl/common.h + cl/<file> for dtype dt with extra options (may be NULL). */
cl_program kc_build(kc_env *env, const char *file, int dt, const char *extra);
/* The same for a source string (test-only kernels); what names it in errors. */
cl_program kc_build_src(kc_env *env, const char *what, const char *src, int dt, const char *extra);
cl_kernel kc_kernel(cl_program prog, const char *name);

/* buffers of n elements of dt; upload converts doubles (rounding as kc_round), download back */
cl_mem kc_buf(kc_env *env, size_t bytes);
cl_mem kc_upload(kc_env *env, int dt, const double *x, size_t n);
void kc_write(kc_env *env, cl_mem m, int dt, const double *x, size_t n);
void kc_download(kc_env *env, cl_mem m, int dt, size_t n, double *out);
cl_mem kc_upload_f32(kc_env *env, const double *x, size_t n);
void kc_download_f32(kc_env *env, cl_mem m, size_t n, double *out);
void kc_download_i32(kc_env *env, cl_mem m, size_t n, int32_t *out);
void kc_read_bytes(kc_env *env, cl_mem m, size_t bytes, void *out);
void kc_fill_zero(kc_env *env, cl_mem m, size_t bytes);

/* Kernel arguments in order, each by its OpenCL C type. */
typedef struct kc_args {
    cl_kernel k;
    cl_uint n;
} kc_args;
kc_args kc_begin(cl_kernel k);
void kc_mem(kc_args *a, cl_mem m);
void kc_ul(kc_args *a, uint64_t v); /* ulong */
void kc_l(kc_args *a, int64_t v);   /* long */
void kc_i(kc_args *a, int32_t v);   /* int */
void kc_f(kc_args *a, float v);     /* float */

/* global = groups * local items in dimension 0; returns after the kernel has finished */
void kc_run(kc_env *env, cl_kernel k, size_t groups, size_t local);
double kc_now(void); /* seconds, monotonic */

/* Deterministic test data: uniform in [lo, hi). */
void kc_rand(double *x, size_t n, double lo, double hi, uint64_t *state);

/* Error of got against ref: max |got - ref| over max |ref| (the tensor's scale; 1 if ref is all
 * zero), so one tolerance serves tensors of any magnitude. */
double kc_err(const double *got, const double *ref, size_t n);
/* Records one comparison under (what, dtype): a failure (err > tol, or NaN) is printed at
 * once with the case that failed; kc_status prints, per (what, dtype), the largest error, the
 * tolerance and the number of cases. Returns err <= tol. */
int kc_track(const char *what, int dt, double err, double tol, const char *case_desc);
/* the same for exact checks (bits equal, argmax equal): ok or not */
int kc_track_exact(const char *what, int dt, int ok, const char *case_desc);
/* prints the table; exit status: 1 if any check failed */
int kc_status(void);

void *kc_alloc(size_t bytes); /* calloc that exits on failure */

#endif
