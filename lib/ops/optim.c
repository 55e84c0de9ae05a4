/* lib/ops/optim.c: optimizer steps as ops (okto_sgd, okto_adamw and their multi-tensor forms),
 * the step schedule on the device (okto_sched_advance, okto_adamw_prepare) and gradient
 * clipping by global norm (okto_clip_grad_norm). Kernels in cl/optim.cl.
 *
 * The step-dependent scalars live in a float32 sched[4] on the device (lr, t, AdamW's two
 * bias-correction terms) and the clip scale in a float32 device scalar, so a recorded training
 * step replays with no host value. A single-tensor step is one item per element, split into
 * element ranges across the lanes (the update of an element reads nothing else).
 *
 * The multi-tensor kernels address each buffer by absolute element offsets from a chunk table
 * (ulong [nchunks][5]: param, grad, state-0, state-1 offsets and the length). okto has no
 * 64-bit dtype, so each table is a graph-owned int32 temporary of twice the words, written once
 * at record time with the host's uint64 values (a blocking write, as the check flags are), and
 * handed to the kernel as its buffer. A kernel takes one buffer per role, so the tensors are
 * grouped by the storages they live in (one launch per group, chunks of at most OKTO__CHUNK
 * elements so a large tensor spreads over several work-groups); a launch's accesses are the
 * span of each storage its group touches, which orders it correctly (more conservatively than
 * per tensor). Chunks, groups and the order of the norm's partial sums follow the argument
 * order only: the same bits every run. */
#include "rowkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OKTO__CHUNK 65536u /* elements per chunk-table row */
#define OKTO__CHUNK_COLS 5 /* cl/optim.cl's OKTO_CHUNK_COLS */

const okto__op_desc okto__desc_SCHED_ADVANCE = {.name = "sched_advance",
                                                .family = "optim",
                                                .dtypes = OKTO__DT_BIT(OKTO_F32),
                                                .layouts = "sched f32[4], any strides (copied)"};
const okto__op_desc okto__desc_ADAMW_PREPARE = {.name = "adamw_prepare",
                                                .family = "optim",
                                                .dtypes = OKTO__DT_BIT(OKTO_F32),
                                                .layouts = "sched f32[4], any strides (copied)"};
const okto__op_desc okto__desc_SGD = {.name = "sgd",
                                      .family = "optim",
                                      .dtypes = OKTO__DT_FLOATS,
                                      .layouts = "any strides (copied); state f32",
                                      .partitioned = 1};
static uint64_t adamw_batch_key(const okto_graph *g, int task);
static okto_status adamw_batch(okto__rec *r, const int *tasks, int n);
const okto__op_desc okto__desc_ADAMW = {.name = "adamw",
                                        .family = "optim",
                                        .dtypes = OKTO__DT_FLOATS,
                                        .layouts = "any strides (copied); state f32",
                                        .partitioned = 1,
                                        .batch_key = adamw_batch_key,
                                        .batch = adamw_batch,
                                        .batch_switch = OKTO__FUSE_OPTIM};
const okto__op_desc okto__desc_CLIP_GRAD_NORM = {
    .name = "clip_grad_norm",
    .family = "optim",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "any strides (copied); chunk tables; out f32[2]"};
const okto__op_desc okto__desc_SGD_MULTI = {.name = "sgd_multi",
                                            .family = "optim",
                                            .dtypes = OKTO__DT_FLOATS,
                                            .layouts = "contiguous; state f32; chunk tables"};
const okto__op_desc okto__desc_ADAMW_MULTI = {.name = "adamw_multi",
                                              .family = "optim",
                                              .dtypes = OKTO__DT_FLOATS,
                                              .layouts = "contiguous; state f32; chunk tables"};

/* ---- argument checks ------------------------------------------------------------------------- */

static okto_status check_sched(okto__rec *r, const okto_tensor *sched, int out)
{
    okto_status s = out ? okto__rec_output(r, sched, "sched", OKTO__DT_BIT(OKTO_F32))
                        : okto__rec_tensor(r, sched, "sched", OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK && okto__numel(sched) != 4)
        s = okto__rec_fail(r, OKTO_EINVAL,
                           "sched is %s (expected 4 float32: lr, t, lr / (1 - beta1^t), "
                           "1 / sqrt(1 - beta2^t))",
                           OKTO__DESC(sched));
    return s;
}

static okto_status check_gscale(okto__rec *r, const okto_tensor *gscale)
{
    if (!gscale)
        return OKTO_OK;
    okto_status s = okto__rec_tensor(r, gscale, "gscale", OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK && okto__numel(gscale) != 1)
        s = okto__rec_fail(r, OKTO_EINVAL, "gscale is %s (expected one float32)",
                           OKTO__DESC(gscale));
    return s;
}

static okto_status check_betas(okto__rec *r, float beta1, float beta2, float eps)
{
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return okto__rec_fail(r, OKTO_EINVAL, "beta1 %g and beta2 %g must be in [0, 1)",
                              (double)beta1, (double)beta2);
    if (!(eps >= 0.0f && eps < INFINITY))
        return okto__rec_fail(r, OKTO_EINVAL, "eps is %g; it must be finite and >= 0", (double)eps);
    return OKTO_OK;
}

/* A float32 state tensor of param's shape. */
static okto_status check_state(okto__rec *r, const okto_tensor *st, const char *name,
                               const okto_tensor *param)
{
    okto_status s = okto__rec_output(r, st, name, OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK && !okto__same_shape(st, param))
        s = okto__rec_fail(r, OKTO_EINVAL, "param is %s but %s is %s (expected f32 of its shape)",
                           OKTO__DESC(param), name, OKTO__DESC(st));
    return s;
}

/* ---- the schedule ---------------------------------------------------------------------------- */

static okto_status sched_op(okto_graph *g, okto__op op, const char *fn, okto_tensor *sched,
                            int prepare, float beta1, float beta2)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, op, fn);
    if (s == OKTO_OK)
        s = check_sched(&r, sched, 1);
    if (s == OKTO_OK && prepare)
        s = check_betas(&r, beta1, beta2, 0.0f);
    okto__rk_out o = {0};
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, sched, 0, 1, &o);
    if (s == OKTO_OK) {
        okto__tb t;
        okto__tb_init(&t, &r, op);
        okto__tb_kernel(&t, "optim", OKTO_F32, NULL,
                        prepare ? "okto_adamw_prepare" : "okto_sched_advance");
        okto__tb_arg_tensor(&t, &o.m);
        if (prepare) {
            okto__tb_arg_float(&t, beta1);
            okto__tb_arg_float(&t, beta2);
        }
        okto__rk_range_one(&t, 1);
        okto__tb_access(&t, &o.m, OKTO__RW);
        okto__tb_cost(&t, 20, 16, (uint64_t)prepare);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &o, s);
    return okto__rec_end(&r, s);
}

okto_status okto_sched_advance(okto_graph *g, okto_tensor *sched)
{
    return sched_op(g, OKTO__OP_SCHED_ADVANCE, "okto_sched_advance", sched, 0, 0, 0);
}

okto_status okto_adamw_prepare(okto_graph *g, okto_tensor *sched, float beta1, float beta2)
{
    return sched_op(g, OKTO__OP_ADAMW_PREPARE, "okto_adamw_prepare", sched, 1, beta1, beta2);
}

/* ---- single-tensor steps --------------------------------------------------------------------- */

typedef struct step_args {
    int adam;
    okto_tensor *param, *s0, *s1; /* s0: momentum or m; s1: v */
    const okto_tensor *grad, *sched, *gscale;
    float momentum, wd, beta1, beta2, eps;
    int nesterov;
} step_args;

static okto_status step(okto_graph *g, const step_args *a)
{
    okto__op op = a->adam ? OKTO__OP_ADAMW : OKTO__OP_SGD;
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, op, a->adam ? "okto_adamw" : "okto_sgd");
    int has_s0 = a->adam || a->momentum != 0.0f;
    if (s == OKTO_OK)
        s = okto__rec_output(&r, a->param, "param", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, a->grad, "grad", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rk_same(&r, a->param, "param", a->grad, "grad", 1);
    if (s == OKTO_OK && has_s0)
        s = check_state(&r, a->s0, a->adam ? "m" : "momentum_buf", a->param);
    if (s == OKTO_OK && a->adam)
        s = check_state(&r, a->s1, "v", a->param);
    if (s == OKTO_OK)
        s = check_sched(&r, a->sched, 0);
    if (s == OKTO_OK)
        s = check_gscale(&r, a->gscale);
    if (s == OKTO_OK && a->adam)
        s = check_betas(&r, a->beta1, a->beta2, a->eps);
    if (s == OKTO_OK && !(isfinite(a->momentum) && isfinite(a->wd)))
        s = okto__rec_fail(&r, OKTO_EINVAL, "momentum %g and weight_decay %g must be finite",
                           (double)a->momentum, (double)a->wd);
    if (s == OKTO_OK) {
        const okto_tensor *outs[] = {a->param, has_s0 ? a->s0 : NULL, a->adam ? a->s1 : NULL};
        const okto_tensor *ins[] = {a->grad, a->sched, a->gscale};
        const char *on[] = {"param", a->adam ? "m" : "momentum_buf", "v"};
        const char *in[] = {"grad", "sched", "gscale"};
        s = okto__rk_disjoint(&r, 3, outs, on, 3, ins, in, 0);
    }
    okto_tensor g1, sc, gs;
    okto__rk_out po = {0}, m0 = {0}, m1 = {0};
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, a->grad, &g1);
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, a->sched, &sc);
    if (s == OKTO_OK && a->gscale)
        s = okto__rk_in1d(&r, a->gscale, &gs);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, a->param, 0, 1, &po);
    if (s == OKTO_OK && has_s0)
        s = okto__rk_out_begin(&r, a->s0, 0, 1, &m0);
    if (s == OKTO_OK && a->adam)
        s = okto__rk_out_begin(&r, a->s1, 0, 1, &m1);
    size_t n = s == OKTO_OK ? okto__numel(a->param) : 0;
    int nparts = s == OKTO_OK ? okto__rec_parts(&r, n, (double)n * 4) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t e0 = okto__part_row(n, p, nparts), e1 = okto__part_row(n, p + 1, nparts);
        okto_tensor pi, gi, s0i, s1i;
        okto__view_flat(&po.m, e0, e1, &pi);
        okto__view_flat(&g1, e0, e1, &gi);
        if (has_s0)
            okto__view_flat(&m0.m, e0, e1, &s0i);
        if (a->adam)
            okto__view_flat(&m1.m, e0, e1, &s1i);
        okto__tb t;
        okto__tb_init(&t, &r, op);
        okto__tb_kernel(&t, "optim", a->param->dtype, NULL, a->adam ? "okto_adamw" : "okto_sgd");
        okto__tb_arg_tensor(&t, &pi);
        okto__tb_arg_tensor(&t, &gi);
        /* SGD without momentum never touches the buffer: its slot gets param */
        okto__tb_arg_tensor(&t, has_s0 ? &s0i : &pi);
        if (a->adam)
            okto__tb_arg_tensor(&t, &s1i);
        okto__tb_arg_ulong(&t, e1 - e0);
        if (a->adam) {
            okto__tb_arg_float(&t, a->beta1);
            okto__tb_arg_float(&t, a->beta2);
            okto__tb_arg_float(&t, a->eps);
            okto__tb_arg_float(&t, a->wd);
        } else {
            okto__tb_arg_float(&t, a->momentum);
            okto__tb_arg_float(&t, a->wd);
            okto__tb_arg_int(&t, a->nesterov != 0);
        }
        okto__tb_arg_tensor(&t, &sc);
        okto__tb_arg_tensor(&t, a->gscale ? &gs : &sc);
        okto__tb_arg_int(&t, a->gscale != NULL);
        okto__tb_range_1d(&t, e1 - e0);
        okto__tb_access(&t, &pi, OKTO__RW);
        okto__tb_access(&t, &gi, OKTO__R);
        if (has_s0)
            okto__tb_access(&t, &s0i, OKTO__RW);
        if (a->adam)
            okto__tb_access(&t, &s1i, OKTO__RW);
        okto__tb_access(&t, &sc, OKTO__R);
        if (a->gscale)
            okto__tb_access(&t, &gs, OKTO__R);
        double k = (double)(e1 - e0), esz = (double)okto_dtype_size(a->param->dtype);
        okto__tb_cost(&t, (a->adam ? 14 : 4) * k,
                      k * (3 * esz + (a->adam  ? 16
                                      : has_s0 ? 8
                                               : 0)),
                      (uint64_t)(e1 - e0) ^ ((uint64_t)a->adam << 62));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &po, s);
    s = okto__rk_out_end(&r, &m0, s);
    s = okto__rk_out_end(&r, &m1, s);
    return okto__rec_end(&r, s);
}

okto_status okto_sgd(okto_graph *g, okto_tensor *param, const okto_tensor *grad,
                     okto_tensor *momentum_buf, const okto_tensor *sched, const okto_tensor *gscale,
                     float momentum, float weight_decay, int nesterov)
{
    step_args a = {.param = param,
                   .grad = grad,
                   .s0 = momentum_buf,
                   .sched = sched,
                   .gscale = gscale,
                   .momentum = momentum,
                   .wd = weight_decay,
                   .nesterov = nesterov};
    return step(g, &a);
}

okto_status okto_adamw(okto_graph *g, okto_tensor *param, const okto_tensor *grad, okto_tensor *m,
                       okto_tensor *v, const okto_tensor *sched, const okto_tensor *gscale,
                       float beta1, float beta2, float eps, float weight_decay)
{
    step_args a = {.adam = 1,
                   .param = param,
                   .grad = grad,
                   .s0 = m,
                   .s1 = v,
                   .sched = sched,
                   .gscale = gscale,
                   .wd = weight_decay,
                   .beta1 = beta1,
                   .beta2 = beta2,
                   .eps = eps};
    return step(g, &a);
}

/* ---- chunk tables ---------------------------------------------------------------------------- */

/* Where a contiguous tensor's elements sit in its buffer: absolute, the storage's base
 * included (what the multi-tensor kernels add to their buffer pointer). */
static uint64_t abs_off(const okto_tensor *t) { return (uint64_t)(t->st->base + t->offset); }

/* A group of tensors (indices into the call's arrays) that share their storages, role by role. */
typedef struct group {
    int first, count; /* members: idx[first .. first + count) */
    size_t nchunks;
    size_t lo[4], hi[4]; /* each role's span of its storage (storage-relative elements) */
} group;

/* Groups idx[0 .. n) (already in argument order) by the storages of their tensors in the
 * roles: a stable grouping, the groups in the order of their first member. */
static int make_groups(int n, int nroles, const okto_tensor *const (*roles)[4], int *idx, group *gr)
{
    size_t nn = n > 0 ? (size_t)n : 1;
    int ng = 0, *order = malloc(nn * sizeof *order), *gof = malloc(nn * sizeof *gof);
    if (!order || !gof) {
        free(order), free(gof);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (; k < ng; k++) {
            int j = idx[gr[k].first];
            int same = 1;
            for (int q = 0; q < nroles; q++)
                same &= roles[j][q]->st == roles[i][q]->st;
            if (same)
                break;
        }
        if (k == ng) {
            gr[ng].first = i; /* the representative, replaced below */
            gr[ng].count = 0;
            idx[i] = i;
            ng++;
        }
        gof[i] = k;
        gr[k].count++;
    }
    /* counting sort of the members by group, stable */
    int pos = 0;
    for (int k = 0; k < ng; k++) {
        int c = gr[k].count;
        gr[k].first = pos;
        pos += c;
        gr[k].count = 0;
    }
    for (int i = 0; i < n; i++) {
        group *g = &gr[gof[i]];
        order[g->first + g->count++] = i;
    }
    memcpy(idx, order, nn * sizeof *idx);
    for (int k = 0; k < ng; k++) {
        group *g = &gr[k];
        g->nchunks = 0;
        for (int q = 0; q < 4; q++)
            g->lo[q] = SIZE_MAX, g->hi[q] = 0;
        for (int m = 0; m < g->count; m++) {
            int i = idx[g->first + m];
            size_t len = okto__numel(roles[i][0]);
            g->nchunks += (len + OKTO__CHUNK - 1) / OKTO__CHUNK;
            for (int q = 0; q < nroles; q++) {
                size_t a = roles[i][q]->offset, b = a + len;
                g->lo[q] = a < g->lo[q] ? a : g->lo[q];
                g->hi[q] = b > g->hi[q] ? b : g->hi[q];
            }
        }
    }
    free(order), free(gof);
    return ng;
}

/* The group's chunk table (and, when decays is not NULL, its per-chunk decay) as graph-owned
 * temporaries written now. */
static okto_status write_table(okto__rec *r, const group *g, const int *idx, int nroles,
                               const okto_tensor *const (*roles)[4], const float *decays,
                               okto_tensor *tab, okto_tensor *dec)
{
    size_t nc = g->nchunks;
    okto_status s = okto__rec_temp(r, OKTO_I32, 1, (size_t[]){2 * OKTO__CHUNK_COLS * nc}, tab);
    if (s == OKTO_OK && dec)
        s = okto__rec_temp(r, OKTO_F32, 1, (size_t[]){nc}, dec);
    if (s != OKTO_OK)
        return s;
    uint64_t *h = calloc(OKTO__CHUNK_COLS * nc, sizeof *h);
    float *d = dec ? calloc(nc, sizeof *d) : NULL;
    if (!h || (dec && !d)) {
        free(h), free(d);
        return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory for a chunk table");
    }
    size_t c = 0;
    for (int m = 0; m < g->count; m++) {
        int i = idx[g->first + m];
        size_t len = okto__numel(roles[i][0]);
        for (size_t e = 0; e < len; e += OKTO__CHUNK, c++) {
            uint64_t *row = h + OKTO__CHUNK_COLS * c;
            for (int q = 0; q < nroles; q++)
                row[q] = abs_off(roles[i][q]) + e;
            row[4] = len - e < OKTO__CHUNK ? len - e : OKTO__CHUNK;
            if (d)
                d[c] = decays ? decays[i] : 0.0f;
        }
    }
    s = okto_tensor_write(tab, h); /* the words of the uint64s, as the kernel reads them */
    if (s == OKTO_OK && d)
        s = okto_tensor_write_f32(dec, d);
    free(h), free(d);
    return s;
}

/* ---- clipping by global norm ----------------------------------------------------------------- */

okto_status okto_clip_grad_norm(okto_graph *g, int n, const okto_tensor *const *grads,
                                float max_norm, okto_tensor *out)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_CLIP_GRAD_NORM, "okto_clip_grad_norm");
    if (s == OKTO_OK && (n < 1 || !grads))
        s = okto__rec_fail(&r, OKTO_EINVAL, "needs n >= 1 gradients (n is %d, grads %s)", n,
                           grads ? "given" : "NULL");
    if (s == OKTO_OK && !(max_norm > 0.0f))
        s = okto__rec_fail(&r, OKTO_EINVAL, "max_norm is %g; it must be > 0", (double)max_norm);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK && okto__numel(out) != 2)
        s = okto__rec_fail(&r, OKTO_EINVAL, "out is %s (expected 2 float32: scale, norm)",
                           OKTO__DESC(out));
    char name[32];
    for (int i = 0; i < n && s == OKTO_OK; i++) {
        snprintf(name, sizeof name, "grads[%d]", i);
        s = okto__rec_tensor(&r, grads[i], name, OKTO__DT_FLOATS);
        if (s == OKTO_OK)
            s = okto__rec_no_alias(&r, out, "out", grads[i], name, 0);
    }
    size_t nn = n > 0 ? (size_t)n : 1;
    okto_tensor *dense = s == OKTO_OK ? calloc(nn, sizeof *dense) : NULL;
    const okto_tensor *(*roles)[4] = s == OKTO_OK ? calloc(nn, sizeof *roles) : NULL;
    int *idx = s == OKTO_OK ? malloc(nn * sizeof *idx) : NULL;
    group *gr = s == OKTO_OK ? malloc(nn * sizeof *gr) : NULL;
    if (s == OKTO_OK && (!dense || !roles || !idx || !gr))
        s = okto__rec_fail(&r, OKTO_ENOMEM, "out of host memory");
    for (int i = 0; i < n && s == OKTO_OK; i++) {
        s = okto__rk_in1d(&r, grads[i], &dense[i]);
        roles[i][0] = roles[i][1] = &dense[i];
    }
    int ng = 0;
    if (s == OKTO_OK) {
        for (int i = 0; i < n; i++)
            idx[i] = i;
        /* role 0 and 1 are the same tensor: the table's column 1 is what the kernels read */
        ng = make_groups(n, 1, (const okto_tensor *const(*)[4])roles, idx, gr);
        if (ng < 0)
            s = okto__rec_fail(&r, OKTO_ENOMEM, "out of host memory");
    }
    size_t total = 0;
    for (int k = 0; k < ng; k++)
        total += gr[k].nchunks;
    okto_tensor part;
    okto__rk_out o = {0};
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){total}, &part);
    size_t c0 = 0;
    for (int k = 0; k < ng && s == OKTO_OK; k++) {
        const group *gk = &gr[k];
        const okto_tensor *rep = &dense[idx[gk->first]];
        okto_tensor tab, span, pk;
        if ((s = write_table(&r, gk, idx, 2, (const okto_tensor *const(*)[4])roles, NULL, &tab,
                             NULL)) != OKTO_OK)
            break;
        okto__rk_storage_range(rep, gk->lo[0], gk->hi[0], &span);
        okto__view_flat(&part, c0, c0 + gk->nchunks, &pk);
        size_t l;
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_CLIP_GRAD_NORM);
        okto__tb_kernel(&t, "optim", rep->dtype, NULL, "okto_clip_sumsq");
        if ((s = t.status) != OKTO_OK ||
            (s = okto__rk_local(&r, t.kid, OKTO__CHUNK, &l)) != OKTO_OK)
            break;
        okto__tb_arg_mem(&t, rep);
        okto__tb_arg_tensor(&t, &tab);
        okto__tb_arg_ulong(&t, gk->nchunks);
        okto__tb_arg_tensor(&t, &pk);
        okto__rk_range_rows(&t, l);
        okto__tb_access(&t, &span, OKTO__R);
        okto__tb_access(&t, &tab, OKTO__R);
        okto__tb_access(&t, &pk, OKTO__W);
        double e = (double)(gk->hi[0] - gk->lo[0]);
        okto__tb_cost(&t, 2 * e, e * (double)okto_dtype_size(rep->dtype),
                      (uint64_t)gk->nchunks ^ ((uint64_t)gk->count << 32));
        s = okto__tb_commit(&t);
        c0 += gk->nchunks;
    }
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, out, 0, 0, &o);
    if (s == OKTO_OK) {
        size_t l;
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_CLIP_GRAD_NORM);
        okto__tb_kernel(&t, "optim", OKTO_F32, NULL, "okto_clip_norm");
        if ((s = t.status) == OKTO_OK && (s = okto__rk_local(&r, t.kid, total, &l)) == OKTO_OK) {
            okto__tb_arg_tensor(&t, &part);
            okto__tb_arg_ulong(&t, total);
            okto__tb_arg_float(&t, max_norm);
            okto__tb_arg_tensor(&t, &o.m);
            okto__rk_range_one(&t, l);
            okto__tb_access(&t, &part, OKTO__R);
            okto__tb_access(&t, &o.m, OKTO__W);
            okto__tb_cost(&t, (double)total, 4.0 * (double)total, (uint64_t)total << 8);
            s = okto__tb_commit(&t);
        }
    }
    s = okto__rk_out_end(&r, &o, s);
    free(dense), free(roles), free(idx), free(gr);
    return okto__rec_end(&r, s);
}

/* ---- multi-tensor steps ---------------------------------------------------------------------- */

static okto_status multi(okto_graph *g, int adam, int n, okto_tensor *const *params,
                         const okto_tensor *const *grads, okto_tensor *const *s0,
                         okto_tensor *const *s1, const float *decays, const okto_tensor *sched,
                         const okto_tensor *gscale, float momentum, int nesterov, float beta1,
                         float beta2, float eps)
{
    okto__op op = adam ? OKTO__OP_ADAMW_MULTI : OKTO__OP_SGD_MULTI;
    const char *fn = adam ? "okto_adamw_multi" : "okto_sgd_multi";
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, op, fn);
    int has_s0 = adam || momentum != 0.0f, nroles = adam ? 4 : has_s0 ? 3 : 2;
    if (s == OKTO_OK && (n < 1 || !params || !grads || (has_s0 && !s0) || (adam && !s1)))
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "needs n >= 1 (n is %d) and the arrays of params, "
                           "grads%s (one is NULL)",
                           n,
                           adam     ? ", ms and vs"
                           : has_s0 ? " and momentum_bufs"
                                    : "");
    if (s == OKTO_OK)
        s = check_sched(&r, sched, 0);
    if (s == OKTO_OK)
        s = check_gscale(&r, gscale);
    if (s == OKTO_OK && adam)
        s = check_betas(&r, beta1, beta2, eps);
    if (s == OKTO_OK && !isfinite(momentum))
        s = okto__rec_fail(&r, OKTO_EINVAL, "momentum %g must be finite", (double)momentum);
    size_t nn = n > 0 ? (size_t)n : 1;
    const okto_tensor *(*roles)[4] = s == OKTO_OK ? calloc(nn, sizeof *roles) : NULL;
    int *idx = s == OKTO_OK ? malloc(nn * sizeof *idx) : NULL;
    group *gr = s == OKTO_OK ? malloc(nn * sizeof *gr) : NULL;
    if (s == OKTO_OK && (!roles || !idx || !gr))
        s = okto__rec_fail(&r, OKTO_ENOMEM, "out of host memory");
    static const char *const rn[4][2] = {
        {"params", "params"}, {"grads", "grads"}, {"momentum_bufs", "ms"}, {"vs", "vs"}};
    char name[48], other[48];
    for (int i = 0; i < n && s == OKTO_OK; i++) {
        roles[i][0] = params[i], roles[i][1] = grads[i];
        roles[i][2] = has_s0 ? s0[i] : NULL, roles[i][3] = adam ? s1[i] : NULL;
        for (int q = 0; q < nroles && s == OKTO_OK; q++) {
            snprintf(name, sizeof name, "%s[%d]", rn[q][adam], i);
            const okto_tensor *t = roles[i][q];
            s = q == 1 ? okto__rec_tensor(&r, t, name, OKTO__DT_FLOATS)
                       : okto__rec_output(&r, t, name,
                                          q < 2 ? OKTO__DT_FLOATS : OKTO__DT_BIT(OKTO_F32));
            if (s == OKTO_OK && !okto__contiguous(t))
                s = okto__rec_fail(&r, OKTO_EINVAL,
                                   "%s (%s) is not contiguous: the multi-tensor step addresses "
                                   "it by offset (okto_contiguous, or the single-tensor op)",
                                   name, OKTO__DESC(t));
            if (s == OKTO_OK && q > 0 && !okto__same_shape(t, params[i]))
                s = okto__rec_fail(&r, OKTO_EINVAL, "params[%d] is %s but %s is %s", i,
                                   OKTO__DESC(params[i]), name, OKTO__DESC(t));
            if (s == OKTO_OK && q == 1 && t->dtype != params[i]->dtype)
                s = okto__rec_fail(&r, OKTO_EINVAL, "params[%d] is %s but %s is %s", i,
                                   OKTO__DESC(params[i]), name, OKTO__DESC(t));
        }
    }
    /* what is written (params, state) overlaps nothing else */
    for (int i = 0; i < n && s == OKTO_OK; i++)
        for (int q = 0; q < nroles && s == OKTO_OK; q++) {
            if (q == 1)
                continue;
            snprintf(name, sizeof name, "%s[%d]", rn[q][adam], i);
            for (int j = 0; j < n && s == OKTO_OK; j++)
                for (int u = 0; u < nroles && s == OKTO_OK; u++) {
                    if (j == i && u == q)
                        continue;
                    snprintf(other, sizeof other, "%s[%d]", rn[u][adam], j);
                    s = okto__rec_no_alias(&r, roles[i][q], name, roles[j][u], other, 0);
                }
            if (s == OKTO_OK)
                s = okto__rec_no_alias(&r, roles[i][q], name, sched, "sched", 0);
            if (s == OKTO_OK)
                s = okto__rec_no_alias(&r, roles[i][q], name, gscale, "gscale", 0);
        }
    int ng = 0;
    if (s == OKTO_OK) {
        for (int i = 0; i < n; i++)
            idx[i] = i;
        ng = make_groups(n, nroles, (const okto_tensor *const(*)[4])roles, idx, gr);
        if (ng < 0)
            s = okto__rec_fail(&r, OKTO_ENOMEM, "out of host memory");
    }
    okto_tensor sc, gs;
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, sched, &sc);
    if (s == OKTO_OK && gscale)
        s = okto__rk_in1d(&r, gscale, &gs);
    for (int k = 0; k < ng && s == OKTO_OK; k++) {
        const group *gk = &gr[k];
        const okto_tensor *const *rep = roles[idx[gk->first]];
        okto_tensor tab, dec, span[4];
        if ((s = write_table(&r, gk, idx, nroles, (const okto_tensor *const(*)[4])roles, decays,
                             &tab, &dec)) != OKTO_OK)
            break;
        for (int q = 0; q < nroles; q++)
            okto__rk_storage_range(rep[q], gk->lo[q], gk->hi[q], &span[q]);
        size_t l;
        okto__tb t;
        okto__tb_init(&t, &r, op);
        okto__tb_kernel(&t, "optim", rep[0]->dtype, NULL,
                        adam ? "okto_adamw_multi" : "okto_sgd_multi");
        if ((s = t.status) != OKTO_OK ||
            (s = okto__rk_local(&r, t.kid, OKTO__CHUNK, &l)) != OKTO_OK)
            break;
        okto__tb_arg_mem(&t, rep[0]);
        okto__tb_arg_mem(&t, rep[1]);
        okto__tb_arg_mem(&t, has_s0 ? rep[2] : rep[0]); /* never touched without momentum */
        if (adam)
            okto__tb_arg_mem(&t, rep[3]);
        okto__tb_arg_tensor(&t, &tab);
        okto__tb_arg_tensor(&t, &dec);
        okto__tb_arg_ulong(&t, gk->nchunks);
        if (adam) {
            okto__tb_arg_float(&t, beta1);
            okto__tb_arg_float(&t, beta2);
            okto__tb_arg_float(&t, eps);
        } else {
            okto__tb_arg_float(&t, momentum);
            okto__tb_arg_int(&t, nesterov != 0);
        }
        okto__tb_arg_tensor(&t, &sc);
        okto__tb_arg_tensor(&t, gscale ? &gs : &sc);
        okto__tb_arg_int(&t, gscale != NULL);
        okto__rk_range_rows(&t, l);
        for (int q = 0; q < nroles; q++)
            okto__tb_access(&t, &span[q], q == 1 ? OKTO__R : OKTO__RW);
        okto__tb_access(&t, &tab, OKTO__R);
        okto__tb_access(&t, &dec, OKTO__R);
        okto__tb_access(&t, &sc, OKTO__R);
        if (gscale)
            okto__tb_access(&t, &gs, OKTO__R);
        double e = (double)gk->nchunks * OKTO__CHUNK, esz = (double)okto_dtype_size(rep[0]->dtype);
        okto__tb_cost(&t, (adam ? 14 : 4) * e,
                      e * (3 * esz + (adam     ? 16
                                      : has_s0 ? 8
                                               : 0)),
                      (uint64_t)gk->nchunks ^ ((uint64_t)gk->count << 32) ^ ((uint64_t)adam << 62));
        s = okto__tb_commit(&t);
    }
    free(roles), free(idx), free(gr);
    return okto__rec_end(&r, s);
}

okto_status okto_sgd_multi(okto_graph *g, int n, okto_tensor *const *params,
                           const okto_tensor *const *grads, okto_tensor *const *momentum_bufs,
                           const float *decays, const okto_tensor *sched, const okto_tensor *gscale,
                           float momentum, int nesterov)
{
    return multi(g, 0, n, params, grads, momentum_bufs, NULL, decays, sched, gscale, momentum,
                 nesterov, 0, 0, 0);
}

okto_status okto_adamw_multi(okto_graph *g, int n, okto_tensor *const *params,
                             const okto_tensor *const *grads, okto_tensor *const *ms,
                             okto_tensor *const *vs, const float *decays, const okto_tensor *sched,
                             const okto_tensor *gscale, float beta1, float beta2, float eps)
{
    return multi(g, 1, n, params, grads, ms, vs, decays, sched, gscale, 0, 0, beta1, beta2, eps);
}

/* ---- horizontal batching (lib/engine/optimize.c) ------------------------------------------------ */

/* Independent okto_adamw tasks (parts of tensors included) whose parameters, gradients and
 * state each lie in one buffer, with the same betas, eps, schedule and gradient scale, become
 * one okto_adamw_multi launch over a chunk table of their ranges, each chunk with its task's
 * weight decay: the same per-element function, so the same bits. A model whose parameters sit
 * in arenas (lib/nn) steps in one launch even when its steps were recorded tensor by tensor. */
enum { ADAMW_NARGS = 18 };

static uint64_t arg_u64(const okto_graph *g, int task, int i)
{
    uint64_t v;
    memcpy(&v, okto__task_arg(g, task, i), sizeof v);
    return v;
}

static uint64_t adamw_batch_key(const okto_graph *g, int task)
{
    okto__task_info ti;
    okto__task_get(g, task, &ti);
    if (ti.fn || ti.nargs != ADAMW_NARGS)
        return 0;
    uint64_t h = 0xcbf29ce484222325ull ^ ti.kid;
    /* buffers (p, g, m, v, sched, gscale), betas, eps, offsets of sched and gscale, has_gscale */
    static const int keyed[] = {0, 2, 4, 6, 9, 10, 11, 13, 14, 15, 16, 17};
    for (size_t k = 0; k < sizeof keyed / sizeof *keyed; k++) {
        const unsigned char *p = okto__task_arg(g, task, keyed[k]);
        size_t n = keyed[k] >= 9 && keyed[k] <= 11 ? 4 : keyed[k] == 17 ? 4 : 8;
        for (size_t i = 0; i < n; i++)
            h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h ? h : 1;
}

static okto_status adamw_batch(okto__rec *r, const int *tasks, int n)
{
    okto_graph *g = r->g;
    size_t nc = 0;
    for (int i = 0; i < n; i++)
        nc += (arg_u64(g, tasks[i], 8) + OKTO__CHUNK - 1) / OKTO__CHUNK;
    if (nc == 0)
        return OKTO_EINVAL;
    okto_tensor tab, dec;
    okto_status s = okto__rec_temp(r, OKTO_I32, 1, (size_t[]){2 * OKTO__CHUNK_COLS * nc}, &tab);
    if (s == OKTO_OK)
        s = okto__rec_temp(r, OKTO_F32, 1, (size_t[]){nc}, &dec);
    if (s != OKTO_OK)
        return s;
    uint64_t *h = calloc(OKTO__CHUNK_COLS * nc, sizeof *h);
    float *d = calloc(nc, sizeof *d);
    if (!h || !d) {
        free(h), free(d);
        return OKTO_ENOMEM;
    }
    size_t c = 0;
    for (int i = 0; i < n; i++) {
        uint64_t po = arg_u64(g, tasks[i], 1), go = arg_u64(g, tasks[i], 3),
                 mo = arg_u64(g, tasks[i], 5), vo = arg_u64(g, tasks[i], 7),
                 len = arg_u64(g, tasks[i], 8);
        float wd;
        memcpy(&wd, okto__task_arg(g, tasks[i], 12), sizeof wd);
        for (uint64_t e = 0; e < len; e += OKTO__CHUNK, c++) {
            uint64_t *row = h + OKTO__CHUNK_COLS * c;
            row[0] = po + e, row[1] = go + e, row[2] = mo + e, row[3] = vo + e;
            row[4] = len - e < OKTO__CHUNK ? len - e : OKTO__CHUNK;
            d[c] = wd;
        }
    }
    s = okto_tensor_write(&tab, h);
    if (s == OKTO_OK)
        s = okto_tensor_write_f32(&dec, d);
    free(h), free(d);
    if (s != OKTO_OK)
        return s;
    int t0 = tasks[0];
    okto__task_info ti;
    okto__task_get(g, t0, &ti);
    okto__tb t;
    okto__tb_init(&t, r, OKTO__OP_ADAMW_MULTI);
    okto_dtype dt = (okto_dtype)ti.dtype; /* the single kernel's program's */
    okto__tb_kernel(&t, "optim", dt, NULL, "okto_adamw_multi");
    size_t l;
    if (t.status != OKTO_OK || okto__rk_local(r, t.kid, OKTO__CHUNK, &l) != OKTO_OK)
        return OKTO_EINVAL;
    for (int k = 0; k < 4; k++) /* p, g, m, v: the buffers alone, the table has the offsets */
        okto__tb_arg_value(&t, okto__task_arg(g, t0, 2 * k), sizeof(cl_mem));
    okto__tb_arg_tensor(&t, &tab);
    okto__tb_arg_tensor(&t, &dec);
    okto__tb_arg_ulong(&t, nc);
    for (int k = 9; k <= 11; k++) /* beta1, beta2, eps */
        okto__tb_arg_value(&t, okto__task_arg(g, t0, k), sizeof(float));
    for (int k = 13; k <= 17; k++) /* sched, its offset, gscale, its offset, has_gscale */
        okto__tb_arg_value(&t, okto__task_arg(g, t0, k), k == 17 ? sizeof(int) : 8);
    okto__rk_range_rows(&t, l);
    double e = (double)nc * OKTO__CHUNK, esz = (double)okto_dtype_size(dt);
    okto__tb_cost(&t, 14 * e, e * (3 * esz + 16),
                  (uint64_t)nc ^ ((uint64_t)n << 32) ^ (3ull << 62));
    return okto__tb_commit(&t);
}
