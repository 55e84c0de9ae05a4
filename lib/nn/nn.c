/* lib/nn/nn.c: parameter sets (one arena each for the parameters, their gradients and the
 * optimizer state), seeded initialisation, the layers, gradients and optimizer steps.
 *
 * Arenas. Parameters are views of one storage, each starting at a multiple of 16 elements; so
 * are the gradients (the same offsets in a second storage, so okto_backward writes them in
 * place: lib/autograd/backward.c's direct mode) and the optimizer's float32 state. An
 * optimizer step is then one launch over all of it (okto_adamw_multi, one launch per storage),
 * and zeroing the gradients one fill.
 *
 * Initialisation runs on the host, per parameter from its own stream (the nn's seed mixed with
 * the parameter's index), so a parameter's values do not depend on the others' sizes. */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

/* ---- names ----------------------------------------------------------------------------------- */
const char *okto_init_name(okto_init init)
{
    static const char *const names[] = {
#define OKTO__INIT_NAME(name, str) str,
        OKTO_INIT_MAP(OKTO__INIT_NAME)
#undef OKTO__INIT_NAME
    };
    return (unsigned)init < OKTO_INIT_COUNT ? names[init] : "?";
}

/* ---- the nn ---------------------------------------------------------------------------------- */
okto_status okto_nn_create(okto_context *ctx, okto_dtype dtype, uint64_t seed, okto_nn **out)
{
    if (!out)
        return okto__fail(ctx, OKTO_EINVAL, "okto_nn_create: out must not be NULL");
    *out = NULL;
    if (!ctx)
        return okto__fail(NULL, OKTO_EINVAL, "okto_nn_create: ctx must not be NULL");
    if (!(OKTO__DT_FLOATS & OKTO__DT_BIT(dtype)))
        return okto__fail(ctx, OKTO_EINVAL,
                          "okto_nn_create: dtype %s; parameters are f32, f16 or bf16",
                          okto_dtype_name(dtype));
    okto_nn *nn = calloc(1, sizeof *nn);
    if (!nn)
        return okto__fail(ctx, OKTO_ENOMEM, "okto_nn_create: out of host memory");
    nn->ctx = ctx;
    nn->dtype = dtype;
    nn->seed = seed;
    *out = nn;
    return OKTO_OK;
}

static void free_tensors(okto_nn *nn)
{
    for (int i = 0; i < nn->np; i++) {
        okto_tensor_destroy(nn->p[i].t);
        okto_tensor_destroy(nn->p[i].g);
        okto_tensor_destroy(nn->p[i].m);
        okto_tensor_destroy(nn->p[i].v);
        nn->p[i].t = nn->p[i].g = nn->p[i].m = nn->p[i].v = NULL;
    }
    okto_tensor *own[] = {nn->arena, nn->garena, nn->marena, nn->varena, nn->sched, nn->lr,
                          nn->clip, nn->clip_scale, nn->mask};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        okto_tensor_destroy(own[i]);
    nn->arena = nn->garena = nn->marena = nn->varena = NULL;
    nn->sched = nn->lr = nn->clip = nn->clip_scale = nn->mask = NULL;
    nn->mask_t = 0;
}

okto_status okto_nn_destroy(okto_nn *nn)
{
    if (!nn)
        return OKTO_OK;
    if (nn->arena && atomic_load(&nn->arena->st->busy) > 0)
        return okto__fail(nn->ctx, OKTO_EBUSY,
                          "okto_nn_destroy: a launched graph uses its parameters; wait for it");
    free_tensors(nn);
    for (int i = 0; i < nn->nl; i++)
        free(nn->layers[i]);
    free(nn->layers);
    free(nn->p);
    free(nn);
    return OKTO_OK;
}

/* ---- parameters ------------------------------------------------------------------------------ */
okto_status okto__nn_declare(okto_nn *nn, const char *fn, const char *name, int rank,
                             const size_t *shape, okto_init init, float scale, size_t fan_in,
                             size_t fan_out, int decay, int *index)
{
    if (nn->allocated)
        return okto__fail(nn->ctx, OKTO_ESTATE,
                          "%s: the parameters of this nn are allocated (by okto_nn_allocate or "
                          "the first forward): declare every layer before that",
                          fn);
    if ((unsigned)init >= OKTO_INIT_COUNT)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: init %d is not an okto_init", fn, (int)init);
    if (rank < 1 || rank > OKTO_MAX_RANK)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: %s has rank %d (1 to %d)", fn, name, rank,
                          OKTO_MAX_RANK);
    size_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (!shape[d])
            return okto__fail(nn->ctx, OKTO_EINVAL, "%s: %s has a dimension of 0", fn, name);
        n *= shape[d];
    }
    if (strlen(name) >= sizeof nn->p[0].name)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: the name \"%s\" is longer than %zu", fn,
                          name, sizeof nn->p[0].name - 1);
    for (int i = 0; i < nn->np; i++)
        if (strcmp(nn->p[i].name, name) == 0)
            return okto__fail(nn->ctx, OKTO_EINVAL, "%s: a parameter named \"%s\" exists", fn,
                              name);
    if (nn->np == nn->pcap) {
        int cap = nn->pcap ? 2 * nn->pcap : 16;
        okto__nn_param *p = realloc(nn->p, (size_t)cap * sizeof *p);
        if (!p)
            return okto__fail(nn->ctx, OKTO_ENOMEM, "%s: out of host memory", fn);
        nn->p = p;
        nn->pcap = cap;
    }
    okto__nn_param *p = &nn->p[nn->np];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rank = rank;
    memcpy(p->shape, shape, (size_t)rank * sizeof *shape);
    p->init = init;
    p->scale = scale;
    p->fan_in = fan_in ? fan_in : 1;
    p->fan_out = fan_out ? fan_out : 1;
    p->decay = decay;
    p->numel = n;
    if (index)
        *index = nn->np;
    nn->np++;
    return OKTO_OK;
}

okto_status okto_nn_param(okto_nn *nn, const char *name, int rank, const size_t *shape,
                          okto_init init, float scale, size_t fan_in, size_t fan_out, int decay,
                          int *index)
{
    if (!nn || !name || !shape)
        return okto__fail(nn ? nn->ctx : NULL, OKTO_EINVAL,
                          "okto_nn_param: nn, name and shape must not be NULL");
    return okto__nn_declare(nn, "okto_nn_param", name, rank, shape, init, scale, fan_in, fan_out,
                            decay, index);
}

/* splitmix64: one stream per parameter */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s) /* (0, 1) */
{
    return ((double)(mix(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void init_values(const okto__nn_param *p, uint64_t seed, int index, float *x)
{
    uint64_t s = seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(index + 1));
    double fin = (double)p->fan_in, fout = (double)p->fan_out, b = 0, sd = 0;
    switch (p->init) {
    case OKTO_INIT_ZEROS:
    case OKTO_INIT_ONES:
        for (size_t i = 0; i < p->numel; i++)
            x[i] = p->init == OKTO_INIT_ONES ? 1.0f : 0.0f;
        return;
    case OKTO_INIT_UNIFORM_FAN_IN: b = 1.0 / sqrt(fin); break;
    case OKTO_INIT_XAVIER: b = sqrt(6.0 / (fin + fout)); break;
    case OKTO_INIT_NORMAL: sd = p->scale > 0 ? p->scale : 0.02; break;
    case OKTO_INIT_KAIMING: sd = sqrt(2.0 / fin); break;
    default: break;
    }
    for (size_t i = 0; i < p->numel; i++) {
        if (b > 0) {
            x[i] = (float)((2 * unit(&s) - 1) * b);
        } else { /* Box-Muller, one value per pair of draws */
            double u = unit(&s), v = unit(&s);
            x[i] = (float)(sd * sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
        }
    }
}

/* A view [off, off + numel) of arena shaped like p. */
static okto_status view_of(okto_tensor *arena, const okto__nn_param *p, okto_tensor **out)
{
    okto_tensor *flat;
    okto_status s = okto_tensor_slice(arena, 0, p->off, p->numel, &flat);
    if (s == OKTO_OK) {
        s = okto_tensor_reshape(flat, p->rank, p->shape, out);
        okto_tensor_destroy(flat);
    }
    return s;
}

okto_status okto_nn_allocate(okto_nn *nn)
{
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "okto_nn_allocate: nn must not be NULL");
    if (nn->allocated)
        return OKTO_OK;
    if (!nn->np)
        return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_allocate: the nn has no parameters");
    size_t total = 0, biggest = 0;
    for (int i = 0; i < nn->np; i++) {
        nn->p[i].off = total;
        total += (nn->p[i].numel + 15) / 16 * 16;
        biggest = nn->p[i].numel > biggest ? nn->p[i].numel : biggest;
    }
    okto_status s = okto_tensor_create(nn->ctx, nn->dtype, 1, &total, &nn->arena);
    if (s == OKTO_OK)
        s = okto_tensor_create(nn->ctx, nn->dtype, 1, &total, &nn->garena);
    if (s == OKTO_OK)
        s = okto_tensor_create(nn->ctx, OKTO_F32, 1, &total, &nn->marena);
    if (s == OKTO_OK)
        s = okto_tensor_create(nn->ctx, OKTO_F32, 1, &total, &nn->varena);
    if (s == OKTO_OK)
        s = okto_tensor_create(nn->ctx, OKTO_F32, 1, (size_t[]){4}, &nn->sched);
    if (s == OKTO_OK)
        s = okto_tensor_slice(nn->sched, 0, 0, 1, &nn->lr);
    if (s == OKTO_OK)
        s = okto_tensor_create(nn->ctx, OKTO_F32, 1, (size_t[]){2}, &nn->clip);
    if (s == OKTO_OK)
        s = okto_tensor_slice(nn->clip, 0, 0, 1, &nn->clip_scale);
    float *host = s == OKTO_OK ? calloc(total, sizeof *host) : NULL;
    if (s == OKTO_OK && !host)
        s = okto__fail(nn->ctx, OKTO_ENOMEM, "okto_nn_allocate: out of host memory");
    for (int i = 0; i < nn->np && s == OKTO_OK; i++) {
        okto__nn_param *p = &nn->p[i];
        init_values(p, nn->seed, i, host + p->off);
        if ((s = view_of(nn->arena, p, &p->t)) == OKTO_OK &&
            (s = view_of(nn->garena, p, &p->g)) == OKTO_OK &&
            (s = view_of(nn->marena, p, &p->m)) == OKTO_OK)
            s = view_of(nn->varena, p, &p->v);
    }
    if (s == OKTO_OK)
        s = okto_tensor_write_f32(nn->arena, host);
    if (s == OKTO_OK) {
        memset(host, 0, total * sizeof *host);
        if ((s = okto_tensor_write_f32(nn->garena, host)) == OKTO_OK &&
            (s = okto_tensor_write_f32(nn->marena, host)) == OKTO_OK &&
            (s = okto_tensor_write_f32(nn->varena, host)) == OKTO_OK)
            s = okto_tensor_write_f32(nn->sched, host);
    }
    if (s == OKTO_OK)
        s = okto_tensor_set_requires_grad(nn->arena, 1);
    free(host);
    if (s != OKTO_OK) {
        free_tensors(nn);
        return s;
    }
    nn->total = total;
    nn->allocated = 1;
    return OKTO_OK;
}

int okto_nn_param_count(const okto_nn *nn)
{
    return nn ? nn->np : 0;
}

okto_tensor *okto_nn_grad_arena(const okto_nn *nn) { return nn ? nn->garena : NULL; }

size_t okto_nn_numel(const okto_nn *nn)
{
    size_t n = 0;
    for (int i = 0; nn && i < nn->np; i++)
        n += nn->p[i].numel;
    return n;
}

okto_status okto_nn_param_at(const okto_nn *nn, int i, const char **name, okto_tensor **param,
                             okto_tensor **grad)
{
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "okto_nn_param_at: nn must not be NULL");
    if (i < 0 || i >= nn->np)
        return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_param_at: index %d of %d parameters", i,
                          nn->np);
    if ((param || grad) && !nn->allocated)
        return okto__fail(nn->ctx, OKTO_ESTATE,
                          "okto_nn_param_at: the parameters are not allocated yet "
                          "(okto_nn_allocate, or the first forward)");
    if (name)
        *name = nn->p[i].name;
    if (param)
        *param = nn->p[i].t;
    if (grad)
        *grad = nn->p[i].g;
    return OKTO_OK;
}

okto_status okto_nn_param_state(const okto_nn *nn, int i, okto_tensor **m, okto_tensor **v)
{
    okto_status s = okto_nn_param_at(nn, i, NULL, m || v ? &(okto_tensor *){0} : NULL, NULL);
    if (s != OKTO_OK)
        return s;
    if (m)
        *m = nn->p[i].m;
    if (v)
        *v = nn->p[i].v;
    return OKTO_OK;
}

okto_tensor *okto__nn_p(const okto_nn *nn, int i)
{
    return nn->p[i].t;
}

/* ---- layers ---------------------------------------------------------------------------------- */
okto_status okto__nn_layer(okto_nn *nn, const char *fn, const char *name, int kind,
                           okto_layer **out)
{
    if (!out)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: layer must not be NULL", fn);
    *out = NULL;
    if (!name)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: name must not be NULL", fn);
    if (strlen(name) > 64)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: the name \"%s\" is longer than 64", fn, name);
    if (nn->allocated)
        return okto__fail(nn->ctx, OKTO_ESTATE,
                          "%s: the parameters of this nn are allocated: declare every layer "
                          "before okto_nn_allocate or the first forward",
                          fn);
    if (nn->nl == nn->lcap) {
        int cap = nn->lcap ? 2 * nn->lcap : 16;
        okto_layer **l = realloc(nn->layers, (size_t)cap * sizeof *l);
        if (!l)
            return okto__fail(nn->ctx, OKTO_ENOMEM, "%s: out of host memory", fn);
        nn->layers = l;
        nn->lcap = cap;
    }
    okto_layer *l = calloc(1, sizeof *l);
    if (!l)
        return okto__fail(nn->ctx, OKTO_ENOMEM, "%s: out of host memory", fn);
    l->nn = nn;
    l->kind = kind;
    l->act = OKTO_ACT_NONE;
    for (int i = 0; i < 4; i++)
        l->p[i] = -1;
    snprintf(l->name, sizeof l->name, "%s", name);
    nn->layers[nn->nl++] = l;
    *out = l;
    return OKTO_OK;
}

/* A failed declaration leaves no layer behind: the last one (just made) and the parameters
 * declared after np0 go again. */
void okto__nn_unlayer(okto_nn *nn, okto_layer *l, int np0)
{
    if (l && nn->nl && nn->layers[nn->nl - 1] == l) {
        nn->nl--;
        free(l);
    }
    nn->np = np0;
}

/* ---- gradients and optimizers ----------------------------------------------------------------- */
static okto_status need_alloc(okto_nn *nn, const char *fn)
{
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "%s: nn must not be NULL", fn);
    return nn->allocated ? OKTO_OK : okto_nn_allocate(nn);
}

okto_status okto_nn_backward(okto_graph *g, okto_nn *nn, const okto_tensor *loss, unsigned flags)
{
    okto_status s = need_alloc(nn, "okto_nn_backward");
    if (s != OKTO_OK)
        return s;
    const okto_tensor **ps = malloc((size_t)nn->np * sizeof *ps);
    okto_tensor **gs = malloc((size_t)nn->np * sizeof *gs);
    if (!ps || !gs) {
        free(ps);
        free(gs);
        return okto__fail(nn->ctx, OKTO_ENOMEM, "okto_nn_backward: out of host memory");
    }
    for (int i = 0; i < nn->np; i++)
        ps[i] = nn->p[i].t, gs[i] = nn->p[i].g;
    /* one fill of the whole gradient arena, then every gradient added */
    if (!(flags & OKTO_ACCUMULATE))
        s = okto_fill(g, nn->garena, 0.0f);
    if (s == OKTO_OK)
        s = okto_backward(g, loss, nn->np, ps, gs, flags | OKTO_ACCUMULATE);
    free(ps);
    free(gs);
    return s;
}

okto_optim okto_optim_default(okto_optim_kind kind)
{
    okto_optim o = {.kind = kind};
    if (kind == OKTO_OPTIM_SGD) {
        o.lr = 0.01f;
        o.momentum = 0.9f;
    } else {
        o.lr = 1e-3f;
        o.beta1 = 0.9f;
        o.beta2 = 0.999f;
        o.eps = 1e-8f;
        o.weight_decay = 0.01f;
    }
    return o;
}

okto_status okto_nn_update(okto_graph *g, okto_nn *nn, const okto_optim *o)
{
    okto_status s = need_alloc(nn, "okto_nn_update");
    if (s != OKTO_OK)
        return s;
    if (!o)
        return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_update: opt must not be NULL");
    if ((unsigned)o->kind >= OKTO_OPTIM_COUNT)
        return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_update: kind %d is not an okto_optim_kind",
                          (int)o->kind);
    if (!(o->lr >= 0) || !(o->weight_decay >= 0) || !(o->clip_norm >= 0) ||
        (o->kind == OKTO_OPTIM_ADAMW &&
         !(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->eps > 0)) ||
        (o->kind == OKTO_OPTIM_SGD && !(o->momentum >= 0)))
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "okto_nn_update: lr %g, weight_decay %g, clip_norm %g, momentum %g, "
                          "betas (%g, %g), eps %g: rates and decays >= 0, betas in [0, 1), "
                          "eps > 0",
                          o->lr, o->weight_decay, o->clip_norm, o->momentum, o->beta1, o->beta2,
                          o->eps);
    int n = nn->np;
    okto_tensor **ps = malloc((size_t)n * sizeof *ps), **ms = malloc((size_t)n * sizeof *ms);
    okto_tensor **vs = malloc((size_t)n * sizeof *vs);
    const okto_tensor **gs = malloc((size_t)n * sizeof *gs);
    float *decays = malloc((size_t)n * sizeof *decays);
    if (!ps || !ms || !vs || !gs || !decays)
        s = okto__fail(nn->ctx, OKTO_ENOMEM, "okto_nn_update: out of host memory");
    for (int i = 0; s == OKTO_OK && i < n; i++) {
        ps[i] = nn->p[i].t, gs[i] = nn->p[i].g, ms[i] = nn->p[i].m, vs[i] = nn->p[i].v;
        /* SGD's decay is L2 on everything (PyTorch); AdamW's skips biases and norms */
        decays[i] = o->kind == OKTO_OPTIM_SGD || nn->p[i].decay ? o->weight_decay : 0.0f;
    }
    const okto_tensor *gscale = NULL;
    if (s == OKTO_OK && o->clip_norm > 0) {
        s = okto_clip_grad_norm(g, n, gs, o->clip_norm, nn->clip);
        gscale = nn->clip_scale;
    }
    if (s == OKTO_OK)
        s = okto_sched_advance(g, nn->sched);
    if (s == OKTO_OK && o->kind == OKTO_OPTIM_ADAMW) {
        s = okto_adamw_prepare(g, nn->sched, o->beta1, o->beta2);
        if (s == OKTO_OK)
            s = okto_adamw_multi(g, n, ps, gs, ms, vs, decays, nn->sched, gscale, o->beta1,
                                 o->beta2, o->eps);
    } else if (s == OKTO_OK) {
        s = okto_sgd_multi(g, n, ps, gs, o->momentum != 0 ? ms : NULL, decays, nn->sched, gscale,
                           o->momentum, o->nesterov);
    }
    free(ps);
    free(ms);
    free(vs);
    free(gs);
    free(decays);
    /* the rate the steps start from */
    if (s == OKTO_OK && !nn->lr_set)
        s = okto_nn_set_lr(nn, o->lr);
    return s;
}

okto_status okto_nn_set_lr(okto_nn *nn, float lr)
{
    okto_status s = need_alloc(nn, "okto_nn_set_lr");
    if (s != OKTO_OK)
        return s;
    if (!(lr >= 0) || !isfinite(lr))
        return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_set_lr: lr %g (expected >= 0)", lr);
    if ((s = okto_tensor_write_f32(nn->lr, &lr)) == OKTO_OK)
        nn->lr_set = 1;
    return s;
}

okto_status okto_nn_steps(okto_nn *nn, long *out)
{
    okto_status s = need_alloc(nn, "okto_nn_steps");
    if (s != OKTO_OK)
        return s;
    if (!out)
        return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_steps: out must not be NULL");
    float v[4];
    if ((s = okto_tensor_read_f32(nn->sched, v)) == OKTO_OK)
        *out = (long)v[1];
    return s;
}

okto_status okto_nn_set_steps(okto_nn *nn, long steps)
{
    okto_status s = need_alloc(nn, "okto_nn_set_steps");
    if (s != OKTO_OK)
        return s;
    if (steps < 0 || steps > (1L << 24))
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "okto_nn_set_steps: %ld steps (0 to 2^24: the count is a float32)",
                          steps);
    float v[4];
    if ((s = okto_tensor_read_f32(nn->sched, v)) == OKTO_OK) {
        v[1] = (float)steps;
        s = okto_tensor_write_f32(nn->sched, v);
    }
    return s;
}

float okto_lr_schedule(float lr, float min_lr, long warmup, long total, long step)
{
    if (step < warmup)
        return lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup || step >= total)
        return step >= total && total > warmup ? min_lr : lr;
    double t = (double)(step - warmup) / (double)(total - warmup);
    return (float)(min_lr + 0.5 * (lr - min_lr) * (1 + cos(3.141592653589793 * t)));
}
