/* lib/ops/kernel.c: user kernels. okto_kernel_create builds the user's source for the context's
 * device(s) and registers the kernel (lanes make their own kernel objects from it); okto_launch
 * records one NDRange whose tensor arguments each say how the kernel touches them (R, W or RW).
 * Everything that would make every run fail is checked when the launch is recorded: the
 * argument count against the kernel's, the local sizes, and the __local memory against the
 * device's. */
#include "op.h"

#include <stdlib.h>
#include <string.h>

const okto__op_desc okto__desc_KERNEL = {.name = "kernel",
                                         .family = "kernel",
                                         .dtypes = OKTO__DT_ALL,
                                         .layouts = "contiguous tensors (buffer, ulong offset)"};

struct okto_kernel {
    okto_context *ctx;
    okto__kid kid;
    char *name;
    cl_uint nparams;    /* CL_KERNEL_NUM_ARGS */
    cl_ulong local_mem; /* CL_KERNEL_LOCAL_MEM_SIZE: its own __local arrays */
    size_t max_wg;      /* CL_KERNEL_WORK_GROUP_SIZE */
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
    cl_program prog;
    okto_status s = okto__build(ctx, source, NULL, what, &prog);
    if (s != OKTO_OK) {
        free(k), free(nm);
        return s;
    }
    /* fail now, not at launch, when the name is wrong; and learn what launches must match */
    cl_int err;
    cl_kernel probe = clCreateKernel(prog, name, &err);
    if (err == CL_INVALID_KERNEL_NAME) {
        s = okto__fail(ctx, OKTO_EINVAL,
                       "okto_kernel_create: no kernel named \"%s\" in the "
                       "source",
                       name);
    } else if (err != CL_SUCCESS) {
        s = okto__fail_cl(ctx, err, "clCreateKernel", "kernel \"%s\"", name);
    } else {
        err = clGetKernelInfo(probe, CL_KERNEL_NUM_ARGS, sizeof k->nparams, &k->nparams, NULL);
        if (err == CL_SUCCESS)
            err =
                clGetKernelWorkGroupInfo(probe, okto__ctx_device(ctx)->id, CL_KERNEL_LOCAL_MEM_SIZE,
                                         sizeof k->local_mem, &k->local_mem, NULL);
        if (err == CL_SUCCESS)
            err = clGetKernelWorkGroupInfo(probe, okto__ctx_device(ctx)->id,
                                           CL_KERNEL_WORK_GROUP_SIZE, sizeof k->max_wg, &k->max_wg,
                                           NULL);
        clReleaseKernel(probe);
        if (err != CL_SUCCESS)
            s = okto__fail_cl(ctx, err, "clGetKernelInfo", "kernel \"%s\"", name);
    }
    if (s == OKTO_OK)
        s = okto__kernel_id_of(ctx, prog, name, &k->kid);
    clReleaseProgram(prog); /* the kernel registry holds it now */
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

okto_status okto_kernel_destroy(okto_kernel *k)
{
    if (!k)
        return OKTO_OK;
    /* recorded launches name the kernel by its id; the registry keeps its program until the
     * context is gone */
    free(k->name);
    okto__context_release(k->ctx);
    free(k);
    return OKTO_OK;
}

/* A user kernel has no gradient, but the tape must see it: if it reads a value that needs one
 * and the loss depends on what it writes, okto_backward fails naming it; what it writes is
 * treated as overwritten (RW too: okto cannot know how it combines the old value). Its entry
 * holds one input that needs a gradient (enough to tell) and every tensor it writes. */
static okto_status record_ad(okto__rec *r, int nargs, const okto_arg *args)
{
    okto__ad_call c = {.op = OKTO__OP_KERNEL, .overwrite = 1};
    int active = 0, writes = 0;
    for (int i = 0; i < nargs; i++) {
        if (args[i].kind < OKTO_ARG_R || args[i].kind > OKTO_ARG_RW)
            continue;
        int a = okto__ad_active(r, 1, &args[i].tensor);
        active |= a;
        writes += args[i].kind != OKTO_ARG_R;
        /* RW reads the old value as well: an in-place update of a value made from a
         * parameter is on the gradient's path like any read */
        if (args[i].kind != OKTO_ARG_W && a && !c.nin)
            c.t[c.nin++] = args[i].tensor;
    }
    if (!active)
        return OKTO_OK;
    if (c.nin + writes > OKTO__AD_SLOTS)
        return okto__rec_fail(r, OKTO_ENOTSUP,
                              "kernel writes %d tensors; where gradients are tracked (it touches "
                              "a tensor marked with okto_tensor_set_requires_grad, or one made "
                              "from it) at most %d can be recorded",
                              writes, OKTO__AD_SLOTS - c.nin);
    for (int i = 0; i < nargs; i++)
        if (args[i].kind == OKTO_ARG_W || args[i].kind == OKTO_ARG_RW)
            c.t[c.nin + c.nout++] = args[i].tensor;
    return okto__ad_record(r, &c);
}

okto_status okto_launch(okto_graph *g, okto_kernel *k, cl_uint work_dim, const size_t *global,
                        const size_t *local, int nargs, const okto_arg *args)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_KERNEL, "okto_launch");
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    if (!k || !global || (nargs > 0 && !args) || nargs < 0)
        return okto__rec_end(&r, okto__rec_fail(&r, OKTO_EINVAL,
                                                "kernel, global and args (when "
                                                "nargs > 0) must not be NULL"));
    if (k->ctx != r.ctx)
        return okto__rec_end(&r, okto__rec_fail(&r, OKTO_EINVAL,
                                                "kernel \"%s\" belongs to "
                                                "another context than the graph",
                                                k->name));
    if (work_dim < 1 || work_dim > 3)
        return okto__rec_end(
            &r, okto__rec_fail(&r, OKTO_EINVAL, "work_dim %u is not 1, 2 or 3", work_dim));
    size_t items = 1;
    for (cl_uint d = 0; d < work_dim && s == OKTO_OK; d++) {
        if (global[d] == 0)
            s = okto__rec_fail(&r, OKTO_EINVAL, "global[%u] is 0", d);
        else if (local && local[d] == 0)
            s = okto__rec_fail(&r, OKTO_EINVAL,
                               "local[%u] is 0 (pass local = NULL to let the "
                               "driver choose)",
                               d);
        else if (local && global[d] % local[d])
            s = okto__rec_fail(&r, OKTO_EINVAL,
                               "global[%u] = %zu is not a multiple of local[%u] "
                               "= %zu",
                               d, global[d], d, local[d]);
        if (local)
            items *= local[d];
    }
    if (s == OKTO_OK && local && items > k->max_wg)
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "a work-group of %zu items; kernel \"%s\" takes at "
                           "most %zu here (CL_KERNEL_WORK_GROUP_SIZE)",
                           items, k->name, k->max_wg);
    /* every parameter accounted for: a tensor is two (buffer, offset) */
    cl_uint params = 0;
    size_t local_bytes = 0;
    for (int i = 0; i < nargs && s == OKTO_OK; i++) {
        const okto_arg *a = &args[i];
        char argname[32];
        snprintf(argname, sizeof argname, "args[%d]", i);
        if (a->kind >= OKTO_ARG_R && a->kind <= OKTO_ARG_RW) {
            s = a->kind == OKTO_ARG_R ? okto__rec_tensor(&r, a->tensor, argname, OKTO__DT_ALL)
                                      : okto__rec_output(&r, a->tensor, argname, OKTO__DT_ALL);
            if (s == OKTO_OK && !okto__contiguous(a->tensor))
                s = okto__rec_fail(&r, OKTO_EINVAL,
                                   "%s (%s) is not contiguous: a user kernel "
                                   "gets (buffer, offset) only",
                                   argname, OKTO__DESC(a->tensor));
            params += 2;
        } else if (a->kind == OKTO_ARG_VALUE) {
            if (!a->value || !a->size)
                s = okto__rec_fail(&r, OKTO_EINVAL, "%s is a value with no data or size 0",
                                   argname);
            params += 1;
        } else if (a->kind == OKTO_ARG_LOCAL && a->size) {
            local_bytes += a->size;
            params += 1;
        } else {
            s = okto__rec_fail(&r, OKTO_EINVAL,
                               "%s has kind %d (expected OKTO_ARG_R, W, RW, "
                               "VALUE or LOCAL with a size)",
                               argname, (int)a->kind);
        }
    }
    if (s == OKTO_OK && params != k->nparams)
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "kernel \"%s\" has %u parameters but the %d "
                           "arguments make %u (a tensor takes two: buffer and ulong offset)",
                           k->name, k->nparams, nargs, params);
    size_t have = okto__rec_device(&r)->local_mem;
    if (s == OKTO_OK && local_bytes + k->local_mem > have)
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "kernel \"%s\": %zu bytes of __local arguments plus "
                           "%llu of its own exceed the device's %zu (CL_DEVICE_LOCAL_MEM_SIZE)",
                           k->name, local_bytes, (unsigned long long)k->local_mem, have);
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    okto__tb t;
    okto__tb_init(&t, &r, OKTO__OP_KERNEL);
    okto__tb_kid(&t, k->kid);
    double n = 1;
    for (int i = 0; i < nargs; i++) {
        const okto_arg *a = &args[i];
        if (a->kind >= OKTO_ARG_R && a->kind <= OKTO_ARG_RW) {
            okto__tb_arg_tensor(&t, a->tensor);
            okto__tb_access(&t, a->tensor,
                            a->kind == OKTO_ARG_R   ? OKTO__R
                            : a->kind == OKTO_ARG_W ? OKTO__W
                                                    : OKTO__RW);
        } else if (a->kind == OKTO_ARG_VALUE) {
            okto__tb_arg_value(&t, a->value, a->size);
        } else {
            okto__tb_arg_local(&t, a->size);
        }
    }
    for (cl_uint d = 0; d < work_dim; d++)
        n *= (double)global[d];
    okto__tb_range(&t, work_dim, global, local);
    okto__tb_cost(&t, n * 4, 0, (uint64_t)n ^ ((uint64_t)k->kid << 40));
    s = okto__tb_commit(&t);
    if (s == OKTO_OK)
        s = record_ad(&r, nargs, args);
    return okto__rec_end(&r, s);
}
