/* tests/kernels/kc.h: what the kernel checks (check_<family>.c) share: raw OpenCL on the first
 * device found (exit 77 when there is none), a program built the way the library builds it
 * (cl/common.h prepended to cl/<family>.c, -cl-std=CL1.2 -DOKTO_DT=<n>), host conversions to and
 * from the storage dtypes, seeded random inputs rounded to a dtype, the error measure and the
 * pass/fail bookkeeping. Any OpenCL failure names the call and its CL_* code and exits 1: a check
 * is a program that either passes or says why not.
 *
 * Error measure, everywhere: max over i of |got_i - want_i| / max(1, |want_i|) (relative, turning
 * absolute near zero); a NaN on one side only counts as infinite, NaN on both as 0. */
#ifndef OKTO_KC_H
#define OKTO_KC_H

#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

enum { KC_F32 = 0, KC_F16 = 1, KC_BF16 = 2, KC_I32 = 3 };

/* A launch shape: local size and number of work-groups (global = local * groups). The checks
 * run each kernel under a few of these, one group count per local size, as the library does
 * (PoCL 3.1 must not see one kernel and local size at two grid widths). */
typedef struct {
    size_t local, groups;
} kc_geom;

/* The launch shapes a check runs dtype dt's kernels under: f32 gets local sizes 64, 1 and 256
 * (the trees' usual case, the degenerate one, the largest allowed), f16 256 and bf16 32, so
 * every dtype's program is run under a shape the others are not, at one work-group compile
 * per kernel (PoCL compiles each kernel once per local size: the checks' main cost). */
const kc_geom *kc_geoms(int dt, int *n);

extern cl_context kc_ctx;
extern cl_command_queue kc_q;

/* Finds a device (exit 77 when none); name is the check's name for the summary. */
void kc_init(const char *name);
/* Ends the check: prints the summary and the runtime, releases everything, returns the exit
 * status (0 pass, 1 any failure). */
int kc_finish(void);

/* Builds cl/<file> with cl/common.h prepended for data dtype dt (a file holding a '/' is a path
 * from the source root instead: tests/kernels/philox_kat.cl). */
cl_program kc_build(const char *file, int dt);
cl_kernel kc_kernel(cl_program prog, const char *name);

cl_mem kc_alloc(size_t bytes);                   /* zero-filled */
cl_mem kc_upload(const void *src, size_t bytes); /* a copy of src */
void kc_write(cl_mem m, const void *src, size_t bytes);
void kc_read(cl_mem m, void *dst, size_t bytes);
void kc_free(cl_mem m);

/* Sets a kernel's arguments in order from a format: b cl_mem, u cl_ulong, i cl_int,
 * U cl_uint, f float (passed as double through the varargs). */
void kc_args(cl_kernel k, const char *fmt, ...);
/* Runs k on global = g.local * g.groups, local = g.local, and waits (row kernels). */
void kc_launch(cl_kernel k, kc_geom g);
/* One item per element kernels: a grid of at least nx (x ny) items in groups of lx (x ly),
 * padded by one extra group in each dimension, as the host pads grids, so the kernels' bounds
 * checks are exercised; waits. */
void kc_launch1(cl_kernel k, size_t nx, size_t lx);
void kc_launch2(cl_kernel k, size_t nx, size_t ny, size_t lx, size_t ly);
/* The local sizes a check runs dtype dt's per-element kernels under (1-D: lx; 2-D: lx, ly):
 * f32 two of them (one of them 1), f16 and bf16 one each, all different. */
typedef struct {
    size_t lx, ly;
} kc_local;
const kc_local *kc_locals(int dt, int *n);

/* Storage dtypes on the host. */
size_t kc_dt_size(int dt);
const char *kc_dt_name(int dt);
uint16_t kc_f32_to_f16(float f); /* round to nearest even, as vstore_half_rte */
float kc_f16_to_f32(uint16_t h);
uint16_t kc_f32_to_bf16(float f); /* as okto_f32_to_bf16 in cl/common.h */
float kc_bf16_to_f32(uint16_t h);
/* v rounded to float, then to dtype dt, as a double. */
double kc_round(int dt, double v);
/* n doubles in dt's storage format (malloc'd) and back. */
void *kc_pack(int dt, const double *src, size_t n);
void kc_unpack(int dt, const void *src, double *dst, size_t n);
/* Packs src (already representable) and uploads it; reads n dt-elements back as doubles. */
cl_mem kc_upload_dt(int dt, const double *src, size_t n);
void kc_read_dt(int dt, cl_mem m, double *dst, size_t n);
void kc_write_dt(int dt, cl_mem m, const double *src, size_t n);
/* 1 when m's first bytes equal host's. */
int kc_same_bits(cl_mem m, const void *host, size_t bytes);
/* m's first bytes, malloc'd. */
void *kc_bits(cl_mem m, size_t bytes);

/* A device tensor of n dt-elements at element offset off in its buffer, with off sentinel
 * elements before it and KC_PAD after (NaN patterns for the float dtypes, 0x7eadbeef for i32):
 * a kernel that ignores the offset reads NaNs, one that writes outside its range breaks a
 * sentinel, which kc_t_pads_ok sees. src NULL: zeros. */
#define KC_PAD 5
typedef struct {
    cl_mem m;
    size_t off, n;
    int dt;
} kc_t;
kc_t kc_t_new(int dt, const double *src, size_t n, size_t off);
void kc_t_read(const kc_t *t, double *dst);
void kc_t_write(const kc_t *t, const double *src);
/* Writes n elements' bytes as they are (e.g. uint32 words into an i32 tensor). */
void kc_t_write_raw(const kc_t *t, const void *src);
int kc_t_pads_ok(const kc_t *t);
void kc_t_free(kc_t *t);
/* The whole buffer's bytes (pads included), for bitwise comparisons. */
size_t kc_t_bytes(const kc_t *t);
#define kc_t_bits(t) kc_bits((t)->m, kc_t_bytes(t))
#define kc_t_same(t, bits) kc_same_bits((t)->m, (bits), kc_t_bytes(t))
/* Largest |got - want| / |want| (purely relative: statistics such as rstd). */
double kc_rel_err(const double *got, const double *want, size_t n);

/* xorshift64*: reproducible everywhere. */
uint64_t kc_rand(uint64_t *state);
double kc_unif(uint64_t *state, double lo, double hi);
/* n uniform values in [lo, hi), each rounded to dtype dt. */
void kc_fill(double *x, size_t n, uint64_t seed, double lo, double hi, int dt);
double *kc_dalloc(size_t n); /* zeroed doubles; exits on failure */

double kc_err(const double *got, const double *want, size_t n);
/* The worst error over several shapes, with the shape it came from. */
typedef struct {
    double err;
    char at[96];
} kc_stat;
void kc_stat_add(kc_stat *s, double err, const char *fmt, ...);
/* kc_check of s's worst error, naming its shape. */
int kc_stat_check(const char *what, int dt, const kc_stat *s, double tol);
/* Records one comparison: prints "what [dtype]: err <= tol" and counts a failure when err > tol
 * (or NaN). dt < 0 prints no dtype. Returns 1 on pass. */
int kc_check(const char *what, int dt, double err, double tol);
/* Records a yes/no check (determinism, flags, ...). */
int kc_expect(const char *what, int dt, int ok, const char *detail);

double kc_now(void);

#endif
