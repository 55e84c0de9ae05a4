/* okto/okto.h: the umbrella header. okto keeps an OpenCL device busy with several lanes (queues,
 * each with a host thread) steered by one coordinator that plans a task graph. */
#ifndef OKTO_OKTO_H
#define OKTO_OKTO_H

#include "version.h"
#include "status.h"
#include "context.h"
#include "tensor.h"
#include "report.h"
#include "graph.h"
#include "ops.h"
#include "autograd.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library that is running ("0.2.0"), which may differ from the header's
 * OKTO_VERSION_STRING when a program runs against another build. */
OKTO_API const char *okto_version(void);

#ifdef __cplusplus
}
#endif
#endif
