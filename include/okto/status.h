/* okto/status.h: the one error channel. Every call that can fail returns okto_status: OKTO_OK
 * (0) or a negative code. The enum, the names and the messages come from one X-macro table so
 * they never drift apart. Details of the last failure (the OpenCL call and its CL_* name, the
 * argument, the shapes) are in okto_last_error(). */
#ifndef OKTO_STATUS_H
#define OKTO_STATUS_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OKTO_STATUS_MAP(X)                                                              \
    X(OK, 0, "success")                                                                 \
    X(EINVAL, -1, "invalid argument")                                                   \
    X(ENOMEM, -2, "out of memory")                                                      \
    X(ENODEV, -3, "no OpenCL device")                                                   \
    X(ECL, -4, "OpenCL call failed")                                                    \
    X(EBUILD, -5, "kernel build failed")                                                \
    X(EBUSY, -6, "resource busy")                                                       \
    X(ESTATE, -7, "operation not allowed in this state")                                \
    X(EIO, -8, "input/output error")                                                    \
    X(ENOTSUP, -9, "not supported")

typedef enum okto_status {
#define OKTO__STATUS_ENUM(name, value, msg) OKTO_##name = (value),
    OKTO_STATUS_MAP(OKTO__STATUS_ENUM)
#undef OKTO__STATUS_ENUM
} okto_status;

/* "OKTO_EINVAL: invalid argument"; a static string, also for unknown codes. */
OKTO_API const char *okto_status_str(okto_status s);
/* "OKTO_EINVAL"; NULL for a code that is not in the table. */
OKTO_API const char *okto_status_name(okto_status s);

struct okto_context;
/* Details of the last failure. With a context: the last failure of any call on that context.
 * With NULL: the last failure of any okto call made by the calling thread (the only way to
 * learn why okto_context_create failed). The string is owned by okto and stays valid on the
 * calling thread until its next okto call; "" when nothing failed yet. */
OKTO_API const char *okto_last_error(const struct okto_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
