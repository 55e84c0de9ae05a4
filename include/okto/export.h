/* okto/export.h: symbol visibility. Only what carries OKTO_API is exported from the shared
 * library; everything else stays hidden so the ABI is exactly the public headers. */
#ifndef OKTO_EXPORT_H
#define OKTO_EXPORT_H

#if defined(_WIN32)
#  if defined(OKTO_BUILDING)
#    define OKTO_API __declspec(dllexport)
#  else
#    define OKTO_API
#  endif
#elif defined(__GNUC__)
#  define OKTO_API __attribute__((visibility("default")))
#else
#  define OKTO_API
#endif

/* OpenCL 1.2 is the API level okto targets: it is what every vendor ships (NVIDIA included). */
#ifndef CL_TARGET_OPENCL_VERSION
#  define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>

#endif
