/* tests/fault/clshim.c: okto's fault-injection shim, an LD_PRELOAD library over the OpenCL
 * entry points. It forwards every call to the real libOpenCL (dlsym RTLD_NEXT), counts the
 * calls that can fail, and makes one of them fail with an error that call can really return.
 * CLBlast calls the same entry points through the same PLT, so its calls are counted and
 * injected too (and told apart by the caller's library). It also keeps the API-level reference
 * count of every context, queue, buffer, program, kernel and event, so a run can check that
 * everything it created was released (okto_fault_live).
 *
 * Environment (read when armed):
 *   OKTO_FAULT_AT=N     the Nth counted call after arming fails (0 or unset: count only)
 *   OKTO_FAULT_FN=name  count only calls of that function toward N ("malloc": host
 *                       allocations made from okto's own code, see below)
 *   OKTO_FAULT_ERR=x    the error to return instead of the function's default: a CL_* name
 *                       or a number
 *   OKTO_FAULT_TRACE=f  append "seq<TAB>function<TAB>caller" for every counted call to file f
 *   OKTO_FAULT_AUTOARM=1  arm at load, for programs that do not arm themselves (any okto
 *                       program or test can run under the shim that way)
 *   OKTO_FAULT_BACKTRACE=1  print the stack of the call that fails (to find a point's site)
 *   OKTO_FAULT_QUIET=1  no line on stderr when the fault fires
 *   OKTO_FAULT_LIVE_AT_EXIT=1  print the OpenCL objects still referenced when the process
 *                       exits (a reference leak check for any program)
 *
 * A program arms and disarms through okto_fault_arm/okto_fault_disarm (found with dlsym, so
 * the program also runs without the shim): calls before arming and after disarming are
 * forwarded and not counted. The fault fires once per arming.
 *
 * Host allocations (OKTO_FAULT_FN=malloc): malloc, calloc and realloc are wrapped too, and
 * while armed with that name, calls whose return address lies in the main executable or in
 * libokto.so are counted and the Nth fails with NULL/ENOMEM. Scoping by caller keeps PoCL's,
 * LLVM's and CLBlast's allocations out (an injected failure there is an abort in C++, not a
 * path okto can handle); a program arming for malloc must make no allocation of its own inside
 * the window. From the first arming on, the blocks okto's code allocates are also tracked
 * until freed (okto_fault_host_live): a leak check that works where valgrind and ASan cannot
 * run, since both replace malloc and so bypass these wrappers (and the malloc faults). Built
 * for a sanitizer (OKTO_SHIM_NO_ALLOC, tests/meson.build) the shim has no allocation wrappers
 * at all: the sanitizer's runtime finds the "real" free through RTLD_NEXT, which would be this
 * one, handing its blocks to glibc. There LeakSanitizer checks the host memory instead. */
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHIM_API __attribute__((visibility("default")))

/* Every call that can fail, with the error a driver plausibly returns there. */
#define SHIM_FUNCS(X)                                                                              \
    X(clGetPlatformIDs, CL_OUT_OF_HOST_MEMORY)                                                     \
    X(clGetPlatformInfo, CL_OUT_OF_HOST_MEMORY)                                                    \
    X(clGetDeviceIDs, CL_OUT_OF_HOST_MEMORY)                                                       \
    X(clGetDeviceInfo, CL_OUT_OF_HOST_MEMORY)                                                      \
    X(clCreateSubDevices, CL_DEVICE_PARTITION_FAILED)                                              \
    X(clCreateContext, CL_OUT_OF_HOST_MEMORY)                                                      \
    X(clGetContextInfo, CL_OUT_OF_HOST_MEMORY)                                                     \
    X(clCreateCommandQueue, CL_OUT_OF_RESOURCES)                                                   \
    X(clGetCommandQueueInfo, CL_OUT_OF_HOST_MEMORY)                                                \
    X(clCreateBuffer, CL_MEM_OBJECT_ALLOCATION_FAILURE)                                            \
    X(clGetMemObjectInfo, CL_OUT_OF_HOST_MEMORY)                                                   \
    X(clCreateProgramWithSource, CL_OUT_OF_HOST_MEMORY)                                            \
    X(clCreateProgramWithBinary, CL_OUT_OF_HOST_MEMORY)                                            \
    X(clBuildProgram, CL_BUILD_PROGRAM_FAILURE)                                                    \
    X(clGetProgramInfo, CL_OUT_OF_HOST_MEMORY)                                                     \
    X(clGetProgramBuildInfo, CL_OUT_OF_HOST_MEMORY)                                                \
    X(clCreateKernel, CL_OUT_OF_RESOURCES)                                                         \
    X(clGetKernelInfo, CL_OUT_OF_HOST_MEMORY)                                                      \
    X(clGetKernelWorkGroupInfo, CL_OUT_OF_RESOURCES)                                               \
    X(clSetKernelArg, CL_OUT_OF_RESOURCES)                                                         \
    X(clEnqueueNDRangeKernel, CL_OUT_OF_RESOURCES)                                                 \
    X(clEnqueueReadBuffer, CL_OUT_OF_RESOURCES)                                                    \
    X(clEnqueueWriteBuffer, CL_OUT_OF_RESOURCES)                                                   \
    X(clEnqueueCopyBuffer, CL_OUT_OF_RESOURCES)                                                    \
    X(clEnqueueFillBuffer, CL_OUT_OF_RESOURCES)                                                    \
    X(clEnqueueMarkerWithWaitList, CL_OUT_OF_RESOURCES)                                            \
    X(clEnqueueBarrierWithWaitList, CL_OUT_OF_RESOURCES)                                           \
    X(clCreateUserEvent, CL_OUT_OF_HOST_MEMORY)                                                    \
    X(clSetEventCallback, CL_OUT_OF_HOST_MEMORY)                                                   \
    X(clWaitForEvents, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)                               \
    X(clGetEventInfo, CL_OUT_OF_HOST_MEMORY)                                                       \
    X(clGetEventProfilingInfo, CL_PROFILING_INFO_NOT_AVAILABLE)                                    \
    X(clFlush, CL_OUT_OF_RESOURCES)                                                                \
    X(clFinish, CL_OUT_OF_RESOURCES)

/* Pass-through calls that only keep the reference counts (never failed: a release that fails
 * only leaks, and retain/release succeed on any valid object). */
#define SHIM_REFS(X)                                                                               \
    X(clRetainContext)                                                                             \
    X(clReleaseContext)                                                                            \
    X(clRetainCommandQueue)                                                                        \
    X(clReleaseCommandQueue)                                                                       \
    X(clRetainMemObject)                                                                           \
    X(clReleaseMemObject)                                                                          \
    X(clRetainProgram)                                                                             \
    X(clReleaseProgram)                                                                            \
    X(clRetainKernel)                                                                              \
    X(clReleaseKernel)                                                                             \
    X(clRetainEvent)                                                                               \
    X(clReleaseEvent)

/* clang-format off */
enum {
#define ID(name, err) F_##name,
    SHIM_FUNCS(ID)
#undef ID
#define ID(name) F_##name,
    SHIM_REFS(ID)
#undef ID
    F_COUNT,
    F_MALLOC = F_COUNT, /* a pseudo function for counting, never looked up */
    F_ALL
};
/* clang-format on */
enum { F_FALLIBLE = F_clFinish + 1 };

static const char *const fn_names[F_ALL] = {
#define NAME(name, err) #name,
    SHIM_FUNCS(NAME)
#undef NAME
#define NAME(name) #name,
        SHIM_REFS(NAME)
#undef NAME
            "malloc"};
static const cl_int fn_default_err[F_FALLIBLE] = {
#define ERR(name, err) err,
    SHIM_FUNCS(ERR)
#undef ERR
};

typedef void (*any_fn)(void);
static any_fn real_fns[F_COUNT];

static any_fn real_fn(int id)
{
    any_fn p = __atomic_load_n(&real_fns[id], __ATOMIC_ACQUIRE);
    if (!p) {
        void *sym = dlsym(RTLD_NEXT, fn_names[id]);
        if (!sym) {
            fprintf(stderr, "clshim: %s not found after the shim (is libOpenCL loaded?)\n",
                    fn_names[id]);
            abort();
        }
        memcpy(&p, &sym, sizeof p); /* POSIX: a dlsym result may be a function */
        __atomic_store_n(&real_fns[id], p, __ATOMIC_RELEASE);
    }
    return p;
}
#define REAL(name) ((__typeof__(&name))real_fn(F_##name))
#define RA __builtin_return_address(0)

/* ---- error names ------------------------------------------------------------------------- */

/* clang-format off */
#define E(x) {#x, x}
/* clang-format on */
static const struct {
    const char *name;
    cl_int code;
} cl_errs[] = {
    E(CL_SUCCESS),
    E(CL_DEVICE_NOT_FOUND),
    E(CL_DEVICE_NOT_AVAILABLE),
    E(CL_COMPILER_NOT_AVAILABLE),
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE),
    E(CL_OUT_OF_RESOURCES),
    E(CL_OUT_OF_HOST_MEMORY),
    E(CL_PROFILING_INFO_NOT_AVAILABLE),
    E(CL_BUILD_PROGRAM_FAILURE),
    E(CL_MAP_FAILURE),
    E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST),
    E(CL_DEVICE_PARTITION_FAILED),
    E(CL_INVALID_VALUE),
    E(CL_INVALID_DEVICE),
    E(CL_INVALID_CONTEXT),
    E(CL_INVALID_QUEUE_PROPERTIES),
    E(CL_INVALID_COMMAND_QUEUE),
    E(CL_INVALID_MEM_OBJECT),
    E(CL_INVALID_BINARY),
    E(CL_INVALID_BUILD_OPTIONS),
    E(CL_INVALID_PROGRAM),
    E(CL_INVALID_PROGRAM_EXECUTABLE),
    E(CL_INVALID_KERNEL_NAME),
    E(CL_INVALID_KERNEL),
    E(CL_INVALID_ARG_INDEX),
    E(CL_INVALID_ARG_VALUE),
    E(CL_INVALID_ARG_SIZE),
    E(CL_INVALID_KERNEL_ARGS),
    E(CL_INVALID_WORK_GROUP_SIZE),
    E(CL_INVALID_EVENT_WAIT_LIST),
    E(CL_INVALID_EVENT),
    E(CL_INVALID_OPERATION),
    E(CL_INVALID_BUFFER_SIZE),
    E(CL_INVALID_GLOBAL_WORK_SIZE),
#undef E
};

static const char *err_name(cl_int e)
{
    for (size_t i = 0; i < sizeof cl_errs / sizeof *cl_errs; i++)
        if (cl_errs[i].code == e)
            return cl_errs[i].name;
    return "CL_UNKNOWN_ERROR";
}

/* ---- the window: arming, counting, the one fault ------------------------------------------ */

static atomic_int armed;
static atomic_int malloc_armed;  /* armed with OKTO_FAULT_FN=malloc */
static atomic_int host_tracking; /* okto's blocks are tracked: on from the first arming */
static atomic_long ncalls;       /* counted calls since arming */
static atomic_long nnamed;       /* counted calls of the named function since arming */
static atomic_long per_fn[F_ALL];
static long fault_at;
static int fault_fn = -1; /* -1: any function */
static int fault_err_set;
static cl_int fault_err;
static atomic_int fired;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *trace;

static struct {
    int fn;
    cl_int err;
    long seq;
    char caller[64];
} hit;

/* The executable segments of "okto's code": the main executable and libokto.so. */
#define MAX_RANGES 16
static struct {
    uintptr_t lo, hi;
} okto_ranges[MAX_RANGES];
static int nranges;

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    const char *n = info->dlpi_name ? info->dlpi_name : "";
    if (n[0] && !strstr(n, "libokto"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum && nranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && (p->p_flags & PF_X)) {
            okto_ranges[nranges].lo = info->dlpi_addr + p->p_vaddr;
            okto_ranges[nranges].hi = info->dlpi_addr + p->p_vaddr + p->p_memsz;
            nranges++;
        }
    }
    return 0;
}

static int from_okto(const void *ra)
{
    uintptr_t a = (uintptr_t)ra;
    for (int i = 0; i < nranges; i++)
        if (a >= okto_ranges[i].lo && a < okto_ranges[i].hi)
            return 1;
    return 0;
}

/* "okto" (okto's code or the program), "clblast", "icd" (the loader itself) or a library. */
static void caller_of(const void *ra, char *buf, size_t len)
{
    Dl_info info;
    if (from_okto(ra) || !dladdr(ra, &info) || !info.dli_fname) {
        snprintf(buf, len, "okto");
        return;
    }
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    if (strstr(base, "libclblast"))
        snprintf(buf, len, "clblast");
    else if (strstr(base, "libOpenCL"))
        snprintf(buf, len, "icd");
    else
        snprintf(buf, len, "%s", base);
}

static int parse_err(const char *s, cl_int *out)
{
    for (size_t i = 0; i < sizeof cl_errs / sizeof *cl_errs; i++)
        if (strcmp(cl_errs[i].name, s) == 0) {
            *out = cl_errs[i].code;
            return 1;
        }
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end)
        return 0;
    *out = (cl_int)v;
    return 1;
}

SHIM_API void okto_fault_arm(void)
{
    atomic_store(&armed, 0);
    atomic_store(&malloc_armed, 0);
    const char *e = getenv("OKTO_FAULT_AT");
    fault_at = e && *e ? strtol(e, NULL, 10) : 0;
    fault_fn = -1;
    if ((e = getenv("OKTO_FAULT_FN")) && *e) {
        for (int i = 0; i < F_ALL; i++)
            if (strcmp(fn_names[i], e) == 0 && (i < F_FALLIBLE || i == F_MALLOC))
                fault_fn = i;
        if (fault_fn < 0) {
            fprintf(stderr, "clshim: OKTO_FAULT_FN=%s is not a function the shim can fail\n", e);
            exit(2);
        }
    }
    fault_err_set = 0;
    if ((e = getenv("OKTO_FAULT_ERR")) && *e) {
        if (!parse_err(e, &fault_err)) {
            fprintf(stderr, "clshim: OKTO_FAULT_ERR=%s is no CL_* name or number\n", e);
            exit(2);
        }
        fault_err_set = 1;
    }
    pthread_mutex_lock(&trace_lock);
    if (!trace && (e = getenv("OKTO_FAULT_TRACE")) && *e)
        trace = fopen(e, "w");
    pthread_mutex_unlock(&trace_lock);
    nranges = 0;
    dl_iterate_phdr(phdr_cb, NULL);
    atomic_store(&ncalls, 0);
    atomic_store(&nnamed, 0);
    for (int i = 0; i < F_ALL; i++)
        atomic_store(&per_fn[i], 0);
    atomic_store(&fired, 0);
    memset(&hit, 0, sizeof hit);
    hit.fn = -1;
    atomic_store(&malloc_armed, fault_fn == F_MALLOC);
    atomic_store(&host_tracking, 1);
    atomic_store(&armed, 1);
}

SHIM_API void okto_fault_disarm(void)
{
    atomic_store(&malloc_armed, 0);
    atomic_store(&armed, 0);
    pthread_mutex_lock(&trace_lock);
    if (trace)
        fflush(trace);
    pthread_mutex_unlock(&trace_lock);
}

/* Counted calls since arming (all functions; with OKTO_FAULT_FN=malloc the allocations). */
SHIM_API long okto_fault_calls(void) { return atomic_load(&ncalls); }

/* Counted calls of function `name` since arming; -1 for a name the shim does not count. */
SHIM_API long okto_fault_count(const char *name)
{
    for (int i = 0; i < F_ALL; i++)
        if (strcmp(fn_names[i], name) == 0)
            return atomic_load(&per_fn[i]);
    return -1;
}

/* 1 when the fault fired since arming: the function, its error, and who called it. */
SHIM_API int okto_fault_hit(const char **fn, int *err, const char **caller, long *seq)
{
    if (!atomic_load(&fired) || hit.fn < 0)
        return 0;
    if (fn)
        *fn = fn_names[hit.fn];
    if (err)
        *err = hit.err;
    if (caller)
        *caller = hit.caller;
    if (seq)
        *seq = hit.seq;
    return 1;
}

SHIM_API const char *okto_fault_err_name(int err) { return err_name(err); }

/* Decides one counted call: 1 (and *err) when this is the call that fails. */
static int inject(int id, cl_int *err, const void *ra)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed))
        return 0;
    if (id == F_MALLOC && !from_okto(ra))
        return 0;
    if (id != F_MALLOC && fault_fn == F_MALLOC)
        return 0; /* a malloc window counts allocations only */
    long n = atomic_fetch_add(&ncalls, 1) + 1;
    atomic_fetch_add(&per_fn[id], 1);
    long nf = fault_fn == id ? atomic_fetch_add(&nnamed, 1) + 1 : 0;
    if (trace && id != F_MALLOC) {
        char who[64];
        caller_of(ra, who, sizeof who);
        pthread_mutex_lock(&trace_lock);
        fprintf(trace, "%ld\t%s\t%s\n", n, fn_names[id], who);
        pthread_mutex_unlock(&trace_lock);
    }
    if (fault_at <= 0 || (fault_fn >= 0 ? nf != fault_at : n != fault_at))
        return 0;
    if (atomic_exchange(&fired, 1))
        return 0;
    hit.fn = id;
    hit.seq = n;
    hit.err = id == F_MALLOC ? 0 : fault_err_set ? fault_err : fn_default_err[id];
    if (id == F_MALLOC)
        snprintf(hit.caller, sizeof hit.caller, "okto");
    else
        caller_of(ra, hit.caller, sizeof hit.caller);
    if (err)
        *err = hit.err;
    if (getenv("OKTO_FAULT_QUIET") == NULL) {
        /* stderr through write(2)-sized stdio: no allocation here, malloc may be the target */
        fprintf(stderr, "clshim: call %ld: %s from %s fails with %s\n", n, fn_names[id], hit.caller,
                id == F_MALLOC ? "NULL (ENOMEM)" : err_name(hit.err));
    }
    if (getenv("OKTO_FAULT_BACKTRACE")) {
        void *frames[32];
        int n = backtrace(frames, 32);
        backtrace_symbols_fd(frames, n, 2);
    }
    return 1;
}

__attribute__((constructor)) static void shim_init(void)
{
    const char *e = getenv("OKTO_FAULT_AUTOARM");
    if (e && strcmp(e, "1") == 0)
        okto_fault_arm();
}

/* ---- API-level reference counts ------------------------------------------------------------ */

enum { K_CONTEXT, K_QUEUE, K_MEM, K_PROGRAM, K_KERNEL, K_EVENT, K_KINDS };
static const char *const kind_names[K_KINDS] = {"cl_context", "cl_command_queue", "cl_mem",
                                                "cl_program", "cl_kernel",        "cl_event"};

typedef struct obj {
    const void *h;
    int kind, refs;
    const void *ra; /* the return address of the call that made it: who to blame */
    struct obj *next;
} obj;
#define NBUCKETS 4096
static obj *buckets[NBUCKETS];
static pthread_mutex_t obj_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t bucket(const void *h)
{
    uint64_t x = (uint64_t)(uintptr_t)h;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 29;
    return (size_t)(x & (NBUCKETS - 1));
}

static void obj_ref_at(const void *h, int kind, int delta, const void *ra)
{
    if (!h)
        return;
    pthread_mutex_lock(&obj_lock);
    obj **pp = &buckets[bucket(h)], *o;
    while ((o = *pp) && o->h != h)
        pp = &o->next;
    if (!o && delta > 0) {
        o = calloc(1, sizeof *o);
        if (o) {
            o->h = h;
            o->kind = kind;
            o->ra = ra;
            o->next = buckets[bucket(h)];
            buckets[bucket(h)] = o;
        }
    }
    if (o) {
        o->refs += delta;
        if (o->refs <= 0) {
            /* unlink (re-find: the new-node path may have changed the head) */
            for (pp = &buckets[bucket(h)]; *pp != o; pp = &(*pp)->next)
                ;
            *pp = o->next;
            free(o);
        }
    }
    pthread_mutex_unlock(&obj_lock);
}

#define obj_ref(h, kind, delta) obj_ref_at((h), (kind), (delta), RA)

/* Objects the program holds API references to, and a summary ("2 cl_mem, 1 cl_event"). */
SHIM_API long okto_fault_live(char *buf, size_t len)
{
    long n[K_KINDS] = {0}, total = 0;
    pthread_mutex_lock(&obj_lock);
    for (int b = 0; b < NBUCKETS; b++)
        for (obj *o = buckets[b]; o; o = o->next)
            n[o->kind]++, total++;
    pthread_mutex_unlock(&obj_lock);
    if (buf && len) {
        size_t off = 0;
        buf[0] = 0;
        for (int k = 0; k < K_KINDS && off < len; k++)
            if (n[k])
                off += (size_t)snprintf(buf + off, len - off, "%s%ld %s", off ? ", " : "", n[k],
                                        kind_names[k]);
    }
    return total;
}

__attribute__((destructor)) static void shim_fini(void)
{
    if (!getenv("OKTO_FAULT_LIVE_AT_EXIT"))
        return;
    char buf[256];
    long n = okto_fault_live(buf, sizeof buf);
    fprintf(stderr, "clshim: %ld OpenCL object%s still referenced at exit%s%s%s\n", n,
            n == 1 ? "" : "s", n ? " (" : "", buf, n ? ")" : "");
    for (int b = 0; b < NBUCKETS; b++)
        for (obj *o = buckets[b]; o; o = o->next) {
            Dl_info info;
            int ok = dladdr(o->ra, &info) && info.dli_fname;
            fprintf(stderr, "clshim:   %s %p (%d reference%s), made by a call from %s+0x%lx\n",
                    kind_names[o->kind], o->h, o->refs, o->refs == 1 ? "" : "s",
                    ok ? info.dli_fname : "?",
                    ok ? (unsigned long)((const char *)o->ra - (const char *)info.dli_fbase) : 0ul);
        }
}

/* ---- the wrappers ------------------------------------------------------------------------- */

/* A call returning cl_int. */
#define STATUS_CALL(name, ...)                                                                     \
    do {                                                                                           \
        cl_int e_;                                                                                 \
        if (inject(F_##name, &e_, RA))                                                             \
            return e_;                                                                             \
        return REAL(name)(__VA_ARGS__);                                                            \
    } while (0)
/* A call returning cl_int whose last parameter may receive a new event. */
#define EVENT_CALL(name, event, ...)                                                               \
    do {                                                                                           \
        cl_int e_;                                                                                 \
        if (inject(F_##name, &e_, RA))                                                             \
            return e_;                                                                             \
        cl_int r_ = REAL(name)(__VA_ARGS__);                                                       \
        if (r_ == CL_SUCCESS && (event))                                                           \
            obj_ref(*(event), K_EVENT, 1);                                                         \
        return r_;                                                                                 \
    } while (0)
/* A call creating an object, reporting through errcode_ret. */
#define CREATE_CALL(name, kind, errcode_ret, ...)                                                  \
    do {                                                                                           \
        cl_int e_;                                                                                 \
        if (inject(F_##name, &e_, RA)) {                                                           \
            if (errcode_ret)                                                                       \
                *(errcode_ret) = e_;                                                               \
            return NULL;                                                                           \
        }                                                                                          \
        __typeof__(REAL(name)(__VA_ARGS__)) o_ = REAL(name)(__VA_ARGS__);                          \
        obj_ref(o_, kind, 1);                                                                      \
        return o_;                                                                                 \
    } while (0)
#define REF_CALL(name, kind, delta, h)                                                             \
    do {                                                                                           \
        cl_int r_ = REAL(name)(h);                                                                 \
        if (r_ == CL_SUCCESS)                                                                      \
            obj_ref((h), kind, delta);                                                             \
        else if (getenv("OKTO_FAULT_LIVE_AT_EXIT"))                                                \
            fprintf(stderr, "clshim: %s(%p) failed: %s\n", #name, (void *)(h), err_name(r_));      \
        return r_;                                                                                 \
    } while (0)

#define API SHIM_API CL_API_ENTRY

API cl_int CL_API_CALL clGetPlatformIDs(cl_uint n, cl_platform_id *p, cl_uint *np)
{
    STATUS_CALL(clGetPlatformIDs, n, p, np);
}

API cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id p, cl_platform_info w, size_t n, void *v,
                                         size_t *r)
{
    STATUS_CALL(clGetPlatformInfo, p, w, n, v, r);
}

API cl_int CL_API_CALL clGetDeviceIDs(cl_platform_id p, cl_device_type t, cl_uint n,
                                      cl_device_id *d, cl_uint *nd)
{
    STATUS_CALL(clGetDeviceIDs, p, t, n, d, nd);
}

API cl_int CL_API_CALL clGetDeviceInfo(cl_device_id d, cl_device_info w, size_t n, void *v,
                                       size_t *r)
{
    STATUS_CALL(clGetDeviceInfo, d, w, n, v, r);
}

API cl_int CL_API_CALL clCreateSubDevices(cl_device_id d, const cl_device_partition_property *p,
                                          cl_uint n, cl_device_id *out, cl_uint *nret)
{
    STATUS_CALL(clCreateSubDevices, d, p, n, out, nret);
}

API cl_context CL_API_CALL clCreateContext(
    const cl_context_properties *p, cl_uint n, const cl_device_id *d,
    void(CL_CALLBACK *cb)(const char *, const void *, size_t, void *), void *u, cl_int *err)
{
    CREATE_CALL(clCreateContext, K_CONTEXT, err, p, n, d, cb, u, err);
}

API cl_int CL_API_CALL clGetContextInfo(cl_context c, cl_context_info w, size_t n, void *v,
                                        size_t *r)
{
    STATUS_CALL(clGetContextInfo, c, w, n, v, r);
}

API cl_command_queue CL_API_CALL clCreateCommandQueue(cl_context c, cl_device_id d,
                                                      cl_command_queue_properties p, cl_int *err)
{
    CREATE_CALL(clCreateCommandQueue, K_QUEUE, err, c, d, p, err);
}

API cl_int CL_API_CALL clGetCommandQueueInfo(cl_command_queue q, cl_command_queue_info w, size_t n,
                                             void *v, size_t *r)
{
    STATUS_CALL(clGetCommandQueueInfo, q, w, n, v, r);
}

API cl_mem CL_API_CALL clCreateBuffer(cl_context c, cl_mem_flags f, size_t n, void *h, cl_int *err)
{
    CREATE_CALL(clCreateBuffer, K_MEM, err, c, f, n, h, err);
}

API cl_int CL_API_CALL clGetMemObjectInfo(cl_mem m, cl_mem_info w, size_t n, void *v, size_t *r)
{
    STATUS_CALL(clGetMemObjectInfo, m, w, n, v, r);
}

API cl_program CL_API_CALL clCreateProgramWithSource(cl_context c, cl_uint n, const char **s,
                                                     const size_t *l, cl_int *err)
{
    CREATE_CALL(clCreateProgramWithSource, K_PROGRAM, err, c, n, s, l, err);
}

API cl_program CL_API_CALL clCreateProgramWithBinary(cl_context c, cl_uint n, const cl_device_id *d,
                                                     const size_t *l, const unsigned char **b,
                                                     cl_int *bs, cl_int *err)
{
    CREATE_CALL(clCreateProgramWithBinary, K_PROGRAM, err, c, n, d, l, b, bs, err);
}

API cl_int CL_API_CALL clBuildProgram(cl_program p, cl_uint n, const cl_device_id *d, const char *o,
                                      void(CL_CALLBACK *cb)(cl_program, void *), void *u)
{
    STATUS_CALL(clBuildProgram, p, n, d, o, cb, u);
}

API cl_int CL_API_CALL clGetProgramInfo(cl_program p, cl_program_info w, size_t n, void *v,
                                        size_t *r)
{
    STATUS_CALL(clGetProgramInfo, p, w, n, v, r);
}

API cl_int CL_API_CALL clGetProgramBuildInfo(cl_program p, cl_device_id d, cl_program_build_info w,
                                             size_t n, void *v, size_t *r)
{
    STATUS_CALL(clGetProgramBuildInfo, p, d, w, n, v, r);
}

API cl_kernel CL_API_CALL clCreateKernel(cl_program p, const char *name, cl_int *err)
{
    CREATE_CALL(clCreateKernel, K_KERNEL, err, p, name, err);
}

API cl_int CL_API_CALL clGetKernelInfo(cl_kernel k, cl_kernel_info w, size_t n, void *v, size_t *r)
{
    STATUS_CALL(clGetKernelInfo, k, w, n, v, r);
}

API cl_int CL_API_CALL clGetKernelWorkGroupInfo(cl_kernel k, cl_device_id d,
                                                cl_kernel_work_group_info w, size_t n, void *v,
                                                size_t *r)
{
    STATUS_CALL(clGetKernelWorkGroupInfo, k, d, w, n, v, r);
}

API cl_int CL_API_CALL clSetKernelArg(cl_kernel k, cl_uint i, size_t n, const void *v)
{
    STATUS_CALL(clSetKernelArg, k, i, n, v);
}

API cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dim,
                                              const size_t *off, const size_t *g, const size_t *l,
                                              cl_uint nw, const cl_event *w, cl_event *e)
{
    EVENT_CALL(clEnqueueNDRangeKernel, e, q, k, dim, off, g, l, nw, w, e);
}

API cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue q, cl_mem m, cl_bool b, size_t off,
                                           size_t n, void *p, cl_uint nw, const cl_event *w,
                                           cl_event *e)
{
    EVENT_CALL(clEnqueueReadBuffer, e, q, m, b, off, n, p, nw, w, e);
}

API cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue q, cl_mem m, cl_bool b, size_t off,
                                            size_t n, const void *p, cl_uint nw, const cl_event *w,
                                            cl_event *e)
{
    EVENT_CALL(clEnqueueWriteBuffer, e, q, m, b, off, n, p, nw, w, e);
}

API cl_int CL_API_CALL clEnqueueCopyBuffer(cl_command_queue q, cl_mem s, cl_mem d, size_t so,
                                           size_t dof, size_t n, cl_uint nw, const cl_event *w,
                                           cl_event *e)
{
    EVENT_CALL(clEnqueueCopyBuffer, e, q, s, d, so, dof, n, nw, w, e);
}

API cl_int CL_API_CALL clEnqueueFillBuffer(cl_command_queue q, cl_mem m, const void *pat, size_t ps,
                                           size_t off, size_t n, cl_uint nw, const cl_event *w,
                                           cl_event *e)
{
    EVENT_CALL(clEnqueueFillBuffer, e, q, m, pat, ps, off, n, nw, w, e);
}

API cl_int CL_API_CALL clEnqueueMarkerWithWaitList(cl_command_queue q, cl_uint nw,
                                                   const cl_event *w, cl_event *e)
{
    EVENT_CALL(clEnqueueMarkerWithWaitList, e, q, nw, w, e);
}

API cl_int CL_API_CALL clEnqueueBarrierWithWaitList(cl_command_queue q, cl_uint nw,
                                                    const cl_event *w, cl_event *e)
{
    EVENT_CALL(clEnqueueBarrierWithWaitList, e, q, nw, w, e);
}

API cl_event CL_API_CALL clCreateUserEvent(cl_context c, cl_int *err)
{
    CREATE_CALL(clCreateUserEvent, K_EVENT, err, c, err);
}

API cl_int CL_API_CALL clSetEventCallback(cl_event ev, cl_int t,
                                          void(CL_CALLBACK *cb)(cl_event, cl_int, void *), void *u)
{
    STATUS_CALL(clSetEventCallback, ev, t, cb, u);
}

API cl_int CL_API_CALL clWaitForEvents(cl_uint n, const cl_event *e)
{
    STATUS_CALL(clWaitForEvents, n, e);
}

API cl_int CL_API_CALL clGetEventInfo(cl_event ev, cl_event_info w, size_t n, void *v, size_t *r)
{
    STATUS_CALL(clGetEventInfo, ev, w, n, v, r);
}

API cl_int CL_API_CALL clGetEventProfilingInfo(cl_event ev, cl_profiling_info w, size_t n, void *v,
                                               size_t *r)
{
    STATUS_CALL(clGetEventProfilingInfo, ev, w, n, v, r);
}

API cl_int CL_API_CALL clFlush(cl_command_queue q) { STATUS_CALL(clFlush, q); }

API cl_int CL_API_CALL clFinish(cl_command_queue q) { STATUS_CALL(clFinish, q); }

API cl_int CL_API_CALL clRetainContext(cl_context c) { REF_CALL(clRetainContext, K_CONTEXT, 1, c); }
API cl_int CL_API_CALL clReleaseContext(cl_context c)
{
    REF_CALL(clReleaseContext, K_CONTEXT, -1, c);
}
API cl_int CL_API_CALL clRetainCommandQueue(cl_command_queue q)
{
    REF_CALL(clRetainCommandQueue, K_QUEUE, 1, q);
}
API cl_int CL_API_CALL clReleaseCommandQueue(cl_command_queue q)
{
    REF_CALL(clReleaseCommandQueue, K_QUEUE, -1, q);
}
API cl_int CL_API_CALL clRetainMemObject(cl_mem m) { REF_CALL(clRetainMemObject, K_MEM, 1, m); }
API cl_int CL_API_CALL clReleaseMemObject(cl_mem m) { REF_CALL(clReleaseMemObject, K_MEM, -1, m); }
API cl_int CL_API_CALL clRetainProgram(cl_program p) { REF_CALL(clRetainProgram, K_PROGRAM, 1, p); }
API cl_int CL_API_CALL clReleaseProgram(cl_program p)
{
    REF_CALL(clReleaseProgram, K_PROGRAM, -1, p);
}
API cl_int CL_API_CALL clRetainKernel(cl_kernel k) { REF_CALL(clRetainKernel, K_KERNEL, 1, k); }
API cl_int CL_API_CALL clReleaseKernel(cl_kernel k) { REF_CALL(clReleaseKernel, K_KERNEL, -1, k); }
API cl_int CL_API_CALL clRetainEvent(cl_event e) { REF_CALL(clRetainEvent, K_EVENT, 1, e); }
API cl_int CL_API_CALL clReleaseEvent(cl_event e) { REF_CALL(clReleaseEvent, K_EVENT, -1, e); }

/* ---- host allocations ---------------------------------------------------------------------- */
#ifdef OKTO_SHIM_NO_ALLOC
SHIM_API long okto_fault_host_live(size_t *bytes)
{
    if (bytes)
        *bytes = 0;
    return -1; /* not tracked */
}
#else

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

typedef struct hblock {
    void *p;
    size_t n;
    struct hblock *next;
} hblock;
static hblock *hbuckets[NBUCKETS];
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;

static void host_add(void *p, size_t n)
{
    hblock *b = __libc_malloc(sizeof *b); /* not malloc: that would track itself */
    if (!b)
        return;
    b->p = p;
    b->n = n;
    pthread_mutex_lock(&host_lock);
    b->next = hbuckets[bucket(p)];
    hbuckets[bucket(p)] = b;
    pthread_mutex_unlock(&host_lock);
}

static int host_del(void *p)
{
    pthread_mutex_lock(&host_lock);
    hblock **pp = &hbuckets[bucket(p)], *b;
    while ((b = *pp) && b->p != p)
        pp = &b->next;
    if (b)
        *pp = b->next;
    pthread_mutex_unlock(&host_lock);
    __libc_free(b);
    return b != NULL;
}

/* Blocks allocated by okto's code since the first arming and not freed yet (*bytes: their
 * size); -1 where the shim tracks none (a sanitizer build). */
SHIM_API long okto_fault_host_live(size_t *bytes)
{
    long n = 0;
    size_t sum = 0;
    pthread_mutex_lock(&host_lock);
    for (int i = 0; i < NBUCKETS; i++)
        for (hblock *b = hbuckets[i]; b; b = b->next)
            n++, sum += b->n;
    pthread_mutex_unlock(&host_lock);
    if (bytes)
        *bytes = sum;
    return n;
}

static int alloc_fails(const void *ra)
{
    if (!atomic_load_explicit(&malloc_armed, memory_order_relaxed))
        return 0;
    if (!inject(F_MALLOC, NULL, ra))
        return 0;
    errno = ENOMEM;
    return 1;
}

static int tracked(const void *ra)
{
    return atomic_load_explicit(&host_tracking, memory_order_relaxed) && from_okto(ra);
}

SHIM_API void *malloc(size_t n)
{
    if (alloc_fails(RA))
        return NULL;
    void *p = __libc_malloc(n);
    if (p && tracked(RA))
        host_add(p, n);
    return p;
}

SHIM_API void *calloc(size_t n, size_t m)
{
    if (alloc_fails(RA))
        return NULL;
    void *p = __libc_calloc(n, m);
    if (p && tracked(RA))
        host_add(p, n * m);
    return p;
}

SHIM_API void *realloc(void *p, size_t n)
{
    if (alloc_fails(RA))
        return NULL;
    void *q = __libc_realloc(p, n);
    if (q && atomic_load_explicit(&host_tracking, memory_order_relaxed)) {
        int was = p && host_del(p);
        if (was || from_okto(RA))
            host_add(q, n);
    }
    return q;
}

SHIM_API void free(void *p)
{
    if (p && atomic_load_explicit(&host_tracking, memory_order_relaxed))
        host_del(p);
    __libc_free(p);
}
#endif
