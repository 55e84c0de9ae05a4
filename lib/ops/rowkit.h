/* lib/ops/rowkit.h: what the op families over contiguous blocks share (norm.c, softmax_ext.c,
 * xent.c, embed.c, dropout.c, argmax.c, optim.c). Their kernels (cl/norm.cl ... cl/optim.cl)
 * take each tensor as (buffer, offset) with its elements contiguous from there, so:
 *   - an input that is not contiguous is read through a contiguous copy (okto__rec_layout);
 *   - an output that is not is written into a contiguous temporary that is then copied to it
 *     (filled from it first when the kernel reads the old values: accumulation, in-place
 *     updates), so any view gets the right answer;
 * and the launch shapes follow lib/device.c's rule (one global width per kernel and local size
 * on CPUs): row kernels on a fixed grid of grid_groups work-groups that loop over the rows,
 * single-group kernels with global = local, and one-item-per-element kernels on okto__grid_1d /
 * okto__grid_nd's padded grids. */
#ifndef OKTO_ROWKIT_H
#define OKTO_ROWKIT_H

#include "op.h"

/* in as a contiguous [rows, cols] view, cols its last dimension (in itself or a copy). */
okto_status okto__rk_in2d(okto__rec *r, const okto_tensor *in, okto_tensor *m);
/* in as a contiguous 1-D view of its numel elements, row-major (in itself or a copy). */
okto_status okto__rk_in1d(okto__rec *r, const okto_tensor *in, okto_tensor *m);

/* An output a kernel writes contiguously. */
typedef struct okto__rk_out {
    okto_tensor *user; /* the caller's tensor; NULL: absent */
    okto_tensor tmp;   /* the temporary, when user is not contiguous */
    int direct;        /* the kernel writes user itself */
    okto_tensor m;     /* what the kernel writes: [rows, cols] (rank2) or 1-D */
} okto__rk_out;
/* keep: the kernel reads the old values, so a temporary starts as a copy of out. out NULL: an
 * absent output (o->m is then unset; the caller passes a placeholder). */
okto_status okto__rk_out_begin(okto__rec *r, okto_tensor *out, int rank2, int keep,
                               okto__rk_out *o);
/* After the kernels: the temporary copied to the caller's tensor. */
okto_status okto__rk_out_end(okto__rec *r, okto__rk_out *o, okto_status s);

/* The local size of a row or single-group kernel for rows of `cols` elements: 1 on CPUs (an
 * item walks whole rows contiguously: the kernels' headers measured it as the fast choice);
 * elsewhere a power of two up to cols, 256 and the kernel's work-group limit. */
okto_status okto__rk_local(okto__rec *r, okto__kid kid, size_t cols, size_t *l);
/* Row kernel: global = l * grid_groups, local = l (1-D). */
void okto__rk_range_rows(okto__tb *t, size_t l);
/* Single work-group kernel: global = local = l. */
void okto__rk_range_one(okto__tb *t, size_t l);
/* One item per element over (n0, n1), dimension 0 the fastest in memory. */
void okto__rk_range_2d(okto__tb *t, size_t n0, size_t n1);

/* A device check flag of the {set, first bad index} kind: a fresh i32[4] temporary holding
 * {0, INT_MAX, c2, c3}, registered with okto__rec_check_init (msg takes the index + base, c2,
 * c3). */
okto_status okto__rk_flag(okto__rec *r, const char *msg, int c2, int c3, int base,
                          okto_tensor *flag);

/* The numel elements of t's storage from element e0 to e1 as a 1-D view (no copy): the access
 * of a kernel that addresses a storage by absolute offsets (the multi-tensor kernels). */
void okto__rk_storage_range(const okto_tensor *t, size_t e0, size_t e1, okto_tensor *out);

/* Every output outs[0 .. nout) against every other argument (outputs and inputs; NULLs
 * skipped): no overlap, except outs[0] with ins[0] when same_ok and they are the very same
 * view ("y may be x"). */
okto_status okto__rk_disjoint(okto__rec *r, int nout, const okto_tensor *const *outs,
                              const char *const *onames, int nin, const okto_tensor *const *ins,
                              const char *const *inames, int same_ok);
/* A per-column vector argument of x (weight, bias, dweight): x's dtype, `cols` elements and a
 * last dimension of cols. */
okto_status okto__rk_vec(okto__rec *r, const okto_tensor *v, const char *name, const okto_tensor *x,
                         size_t cols);
/* A float32 statistics tensor of n elements, of the rows of x (named xname); out: written. */
okto_status okto__rk_stat(okto__rec *r, const okto_tensor *t, const char *name,
                          const okto_tensor *x, const char *xname, size_t n, int out);
/* b has a's shape (and dtype when same_dtype). */
okto_status okto__rk_same(okto__rec *r, const okto_tensor *a, const char *an, const okto_tensor *b,
                          const char *bn, int same_dtype);

/* Unknown bits of flags (OKTO_ACCUMULATE is the one the backward ops take). */
okto_status okto__rk_flags(okto__rec *r, unsigned flags);

#endif
