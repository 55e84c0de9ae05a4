/* lib/status.c: the status table, OpenCL and CLBlast error names, okto_last_error and logging. */
#include "ctx.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *okto_status_str(okto_status s)
{
    switch (s) {
#define OKTO__STATUS_STR(name, value, msg)                                                         \
    case OKTO_##name: return "OKTO_" #name ": " msg;
        OKTO_STATUS_MAP(OKTO__STATUS_STR)
#undef OKTO__STATUS_STR
    }
    return "OKTO_UNKNOWN: unknown status code";
}

const char *okto_status_name(okto_status s)
{
    switch (s) {
#define OKTO__STATUS_NAME(name, value, msg)                                                        \
    case OKTO_##name: return "OKTO_" #name;
        OKTO_STATUS_MAP(OKTO__STATUS_NAME)
#undef OKTO__STATUS_NAME
    }
    return NULL;
}

const char *okto__cl_name(cl_int err)
{
    switch (err) {
#define C(x)                                                                                       \
    case x: return #x;
        C(CL_SUCCESS)
        C(CL_DEVICE_NOT_FOUND) C(CL_DEVICE_NOT_AVAILABLE) C(CL_COMPILER_NOT_AVAILABLE) C(
            CL_MEM_OBJECT_ALLOCATION_FAILURE) C(CL_OUT_OF_RESOURCES) C(CL_OUT_OF_HOST_MEMORY)
            C(CL_PROFILING_INFO_NOT_AVAILABLE) C(CL_MEM_COPY_OVERLAP) C(CL_IMAGE_FORMAT_MISMATCH) C(
                CL_IMAGE_FORMAT_NOT_SUPPORTED) C(CL_BUILD_PROGRAM_FAILURE) C(CL_MAP_FAILURE)
                C(CL_MISALIGNED_SUB_BUFFER_OFFSET) C(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) C(
                    CL_COMPILE_PROGRAM_FAILURE) C(CL_LINKER_NOT_AVAILABLE) C(CL_LINK_PROGRAM_FAILURE)
                    C(CL_DEVICE_PARTITION_FAILED) C(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) C(
                        CL_INVALID_VALUE) C(CL_INVALID_DEVICE_TYPE) C(CL_INVALID_PLATFORM)
                        C(CL_INVALID_DEVICE) C(CL_INVALID_CONTEXT) C(CL_INVALID_QUEUE_PROPERTIES) C(
                            CL_INVALID_COMMAND_QUEUE) C(CL_INVALID_HOST_PTR) C(CL_INVALID_MEM_OBJECT)
                            C(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) C(CL_INVALID_IMAGE_SIZE) C(
                                CL_INVALID_SAMPLER) C(CL_INVALID_BINARY) C(CL_INVALID_BUILD_OPTIONS)
                                C(CL_INVALID_PROGRAM) C(CL_INVALID_PROGRAM_EXECUTABLE) C(
                                    CL_INVALID_KERNEL_NAME) C(CL_INVALID_KERNEL_DEFINITION)
                                    C(CL_INVALID_KERNEL) C(CL_INVALID_ARG_INDEX) C(
                                        CL_INVALID_ARG_VALUE) C(CL_INVALID_ARG_SIZE)
                                        C(CL_INVALID_KERNEL_ARGS) C(CL_INVALID_WORK_DIMENSION) C(
                                            CL_INVALID_WORK_GROUP_SIZE) C(CL_INVALID_WORK_ITEM_SIZE)
                                            C(CL_INVALID_GLOBAL_OFFSET) C(
                                                CL_INVALID_EVENT_WAIT_LIST) C(CL_INVALID_EVENT)
                                                C(CL_INVALID_OPERATION) C(CL_INVALID_GL_OBJECT) C(
                                                    CL_INVALID_BUFFER_SIZE) C(CL_INVALID_MIP_LEVEL)
                                                    C(CL_INVALID_GLOBAL_WORK_SIZE)
                                                        C(CL_INVALID_PROPERTY) C(
                                                            CL_INVALID_IMAGE_DESCRIPTOR)
                                                            C(CL_INVALID_COMPILER_OPTIONS) C(
                                                                CL_INVALID_LINKER_OPTIONS)
                                                                C(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef C
                                                                    case -1001
            : return "CL_PLATFORM_NOT_FOUND_KHR";
    case -1057:
        return "CL_DEVICE_PARTITION_FAILED_EXT";
        /* CLBlast passes OpenCL codes through and has its own below -1000 (clblast_c.h) */
#define B(code, name)                                                                              \
    case code: return #name;
        B(-1024, CLBlastNotImplemented)
        B(-1022, CLBlastInvalidMatrixA) B(-1021, CLBlastInvalidMatrixB)
            B(-1020, CLBlastInvalidMatrixC) B(-1019, CLBlastInvalidVectorX) B(
                -1018, CLBlastInvalidVectorY) B(-1017, CLBlastInvalidDimension)
                B(-1016, CLBlastInvalidLeadDimA) B(-1015, CLBlastInvalidLeadDimB) B(
                    -1014, CLBlastInvalidLeadDimC) B(-1013, CLBlastInvalidIncrementX)
                    B(-1012, CLBlastInvalidIncrementY) B(-1011, CLBlastInsufficientMemoryA) B(
                        -1010, CLBlastInsufficientMemoryB) B(-1009, CLBlastInsufficientMemoryC)
                        B(-1008, CLBlastInsufficientMemoryX) B(-1007, CLBlastInsufficientMemoryY) B(
                            -2050, CLBlastInsufficientMemoryTemp) B(-2049, CLBlastInvalidBatchCount)
                            B(-2048, CLBlastInvalidOverrideKernel)
                                B(-2047, CLBlastMissingOverrideParameter)
                                    B(-2046, CLBlastInvalidLocalMemUsage)
                                        B(-2045, CLBlastNoHalfPrecision)
                                            B(-2044, CLBlastNoDoublePrecision)
                                                B(-2043, CLBlastInvalidVectorScalar)
                                                    B(-2042, CLBlastInsufficientMemoryScalar)
                                                        B(-2041, CLBlastDatabaseError)
                                                            B(-2040, CLBlastUnknownError)
                                                                B(-2039, CLBlastUnexpectedError)
#undef B
    }
    return "CL_UNKNOWN_ERROR";
}

okto_status okto__cl_status(cl_int err)
{
    switch (err) {
    case CL_OUT_OF_HOST_MEMORY:
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES: /* the device ran out of something: memory, in practice */
    case -2050: /* CLBlastInsufficientMemoryTemp */ return OKTO_ENOMEM;
    case -2045: /* CLBlastNoHalfPrecision */
    case -2044: /* CLBlastNoDoublePrecision */
    case -1024: /* CLBlastNotImplemented */ return OKTO_ENOTSUP;
    default: return OKTO_ECL;
    }
}

/* The calling thread's copy of the last message: okto_last_error(NULL), and the stable buffer
 * okto_last_error(ctx) copies into so the caller never reads a string another thread writes. */
static _Thread_local char tls_err[OKTO__ERR_MAX];
static _Thread_local char tls_view[OKTO__ERR_MAX];

static okto_status record(okto_context *ctx, okto_status s, const char *msg)
{
    snprintf(tls_err, sizeof tls_err, "%s", msg);
    if (ctx) {
        pthread_mutex_lock(&ctx->err_lock);
        snprintf(ctx->err, sizeof ctx->err, "%s", msg);
        pthread_mutex_unlock(&ctx->err_lock);
    }
    okto__log(ctx, OKTO_LOG_DEBUG, "%s: %s", okto_status_name(s), msg);
    return s;
}

okto_status okto__fail(okto_context *ctx, okto_status s, const char *fmt, ...)
{
    char msg[OKTO__ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return record(ctx, s, msg);
}

okto_status okto__fail_cl(okto_context *ctx, cl_int err, const char *call, const char *fmt, ...)
{
    char what[OKTO__ERR_MAX / 2] = "";
    char msg[OKTO__ERR_MAX];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
    }
    okto_status s = okto__cl_status(err);
    snprintf(msg, sizeof msg, "%s failed: %s (%d)%s%s", call, okto__cl_name(err), (int)err,
             what[0] ? ": " : "", what);
    return record(ctx, s, msg);
}

const char *okto_last_error(const okto_context *ctx)
{
    if (!ctx)
        return tls_err;
    okto_context *c = (okto_context *)ctx; /* the lock is not part of its logical state */
    pthread_mutex_lock(&c->err_lock);
    snprintf(tls_view, sizeof tls_view, "%s", c->err);
    pthread_mutex_unlock(&c->err_lock);
    return tls_view;
}

static okto_log_level env_log_level(void)
{
    static atomic_int cached = -1;
    int v = atomic_load(&cached);
    if (v >= 0)
        return (okto_log_level)v;
    const char *e = getenv("OKTO_LOG");
    v = OKTO_LOG_WARN;
    if (e && strcmp(e, "error") == 0)
        v = OKTO_LOG_ERROR;
    if (e && strcmp(e, "info") == 0)
        v = OKTO_LOG_INFO;
    if (e && strcmp(e, "debug") == 0)
        v = OKTO_LOG_DEBUG;
    atomic_store(&cached, v);
    return (okto_log_level)v;
}

void okto__log(const okto_context *ctx, okto_log_level lvl, const char *fmt, ...)
{
    okto_log_level max = ctx ? ctx->cfg.log : env_log_level();
    if (lvl > max)
        return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    char msg[OKTO__ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "okto %s: %s\n", names[lvl], msg);
}

int okto__device_info(cl_device_id d, cl_device_info what, const char *name, size_t size, void *out)
{
    cl_int err = clGetDeviceInfo(d, what, size, out, NULL);
    if (err != CL_SUCCESS)
        okto__log(NULL, OKTO_LOG_WARN, "clGetDeviceInfo(%s) failed: %s (%d); using a default", name,
                  okto__cl_name(err), (int)err);
    return err == CL_SUCCESS ? 0 : -1;
}

const char *okto__dtypes_str(unsigned mask, char *buf, size_t len)
{
    size_t off = 0;
    int n = 0, total = 0;
    for (int d = 0; d < OKTO_DTYPE_COUNT; d++)
        total += (mask >> d) & 1;
    buf[0] = 0;
    for (int d = 0; d < OKTO_DTYPE_COUNT && off < len; d++) {
        if (!((mask >> d) & 1))
            continue;
        n++;
        off += (size_t)snprintf(buf + off, len - off, "%s%s",
                                n == 1       ? ""
                                : n == total ? " or "
                                             : ", ",
                                okto_dtype_name((okto_dtype)d));
    }
    return buf;
}

const char *okto_version(void) { return OKTO_VERSION_STRING; }

double okto__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
