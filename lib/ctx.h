/* lib/ctx.h: the context's structure (context.c owns it; device.c keeps its programs and kernel
 * registry in it, lane.c its lanes, status.c its last error). Ops do not see it: they ask
 * through lib/core.h's okto__ctx_* functions. */
#ifndef OKTO_CTX_H
#define OKTO_CTX_H

#include "lane.h"

typedef struct okto__perf_model okto__perf_model; /* engine/perf.c */

#define OKTO__KID_CHUNK 256
#define OKTO__KID_CHUNKS 256 /* at most 65536 distinct kernels per context */

typedef struct okto__kentry {
    cl_program prog;             /* retained */
    char name[64];
} okto__kentry;

typedef struct okto__progentry {
    uint64_t hash;
    char *key;                   /* file|options, or the generated source itself */
    cl_program prog;
} okto__progentry;

struct okto_context {
    atomic_int refs;
    okto_config cfg;
    cl_platform_id platform;
    okto__device dev;
    cl_context cl;
    cl_device_id sub[OKTO_MAX_COMPUTE_LANES];
    int nsub;                    /* sub-devices okto created for its lanes (CPU devices) */
    atomic_uint sub_warm[OKTO_MAX_COMPUTE_LANES]; /* CLBlast warm bits per sub-device */
    int ncompute, ncopy;
    int in_order;                /* the compute lanes are in-order queues */
    int host_lane;               /* BLAS threads per host-lane task; 0: no host lane */
    okto__lane lanes[OKTO_MAX_COMPUTE_LANES + OKTO_MAX_COPY_LANES]; /* compute, then copy */
    okto__lane seq;              /* the sequential policy's in-order queue and its thread */
    cl_command_queue xfer;       /* blocking transfers */
    pthread_mutex_t post_lock;   /* launches post to all lanes as one step: no deadlock */
    okto__perf_model *perf;
    pthread_mutex_t err_lock;
    char err[OKTO__ERR_MAX];
    /* programs and kernel ids (device.c) */
    pthread_mutex_t prog_lock;
    okto__progentry *progs;      /* open addressing by hash */
    size_t nprogs, progcap;
    okto__kentry *kchunks[OKTO__KID_CHUNKS]; /* entries never move: lanes read them unlocked */
    struct {
        uint64_t key;
        okto__kid kid;
    } *memo;                     /* okto__kid_memo_*: open addressing, key 0 = empty */
    size_t nmemo, memocap;
    atomic_uint nkids;
};

/* device.c */
typedef struct okto__dev_entry {
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char name[256];
    double score;                /* compute units x clock */
} okto__dev_entry;

/* Every device of every platform in ICD order; *out malloc'd. Serialised process-wide. */
okto_status okto__discover(okto__dev_entry **out, int *count);
/* The best device (GPU > accelerator > CPU, then compute units x clock), among those whose
 * name contains substr (case-insensitive) when it is not NULL; -1 if none. */
int okto__best_device(const okto__dev_entry *list, int n, const char *substr);
void okto__device_init(okto__device *d, cl_device_id id);
void okto__programs_free(okto_context *ctx);

/* sched/registry.c: the policies' names (the registry table drives OKTO_SCHED's parsing) */
int okto__sched_parse(const char *name, okto_sched *out);
const char *okto__sched_names(void); /* "sequential, round-robin, heft or ..." */

/* lane_host.c: sets host_lane once the device is known */
void okto__host_lane_init(okto_context *ctx);

/* engine/perf.c */
okto__perf_model *okto__perf_create(void);
void okto__perf_destroy(okto__perf_model *m);

#endif
