/* okto/context.h: the context (okto's central brain) and its lanes.
 *
 * A context owns one OpenCL device, its lanes (out-of-order command queues, each with a host
 * thread of its own) and the compiled kernels. Tensors and graphs made from a context keep it
 * alive: okto_context_destroy drops the caller's reference and the context is torn down when
 * its last tensor and graph are gone too. */
#ifndef OKTO_CONTEXT_H
#define OKTO_CONTEXT_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct okto_context okto_context;

/* Scheduling policies (see DESIGN.md, "Plan"). */
typedef enum okto_sched {
    OKTO_SCHED_AUTO = 0,     /* per graph: use the context's policy; per context: heft */
    OKTO_SCHED_SEQUENTIAL,   /* one in-order queue, one thread, recorded order: the baseline */
    OKTO_SCHED_ROUND_ROBIN,  /* tasks dealt to lanes in turn, in recorded order */
    OKTO_SCHED_HEFT          /* longest path first, lane of earliest estimated finish */
} okto_sched;

/* "sequential", "round-robin", "heft", "auto". */
OKTO_API const char *okto_sched_name(okto_sched s);

typedef enum okto_log_level {
    OKTO_LOG_ERROR = 0,
    OKTO_LOG_WARN,
    OKTO_LOG_INFO,
    OKTO_LOG_DEBUG
} okto_log_level;

#define OKTO_MAX_COMPUTE_LANES 64
#define OKTO_MAX_COPY_LANES 4
#define OKTO_MAX_LANES (OKTO_MAX_COMPUTE_LANES + OKTO_MAX_COPY_LANES)

typedef struct okto_config {
    int device_index;        /* index as okto-probe prints it; -1 = automatic */
    char device_name[128];   /* case-insensitive substring of the device name; "" = automatic */
    int compute_lanes;       /* 1..64; 0 = automatic (the rule in okto_device_lanes) */
    int copy_lanes;          /* 0..4; -1 = automatic */
    int subdevices;          /* CPU devices: 1 = one sub-device per compute lane, 0 = all lanes
                                share the device; -1 = automatic, which is 0 (measured faster
                                on PoCL, see lib/context.c); OKTO_SUBDEVICES sets it */
    okto_sched sched;        /* default policy of the context's graphs */
    okto_log_level log;      /* messages at or above this level go to stderr */
    char trace_path[256];    /* "" = none; else every run writes its trace here */
    /* okto_config_init records an invalid environment value here instead of failing: it
     * returns nothing, so okto_context_create reports it (OKTO_EINVAL + message). */
    okto_status env_status;
    char env_error[256];
} okto_config;

/* Defaults, then the environment: OKTO_DEVICE, OKTO_LANES, OKTO_SCHED, OKTO_LOG, OKTO_TRACE. */
OKTO_API void okto_config_init(okto_config *cfg);

/* cfg NULL means okto_config_init's result. *out is the new context, or NULL on failure. */
OKTO_API okto_status okto_context_create(const okto_config *cfg, okto_context **out);
/* Wraps the caller's context and device. okto retains them for its lifetime and releases them
 * when done; the caller keeps its own references. Lanes are queues on this device. */
OKTO_API okto_status okto_context_create_from_cl(cl_context cl_ctx, cl_device_id device,
                                                 const okto_config *cfg, okto_context **out);
/* Drops the caller's reference (see the top of this file). NULL is ignored. */
OKTO_API void okto_context_destroy(okto_context *ctx);

OKTO_API int okto_lane_count(const okto_context *ctx);         /* compute + copy lanes */
OKTO_API int okto_compute_lane_count(const okto_context *ctx);
OKTO_API int okto_copy_lane_count(const okto_context *ctx);
OKTO_API cl_context okto_context_cl(const okto_context *ctx);   /* interop; not retained */
OKTO_API cl_device_id okto_context_device(const okto_context *ctx);
OKTO_API okto_sched okto_context_sched(const okto_context *ctx);

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
