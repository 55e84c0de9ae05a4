/* okto/context.h: the context (okto's central brain), its lanes and the scheduling policies.
 *
 * A context owns one OpenCL device, its lanes (command queues, each with a host thread of its
 * own) and the compiled kernels. Tensors and graphs made from a context keep it alive:
 * okto_context_destroy drops the caller's reference and the context is torn down when its last
 * tensor, graph and kernel are gone too.
 *
 * Threads: every function here may be called from any thread. Contexts may be created and
 * destroyed from several threads at once (okto discovers the OpenCL platforms once per process,
 * behind a lock). One context may be used from several threads (see graph.h for the rule on
 * graphs). */
#ifndef OKTO_CONTEXT_H
#define OKTO_CONTEXT_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct okto_context okto_context;

/* Scheduling policies. Each is a module of the library (lib/sched/<module>.c); this one table
 * gives their enum members, names and modules, and drives OKTO_SCHED's parsing and the tools'
 * and tests' loops. X(ENUM, "name", module). */
#define OKTO_SCHED_MAP(X)                                                                      \
    X(SEQUENTIAL, "sequential", sequential) /* one in-order queue, recorded order: baseline */ \
    X(ROUND_ROBIN, "round-robin", round_robin) /* tasks dealt to the compute lanes in turn */  \
    X(HEFT, "heft", heft) /* longest path first, lane of earliest estimated finish (default) */ \
    X(REVERSE, "reverse", reverse) /* a topological order far from the recorded one: a test */

typedef enum okto_sched {
    OKTO_SCHED_AUTO = 0, /* a context's graphs: heft; a graph: whatever its context uses */
#define OKTO__SCHED_ENUM(name, str, module) OKTO_SCHED_##name,
    OKTO_SCHED_MAP(OKTO__SCHED_ENUM)
#undef OKTO__SCHED_ENUM
    OKTO_SCHED_COUNT /* one past the last policy: loop with s = 1; s < OKTO_SCHED_COUNT */
} okto_sched;

/* "sequential", "round-robin", "heft", ..., "auto"; "unknown" for other values. */
OKTO_API const char *okto_sched_name(okto_sched s);
/* The policy with that name; OKTO_EINVAL (and the list of names in okto_last_error(NULL)) for
 * a name that is none. "auto" gives OKTO_SCHED_AUTO. */
OKTO_API okto_status okto_sched_from_name(const char *name, okto_sched *out);

typedef enum okto_log_level {
    OKTO_LOG_ERROR = 0,
    OKTO_LOG_WARN,
    OKTO_LOG_INFO,
    OKTO_LOG_DEBUG
} okto_log_level;

#define OKTO_MAX_COMPUTE_LANES 64
#define OKTO_MAX_COPY_LANES 4

/* Set by okto_config_init. `size` must be sizeof(okto_config) of the header the caller was
 * compiled with, so a program built against an older okto_config is refused, not misread. */
typedef struct okto_config {
    size_t size;             /* sizeof(okto_config); okto_config_init sets it */
    int device_index;        /* index as okto-probe prints it; -1 = automatic */
    char device_name[128];   /* case-insensitive substring of the device name; "" = automatic */
    int compute_lanes;       /* 1..64; 0 = automatic (the rule in okto_device_lanes) */
    int copy_lanes;          /* 0..4; -1 = automatic */
    int subdevices;          /* CPU devices: 1 = one sub-device per compute lane, 0 = all lanes
                                share the device; -1 = automatic, which is 0 (measured faster
                                on PoCL, see lib/context.c); OKTO_SUBDEVICES sets it */
    int in_order;            /* 1 = in-order lanes even where out-of-order queues exist (what
                                AMD's OpenCL always gives); 0 = automatic; OKTO_INORDER sets it */
    okto_sched sched;        /* default policy of the context's graphs */
    okto_log_level log;      /* messages at or above this level go to stderr */
    char trace_path[256];    /* "" = none; else every run writes its trace here */
    int host_lane;           /* matmuls on CPU devices through the system's CBLAS on the lane
                                threads (lib/lane_host.c): -1 (okto_config_init's) or 1 = on
                                where the build has CBLAS and the device is a CPU, 0 = off;
                                OKTO_HOST_LANE sets it */
    /* okto_config_init records an invalid environment value here instead of failing: it
     * returns nothing, so okto_context_create reports it (OKTO_EINVAL + message). */
    okto_status env_status;
    char env_error[256];
} okto_config;

/* Defaults, then the environment: OKTO_DEVICE, OKTO_LANES, OKTO_SUBDEVICES, OKTO_INORDER,
 * OKTO_SCHED, OKTO_LOG, OKTO_TRACE, OKTO_HOST_LANE. */
OKTO_API void okto_config_init(okto_config *cfg);

/* cfg NULL means okto_config_init's result. *out is the new context, or NULL on failure. */
OKTO_API okto_status okto_context_create(const okto_config *cfg, okto_context **out);
/* Wraps the caller's context and device. okto retains them for its lifetime and releases them
 * when done; the caller keeps its own references. Lanes are queues on this device. */
OKTO_API okto_status okto_context_create_from_cl(cl_context cl_ctx, cl_device_id device,
                                                 const okto_config *cfg, okto_context **out);
/* Drops the caller's reference (see the top of this file). NULL is OK. */
OKTO_API okto_status okto_context_destroy(okto_context *ctx);

OKTO_API int okto_context_lane_count(const okto_context *ctx); /* compute + copy lanes */
OKTO_API int okto_context_compute_lanes(const okto_context *ctx);
OKTO_API int okto_context_copy_lanes(const okto_context *ctx);
/* 1 when the compute lanes are in-order queues (no out-of-order support, or config.in_order). */
OKTO_API int okto_context_in_order(const okto_context *ctx);
OKTO_API cl_context okto_context_cl(const okto_context *ctx);   /* interop; not retained */
OKTO_API cl_device_id okto_context_device(const okto_context *ctx);
OKTO_API okto_sched okto_context_sched(const okto_context *ctx);
/* BLAS threads per host-lane task (OKTO_HOST_THREADS, default 1), or 0 when the context has no
 * host lane (a build without CBLAS, a device that is no CPU, or config.host_lane = 0). */
OKTO_API int okto_context_host_lane(const okto_context *ctx);
/* The CBLAS the build has for the host lane (OpenBLAS's configuration string), or NULL. */
OKTO_API const char *okto_host_blas(void);

/* Devices as okto numbers them: every device of every platform, platforms in ICD order. */
typedef struct okto_device_info {
    int index;               /* what OKTO_DEVICE and okto_config.device_index take */
    cl_platform_id platform;
    cl_device_id device;
    int compute_lanes;       /* what okto would use there by default */
    int copy_lanes;
    int is_default;          /* the device okto_context_create(NULL) picks without OKTO_DEVICE */
} okto_device_info;

/* *out is malloc'd (free it with okto_devices_free). OKTO_ENODEV when there is no platform or
 * no device, with a hint in okto_last_error(NULL). */
OKTO_API okto_status okto_devices(okto_device_info **out, int *count);
OKTO_API void okto_devices_free(okto_device_info *devices);

/* The automatic lane rule for one device (documented in lib/lane.c and the README). */
OKTO_API void okto_device_lanes(cl_device_id device, int *compute, int *copy);

#ifdef __cplusplus
}
#endif
#endif
