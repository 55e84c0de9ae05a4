/* lib/kernels.c: the built-in program (the cl/ sources, embedded at build time) and program builds
 * with the build log in okto_last_error on failure.
 *
 * Launch geometry. PoCL 3.1 (Debian 12) keeps compiled work-group functions in a cache looked up
 * by (kernel, local size, grid width <= the entry's) but released by (kernel, local size) only.
 * A launch wider than any before adds a second entry for the same kernel and local size, after
 * which two such commands in flight at once can release each other's entry and PoCL aborts
 * ("pocl_release_dlhandle_cache: Assertion found->ref_count > 0"); seen here with 3 lanes,
 * whose row parts differ in size and run concurrently. (Later PoCL releases the entry the
 * command took.) So on CPUs okto never launches one kernel with one local size at two grid
 * widths:
 *   - 1-D kernels (one item per element, which PoCL vectorizes across items) get one of a
 *     ladder of widths, the first >= n, and each width its own local size: 64 + 16 c items for
 *     width class c (at least 2^(c+6) items). A kernel and local size thus always come with one
 *     width; a tensor costs at most 2x idle items, which exit at once.
 *   - row kernels run a fixed number of work-groups and loop over the rows or tasks: softmax
 *     with okto__grid_groups, the reductions with their own shapes (lib/ops/reduce.c).
 * GPUs have no such cache: there 1-D kernels use groups of OKTO__WG. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

extern const char *const okto__cl_lines[];
extern const unsigned okto__cl_nlines;

static okto_status build_lines(okto_context *ctx, const char *const *lines, cl_uint nlines,
                               const char *options, const char *what, cl_program *out)
{
    cl_int err;
    *out = NULL;
    cl_program prog = clCreateProgramWithSource(ctx->cl, nlines, (const char **)lines, NULL,
                                                &err);
    if (err != CL_SUCCESS)
        return okto__fail_cl(ctx, err, "clCreateProgramWithSource", "%s", what);
    /* all devices of the context: the lanes' sub-devices too */
    err = clBuildProgram(prog, 0, NULL, options, NULL, NULL);
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
    return build_lines(ctx, &source, 1, "-cl-std=CL1.2", what, out);
}

okto_status okto__program(okto_context *ctx, cl_program *out)
{
    okto_status s = OKTO_OK;
    pthread_mutex_lock(&ctx->prog_lock);
    if (!ctx->program)
        s = build_lines(ctx, okto__cl_lines, okto__cl_nlines, "-cl-std=CL1.2",
                        "okto's built-in kernels", &ctx->program);
    *out = ctx->program;
    pthread_mutex_unlock(&ctx->prog_lock);
    return s;
}

size_t okto__grid_groups(const okto_context *ctx) { return ctx->grid_groups; }

void okto__grid_1d(const okto_context *ctx, size_t n, size_t *global, size_t *local)
{
    if (!(ctx->device_type & CL_DEVICE_TYPE_CPU)) {
        *local = OKTO__WG;
        *global = (n + OKTO__WG - 1) / OKTO__WG * OKTO__WG;
        return;
    }
    size_t c = 0;
    while (((size_t)64 << c) < n)
        c++;
    size_t l = 64 + 16 * c, want = (size_t)64 << c;
    *local = l;
    *global = (want + l - 1) / l * l;
}

okto_status okto__record_1d(okto_graph *g, const char *kname, const char *fn, okto__task t,
                            size_t n, int nargs, const okto__karg *args)
{
    okto_status s = okto__kernel_args(g->ctx, kname, fn, nargs, args, &t.kernel);
    if (s != OKTO_OK)
        return s;
    okto__grid_1d(g->ctx, n, &t.global[0], &t.local[0]);
    t.global[1] = t.global[2] = t.local[1] = t.local[2] = 1;
    t.work_dim = 1;
    t.has_local = 1;
    t.cls = OKTO__COMPUTE;
    if (!t.shape_key)
        t.shape_key = (uint64_t)n;
    int ti = okto__graph_add(g, &t);
    return ti < 0 ? (okto_status)ti : OKTO_OK;
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
