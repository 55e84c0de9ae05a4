/* lib/ops/kernel.c: user kernels. okto_kernel_create builds the user's source for the
 * context's device(s); okto_launch records one NDRange whose tensor arguments each say how the
 * kernel touches them (R, W or RW). Each launch gets its own cl_kernel with its arguments set
 * now, so replays need no clSetKernelArg and two graphs may launch the same okto_kernel. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct okto_kernel {
    okto_context *ctx;
    cl_program program;
    char *name;
};

okto_status okto_kernel_create(okto_context *ctx, const char *source, const char *name,
                               okto_kernel **out)
{
    if (!out)
        return okto__fail(ctx, OKTO_EINVAL, "okto_kernel_create: out must not be NULL");
    *out = NULL;
    if (!ctx || !source || !name)
        return okto__fail(ctx, OKTO_EINVAL,
                          "okto_kernel_create: ctx, source and name must not be NULL");
    okto_kernel *k = calloc(1, sizeof *k);
    char *nm = strdup(name);
    if (!k || !nm) {
        free(k), free(nm);
        return okto__fail(ctx, OKTO_ENOMEM, "okto_kernel_create: out of host memory");
    }
    char what[300];
    snprintf(what, sizeof what, "user kernel \"%.200s\"", name);
    okto_status s = okto__build(ctx, source, what, &k->program);
    if (s == OKTO_OK) {
        /* fail now, not at launch, when the name is wrong */
        cl_int err;
        cl_kernel probe = clCreateKernel(k->program, name, &err);
        if (err != CL_SUCCESS) {
            s = okto__fail_cl(ctx, err, "clCreateKernel", "no kernel named \"%s\" in the source",
                              name);
            clReleaseProgram(k->program);
        } else {
            clReleaseKernel(probe);
        }
    }
    if (s != OKTO_OK) {
        free(k), free(nm);
        return s;
    }
    k->ctx = ctx;
    k->name = nm;
    okto__context_retain(ctx);
    *out = k;
    return OKTO_OK;
}

void okto_kernel_destroy(okto_kernel *k)
{
    if (!k)
        return;
    clReleaseProgram(k->program); /* recorded launches hold their own cl_kernel (and program) */
    free(k->name);
    okto__context_release(k->ctx);
    free(k);
}

okto_status okto_launch(okto_graph *g, okto_kernel *k, cl_uint work_dim, const size_t *global,
                        const size_t *local, int nargs, const okto_arg *args)
{
    okto_status s = okto__check_graph(g, "okto_launch");
    if (s != OKTO_OK)
        return s;
    if (!k || !global || (nargs > 0 && !args) || nargs < 0)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_launch: kernel, global and args (when nargs > 0) must not be NULL");
    if (k->ctx != g->ctx)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_launch: kernel \"%s\" belongs to another context than the graph",
                          k->name);
    if (work_dim < 1 || work_dim > 3)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_launch: work_dim %u is not 1, 2 or 3",
                          work_dim);
    for (cl_uint d = 0; d < work_dim; d++)
        if (global[d] == 0)
            return okto__fail(g->ctx, OKTO_EINVAL, "okto_launch: global[%u] is 0", d);
    okto__access *acc = malloc((size_t)(nargs ? nargs : 1) * sizeof *acc);
    if (!acc)
        return okto__fail(g->ctx, OKTO_ENOMEM, "okto_launch: out of host memory");
    int nacc = 0;
    for (int i = 0; i < nargs; i++) {
        const okto_arg *a = &args[i];
        if (a->kind >= OKTO_ARG_R && a->kind <= OKTO_ARG_RW) {
            char argname[32];
            snprintf(argname, sizeof argname, "args[%d]", i);
            if ((s = okto__check_tensor(g, a->tensor, "okto_launch", argname)) != OKTO_OK)
                goto fail;
            acc[nacc++] = okto__acc(a->tensor, 0, a->tensor->rows, (int)a->kind);
        } else if (a->kind == OKTO_ARG_VALUE) {
            if (!a->value || !a->size) {
                s = okto__fail(g->ctx, OKTO_EINVAL,
                               "okto_launch: args[%d] is a value with no data or size 0", i);
                goto fail;
            }
        } else if (a->kind != OKTO_ARG_LOCAL || !a->size) {
            s = okto__fail(g->ctx, OKTO_EINVAL,
                           "okto_launch: args[%d] has kind %d (expected OKTO_ARG_R, W, RW, VALUE "
                           "or LOCAL with a size)", i, (int)a->kind);
            goto fail;
        }
    }
    cl_int err;
    cl_kernel ck = clCreateKernel(k->program, k->name, &err);
    if (err != CL_SUCCESS) {
        s = okto__fail_cl(g->ctx, err, "clCreateKernel", "kernel \"%s\"", k->name);
        goto fail;
    }
    cl_uint idx = 0;
    for (int i = 0; i < nargs && err == CL_SUCCESS; i++) {
        const okto_arg *a = &args[i];
        if (a->kind >= OKTO_ARG_R && a->kind <= OKTO_ARG_RW) {
            err = okto__set_tensor_arg(ck, idx, a->tensor, 0);
            idx += 2;
        } else {
            err = clSetKernelArg(ck, idx++, a->size, a->kind == OKTO_ARG_VALUE ? a->value : NULL);
        }
        if (err != CL_SUCCESS) {
            s = okto__fail_cl(g->ctx, err, "clSetKernelArg",
                              "kernel \"%s\" parameter %u (args[%d]; a tensor takes two "
                              "parameters: buffer and int offset)", k->name, idx - 1, i);
        }
    }
    if (err != CL_SUCCESS) {
        clReleaseKernel(ck);
        goto fail;
    }
    okto__task t = {.op = "kernel", .cls = OKTO__COMPUTE, .acc = acc, .nacc = nacc,
                    .kernel = ck, .work_dim = work_dim, .has_local = local != NULL};
    double items = 1;
    for (cl_uint d = 0; d < work_dim; d++) {
        t.global[d] = global[d];
        t.local[d] = local ? local[d] : 0;
        items *= (double)global[d];
    }
    t.flops = items * 4;
    t.shape_key = (uint64_t)items ^ ((uint64_t)(uintptr_t)k->program << 20);
    int ti = okto__graph_add(g, &t);
    free(acc);
    return ti < 0 ? (okto_status)ti : OKTO_OK;
fail:
    free(acc);
    return s;
}
