/* lib/core.h: what every file of the library shares: errors and logging (status.c), dtypes,
 * storages and tensors (tensor.c), regions of storage (region.c), and per-device state with its
 * program cache and kernel registry (device.c). It is the bottom layer: it knows nothing of
 * graphs, lanes or ops. */
#ifndef OKTO_CORE_H
#define OKTO_CORE_H

#include <okto/okto.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define OKTO__ERR_MAX 4096
/* Work-group size of 1-D kernels on GPUs; the programs get it as -DOKTO_WG. */
#define OKTO__WG 64

/* ---- errors and logging (status.c) ---------------------------------------------------------- */
/* "CL_OUT_OF_RESOURCES", "CLBlastInvalidLocalMemUsage", "CL_UNKNOWN_ERROR" */
const char *okto__cl_name(cl_int err);
/* The okto_status an OpenCL (or CLBlast) error code maps to, the same when recording and when
 * running: ENOMEM for allocation failures, ECL otherwise. */
okto_status okto__cl_status(cl_int err);
/* Records a message for okto_last_error (context and calling thread) and returns s. */
okto_status okto__fail(okto_context *ctx, okto_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* okto__cl_status(err) with "call: CL_NAME (code)" and then the caller's context. */
okto_status okto__fail_cl(okto_context *ctx, cl_int err, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void okto__log(const okto_context *ctx, okto_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* clGetDeviceInfo for a query that has a safe default: on failure *out keeps the value it had
 * (the caller's default) and a warning names the query and its CL_* error. 0 on success. */
int okto__device_info(cl_device_id d, cl_device_info what, const char *name, size_t size,
                      void *out);
#define OKTO__DEVICE_INFO(d, what, var) okto__device_info((d), (what), #what, sizeof(var), &(var))
double okto__now_ms(void);

/* ---- dtypes ------------------------------------------------------------------------------------ */
#define OKTO__DT_BIT(dt) (1u << (dt))
#define OKTO__DT_FLOATS (OKTO__DT_BIT(OKTO_F32) | OKTO__DT_BIT(OKTO_F16) | OKTO__DT_BIT(OKTO_BF16))
#define OKTO__DT_ALL (OKTO__DT_FLOATS | OKTO__DT_BIT(OKTO_I32))
/* "f32, f16 or bf16" for messages. */
const char *okto__dtypes_str(unsigned mask, char *buf, size_t len);

/* ---- storages and tensors (tensor.c) ------------------------------------------------------------ */
/* The cl_mem that a tensor and its views share. Its own shape (the one it was created with,
 * padded to OKTO_MAX_RANK with trailing 1s) gives the coordinates regions are boxes in. */
typedef struct okto__storage {
    atomic_int refs;
    okto_context *ctx;
    cl_mem mem;
    int owns_mem;                /* 0: a caller's buffer okto never releases */
    /* CL_MEM_USE_HOST_PTR memory okto allocated for the host lane (lane_host.c), which works
     * on it directly; NULL otherwise (no host lane, a caller's buffer) */
    void *host;
    okto_dtype dtype;
    size_t base;                 /* elements before the tensor's first one (okto_tensor_from_cl) */
    size_t numel;
    size_t shape[OKTO_MAX_RANK]; /* shape[1..3] < 2^32 (regions store them in 32 bits) */
    /* > 0: launched graphs using it; < 0: blocking transfers in progress. One atomic, so the
     * check and the change are one step. */
    atomic_int busy;
    atomic_int requires_grad;    /* okto_tensor_set_requires_grad: a parameter's storage */
    uint32_t id;                 /* for traces */
} okto__storage;

struct okto_tensor {
    okto__storage *st;
    okto_dtype dtype;
    int rank;
    size_t shape[OKTO_MAX_RANK];   /* rank entries used; the rest 1 */
    int64_t stride[OKTO_MAX_RANK]; /* in elements; the rest 0 */
    size_t offset;                 /* in elements from the storage's first element */
    int heap;                      /* 1: malloc'd handle (user-visible); 0: a value on the stack */
};

void okto__storage_retain(okto__storage *st);
void okto__storage_release(okto__storage *st);
/* A new storage of dtype and shape (rank 1..4), and t a contiguous tensor over all of it (a
 * value: t->heap = 0, the storage's one reference is the caller's). */
okto_status okto__storage_new(okto_context *ctx, okto_dtype dtype, int rank, const size_t *shape,
                              const char *who, okto_tensor *t);
size_t okto__numel(const okto_tensor *t);
int okto__contiguous(const okto_tensor *t);
/* Last dimension of unit stride (or a single element): rows of t can be handed to a kernel as
 * (offset, row stride). */
int okto__rows_dense(const okto_tensor *t);
/* Views as values (no allocation, no reference taken): the ops' building blocks. They check
 * nothing beyond what the comment says; the public functions in tensor.c validate. */
void okto__view_slice(const okto_tensor *t, int dim, size_t start, size_t len, okto_tensor *out);
/* Merges t to 2-D [rows, cols] (the last dimension stays cols) when its leading dimensions can
 * be merged without a copy; 0 if they cannot. */
int okto__view_2d(const okto_tensor *t, okto_tensor *out);
/* Rows [r0, r1) of the 2-D reading of t (rows = product of all dimensions but the last), as a
 * 2-D view; t's leading dimensions must merge (okto__view_2d). */
int okto__view_rows(const okto_tensor *t, size_t r0, size_t r1, okto_tensor *out);
/* The flat element range [e0, e1) of a contiguous t, as a 1-D view. */
void okto__view_flat(const okto_tensor *t, size_t e0, size_t e1, okto_tensor *out);
/* t with dimensions d0 and d1 swapped. */
void okto__view_swap(const okto_tensor *t, int d0, int d1, okto_tensor *out);
/* t broadcast to shape[rank] (aligned at the last dimension; t's dimensions of size 1, and the
 * ones missing in front, get stride 0). The caller knows t broadcasts to it. */
void okto__view_bcast(const okto_tensor *t, int rank, const size_t *shape, okto_tensor *out);
/* t with a dimension of size 1 inserted at dim (0..rank). */
void okto__view_unsqueeze(const okto_tensor *t, int dim, okto_tensor *out);
/* "f32[8,3,5]" */
const char *okto__describe(const okto_tensor *t, char *buf, size_t len);
#define OKTO__DESC(t) okto__describe((t), (char[96]){0}, 96)
int okto__same_shape(const okto_tensor *a, const okto_tensor *b);
/* a and b are the same view (storage, offset, shape, strides). */
int okto__same_view(const okto_tensor *a, const okto_tensor *b);

/* ---- regions (region.c) ------------------------------------------------------------------------- */
/* A box of a storage's elements in its own coordinates: dimension 0 as a 64-bit range, the
 * inner three in 32 bits. A tensor's region covers every element it addresses: exactly for
 * slices, permutations and broadcasts of the storage, and for contiguous views; a view the box
 * cannot describe (reshapes that wrap around a dimension) gets a box that covers more, never
 * less. Two accesses conflict only if their boxes overlap and one of them writes. */
typedef struct okto__region {
    uint64_t lo0, hi0;   /* [lo0, hi0) of dimension 0 */
    uint32_t lo[3], hi[3]; /* [lo, hi) of dimensions 1..3 */
} okto__region;

/* Returns 1 when the box is exact (holds only elements t addresses, but for the gaps of a
 * strided view inside it), 0 when it covers more (a reshape that wraps). */
int okto__region_of(const okto_tensor *t, okto__region *out);
int okto__region_overlap(const okto__region *a, const okto__region *b);
/* a covers b */
int okto__region_covers(const okto__region *a, const okto__region *b);
/* Two views of one storage that may share an element: exact for contiguous views (their
 * element ranges) and for views whose boxes are exact; otherwise the boxes' overlap, which may
 * say yes for views that touch different elements of the same rows. */
int okto__views_overlap(const okto_tensor *a, const okto_tensor *b);

/* ---- devices (device.c) ------------------------------------------------------------------------- */
#define OKTO__MAX_PROGRAMS 256

/* What okto keeps per device: its limits, and the compiled programs. The context owns one for
 * its device (several devices of one context are the multi-device work's). */
typedef struct okto__device {
    cl_device_id id;
    cl_device_type type;
    char name[256];
    char vendor[128];
    cl_uint cus, mhz;
    size_t max_alloc, local_mem, max_wg, max_items[3];
    int ooo;                     /* takes out-of-order queues */
    int fp16;                    /* cl_khr_fp16: half arithmetic (storage works everywhere) */
    int unified;                 /* CL_DEVICE_HOST_UNIFIED_MEMORY */
    size_t grid_groups;          /* work-groups of a fixed grid (device.c, "launch geometry") */
    double gflops_est, gbps_est; /* for the cost model before anything was measured */
    /* CLBlast has run a routine here, so its caches hold that routine's program and further
     * calls may come from several threads at once (CLBlast 1.5.3's cache fill races: upstream
     * issue #486). One bit per okto__clblast_routine. */
    atomic_uint clblast_warm;
    atomic_int clblast_tuned;
} okto__device;

int okto__device_is_cpu(const okto__device *d);

/* A program key: a cl/ file built for one dtype and options, or generated source. */
typedef struct okto__progkey {
    const char *file;            /* "reduce" for cl/reduce.cl; NULL for generated source */
    const char *source;          /* generated source (file == NULL) */
    const char *options;         /* extra build options ("-DOKTO_DT=1 ..."), or NULL */
} okto__progkey;

/* Kernel ids: dense per context, for the lanes' per-thread kernel caches (a lane thread sets a
 * kernel's arguments and enqueues it, so no two threads share one cl_kernel). */
typedef uint32_t okto__kid;
/* The id of kernel `name` in the program of `key`, building the program on first use (with
 * cl/common.h in front, for all of the context's devices). OKTO_EBUILD with the build log. */
okto_status okto__kernel_id(okto_context *ctx, const okto__progkey *key, const char *name,
                            okto__kid *out);
/* The same for a program the caller built (user kernels); the registry retains it. */
okto_status okto__kernel_id_of(okto_context *ctx, cl_program prog, const char *name,
                               okto__kid *out);
/* A memo of kernel ids by a caller's 64-bit key (a hash of what the kernel is made from), so an
 * op that generates its source skips generating and hashing it on every call. 0 if absent. */
int okto__kid_memo_get(okto_context *ctx, uint64_t key, okto__kid *out);
void okto__kid_memo_put(okto_context *ctx, uint64_t key, okto__kid kid);
/* The program and name behind an id (for the lanes). */
void okto__kernel_lookup(okto_context *ctx, okto__kid kid, cl_program *prog, const char **name);
/* CL_KERNEL_WORK_GROUP_SIZE of a kernel on the context's device. */
okto_status okto__kernel_wg_size(okto_context *ctx, okto__kid kid, size_t *out);
/* Builds source for the context's devices; OKTO_EBUILD with the (first several KB of the)
 * build log in the message. */
okto_status okto__build(okto_context *ctx, const char *source, const char *options,
                        const char *what, cl_program *out);

/* ---- what ops may ask of a context (context.c) ---------------------------------------------------- */
okto__device *okto__ctx_device(const okto_context *ctx);
int okto__ctx_compute_lanes(const okto_context *ctx);
/* BLAS threads per host-lane task, or 0: no host lane (lib/lane_host.c) */
int okto__ctx_host_lane(const okto_context *ctx);
cl_context okto__ctx_cl(const okto_context *ctx);
/* The context's in-order queue for blocking transfers (okto_tensor_read / write). */
cl_command_queue okto__ctx_xfer_queue(const okto_context *ctx);
void okto__context_retain(okto_context *ctx);
void okto__context_release(okto_context *ctx);

#endif
