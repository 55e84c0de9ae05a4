/* okto/okto.h: the umbrella header. okto keeps an OpenCL device busy with several lanes (queues,
 * each with a host thread) steered by one coordinator that plans a task graph. */
#ifndef OKTO_OKTO_H
#define OKTO_OKTO_H

#include "status.h"
#include "context.h"
#include "tensor.h"
#include "report.h"
#include "graph.h"
#include "ops.h"

#define OKTO_VERSION_MAJOR 0
#define OKTO_VERSION_MINOR 1
#define OKTO_VERSION_PATCH 0

#endif
