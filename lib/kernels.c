/* lib/kernels.c: the built-in program (the cl/ sources, embedded at build time) and program builds
 * with the build log in okto_last_error on failure. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

extern const char *const okto__cl_lines[];
extern const unsigned okto__cl_nlines;

static okto_status build_lines(okto_context *ctx, const char *const *lines, cl_uint nlines,
                               const char *what, cl_program *out)
{
    cl_int err;
    *out = NULL;
    cl_program prog = clCreateProgramWithSource(ctx->cl, nlines, (const char **)lines, NULL,
                                                &err);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, "clCreateProgramWithSource", "%s", what);
    /* all devices of the context: the lanes' sub-devices too */
    err = clBuildProgram(prog, 0, NULL, "-cl-std=CL1.2", NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t len = 0;
        char log[3000] = "";
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &len);
        clReleaseProgram(prog);
        return okto__fail(ctx, err == CL_BUILD_PROGRAM_FAILURE ? OKTO_EBUILD : OKTO_ECL,
                          "clBuildProgram failed for %s: %s (%d); build log:\n%s", what,
                          okto__cl_name(err), (int)err, log);
    }
    *out = prog;
    return OKTO_OK;
}

okto_status okto__build(okto_context *ctx, const char *source, const char *what,
                        cl_program *out)
{
    return build_lines(ctx, &source, 1, what, out);
}

okto_status okto__program(okto_context *ctx, cl_program *out)
{
    okto_status s = OKTO_OK;
    pthread_mutex_lock(&ctx->prog_lock);
    if (!ctx->program)
        s = build_lines(ctx, okto__cl_lines, okto__cl_nlines, "okto's built-in kernels",
                        &ctx->program);
    *out = ctx->program;
    pthread_mutex_unlock(&ctx->prog_lock);
    return s;
}

okto_status okto__kernel_args(okto_context *ctx, const char *name, const char *op, int nargs,
                              const okto__karg *args, cl_kernel *out)
{
    cl_kernel k;
    okto_status s = okto__kernel(ctx, name, &k);
    if (s != OKTO_OK)
        return s;
    cl_uint idx = 0;
    for (int i = 0; i < nargs; i++) {
        cl_int err = args[i].t ? okto__set_tensor_arg(k, idx, args[i].t, args[i].r0)
                               : clSetKernelArg(k, idx, args[i].size, args[i].v);
        if (err != CL_SUCCESS) {
            clReleaseKernel(k);
            return okto__fail_cl(ctx, err, "clSetKernelArg", "%s: kernel %s, parameter %u", op,
                                 name, idx);
        }
        idx += args[i].t ? 2 : 1;
    }
    *out = k;
    return OKTO_OK;
}

okto_status okto__kernel(okto_context *ctx, const char *name, cl_kernel *out)
{
    cl_program prog;
    okto_status s = okto__program(ctx, &prog);
    if (s != OKTO_OK)
        return s;
    cl_int err;
    *out = clCreateKernel(prog, name, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return okto__fail_cl(ctx, err, "clCreateKernel", "built-in kernel %s", name);
    }
    return OKTO_OK;
}
