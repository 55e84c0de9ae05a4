/* lib/autograd/backward.c: okto_backward, reverse-mode gradients from the tape.
 *
 * Gradient buffers mirror storages: the gradient of a view of storage S is the same view (same
 * offset and strides) of S's gradient buffer, a graph-owned temporary of S's shape made when
 * the first gradient reaches S and zeroed then. So views of one storage share gradients, a value
 * read by several ops sums their contributions (every rule adds), and a rule needs no mapping
 * between the tensors it saw and their gradients. A parameter's gradient goes straight into the
 * caller's grads[i] when every gradient that reaches its storage lies inside one parameter laid
 * out like its grads[i] (the usual case: separate tensors); otherwise into a buffer of the whole
 * storage, copied out at the end.
 *
 * Three passes over the tape, then recording:
 *   forward:  which values depend on the parameters (regions, per storage, in tape order), so
 *             a rule is asked only for the input gradients that are wanted;
 *   reverse:  which entries the loss's gradient reaches (an output overlapping a pending
 *             gradient), checking each has a rule and that nothing overwrote what its rule
 *             reads; an entry that overwrote a value read or written earlier zeroes that
 *             region's gradient after its rule ran, so the earlier value's gradient starts
 *             from its own readers (buffers reused for several values stay correct);
 *   modes:    direct parameter gradients or whole-storage buffers;
 *   record:   the seed (ones over the loss), each reached entry's rule in reverse order, the
 *             zeroing, the copies out. All of it inside one recorder call, so a failure leaves
 *             nothing recorded. */
#include "engine.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- region lists ---------------------------------------------------------------------------- */
typedef struct reg_item {
    int key; /* a tape index, or a task index */
    okto__region r;
} reg_item;

typedef struct reg_list {
    reg_item *v;
    int n, cap;
} reg_list;

static int rl_push(reg_list *l, int key, const okto__region *r)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        reg_item *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (reg_item){key, *r};
    return 0;
}

/* Whether an item with key in [lo, hi) overlaps r (first such key in *key). */
static int rl_overlap(const reg_list *l, const okto__region *r, int lo, int hi, int *key)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i].key >= lo && l->v[i].key < hi && okto__region_overlap(&l->v[i].r, r)) {
            if (key)
                *key = l->v[i].key;
            return 1;
        }
    return 0;
}

static void rl_remove_covered(reg_list *l, const okto__region *r)
{
    int m = 0;
    for (int i = 0; i < l->n; i++)
        if (!okto__region_covers(r, &l->v[i].r))
            l->v[m++] = l->v[i];
    l->n = m;
}

/* ---- state ----------------------------------------------------------------------------------- */
enum { MODE_MIRROR = 0, MODE_DIRECT = 1 };
enum { ACT_RULE = 1 };

typedef struct store_ad {
    reg_list req;    /* regions whose values depend on a parameter */
    reg_list pend;   /* regions a gradient reaches */
    reg_list touch;  /* every tape slot's region, keyed by tape index */
    reg_list writes; /* tasks' writes, keyed by task index */
    int has_param, direct_ok, mode;
    okto_tensor mirror; /* the whole storage's gradient buffer; st NULL until made */
} store_ad;

typedef struct node_ad {
    uint16_t need_in;  /* input slots whose gradient is wanted */
    uint16_t pend_out; /* output slots a gradient reaches */
    uint16_t zero_out; /* output slots whose gradient is zeroed after the rule */
    uint8_t act;
} node_ad;

struct okto__grad {
    okto__rec *r;
    okto_graph *g;
    int nstores, nnodes, ntasks;
    store_ad *s;
    node_ad *na;
    int n;
    const okto_tensor *const *params;
    okto_tensor *const *grads;
    int *pstore;
    okto__region *preg;
    /* the entry whose rule runs */
    const okto__ad_node *node;
    int node_index;
    okto_tensor gin[OKTO__AD_SLOTS], gout[OKTO__AD_SLOTS];
    unsigned has_in, has_out;
};

okto_graph *okto__grad_graph(const okto__grad *gr)
{
    return gr->g;
}

okto_tensor *okto__grad_in(okto__grad *gr, int k)
{
    return k >= 0 && k < gr->node->nin && (gr->has_in >> k & 1) ? &gr->gin[k] : NULL;
}

const okto_tensor *okto__grad_out(okto__grad *gr, int k)
{
    return k >= 0 && k < gr->node->nout && (gr->has_out >> k & 1) ? &gr->gout[k] : NULL;
}

okto_status okto__grad_temp(okto__grad *gr, okto_dtype dtype, int rank, const size_t *shape,
                            okto_tensor *out)
{
    return okto__rec_temp(gr->r, dtype, rank, shape, out);
}

okto_status okto__grad_fail(okto__grad *gr, okto_status s, const char *fmt, ...)
{
    char msg[OKTO__ERR_MAX - 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const okto__ad_node *n = gr->node;
    return okto__rec_fail(gr->r, s, "the gradient of %s (%s, tape entry %d): %s", n ? n->fn : "?",
                          n ? okto__ops[n->op]->name : "?", gr->node_index, msg);
}

/* The storage index and region of a tape tensor; 0 when it is not one of the graph's. */
static int where(const okto__grad *gr, const okto_tensor *t, int *si, okto__region *reg)
{
    if (!t || !t->st)
        return 0;
    *si = okto__graph_store_find(gr->g, t->st);
    if (*si < 0 || *si >= gr->nstores)
        return 0;
    okto__region_of(t, reg);
    return 1;
}

static int is_float(const okto_tensor *t)
{
    return (OKTO__DT_FLOATS & OKTO__DT_BIT(t->dtype)) != 0;
}

static okto_status oom(okto__grad *gr)
{
    return okto__rec_fail(gr->r, OKTO_ENOMEM, "out of host memory");
}

/* The parameter whose region holds region reg of storage si and whose gradient is laid out like
 * it (so t's gradient is t shifted into grads[p]); -1 if none. */
static int param_of(const okto__grad *gr, int si, const okto__region *reg)
{
    for (int p = 0; p < gr->n; p++) {
        if (gr->pstore[p] != si || !okto__region_covers(&gr->preg[p], reg))
            continue;
        const okto_tensor *a = gr->params[p], *b = gr->grads[p];
        int same = 1;
        for (int d = 0; d < a->rank; d++)
            same &= a->shape[d] == 1 || a->stride[d] == b->stride[d];
        okto__region exact;
        return same && okto__region_of(a, &exact) ? p : -1;
    }
    return -1;
}

/* *out = the gradient of t: a view of its storage's gradient buffer (made and zeroed on first
 * use), or of grads[p] for a parameter's storage in direct mode. */
static okto_status grad_view(okto__grad *gr, const okto_tensor *t, okto_tensor *out)
{
    int si;
    okto__region reg;
    if (!where(gr, t, &si, &reg))
        return okto__rec_fail(gr->r, OKTO_ESTATE, "a gradient for a tensor off the tape");
    store_ad *sa = &gr->s[si];
    *out = *t;
    out->heap = 0;
    if (sa->mode == MODE_DIRECT) {
        int p = param_of(gr, si, &reg);
        if (p < 0)
            return okto__rec_fail(gr->r, OKTO_ESTATE, "a parameter gradient outside params");
        out->st = gr->grads[p]->st;
        out->offset = t->offset - gr->params[p]->offset + gr->grads[p]->offset;
        return OKTO_OK;
    }
    if (!sa->mirror.st) {
        okto__storage *st = t->st;
        okto_status s = okto__rec_temp(gr->r, st->dtype, OKTO_MAX_RANK, st->shape, &sa->mirror);
        if (s == OKTO_OK)
            s = okto_fill(gr->g, &sa->mirror, 0.0f);
        if (s != OKTO_OK) {
            sa->mirror.st = NULL;
            return s;
        }
    }
    out->st = sa->mirror.st;
    return OKTO_OK;
}

/* ---- checking the arguments ------------------------------------------------------------------ */
static okto_status check_args(okto__grad *gr, const okto_tensor *loss, unsigned flags)
{
    okto__rec *r = gr->r;
    okto_status s = OKTO_OK;
    if (r->depth != 1)
        return okto__rec_fail(r, OKTO_EINVAL, "cannot be called from inside another op");
    if (flags & ~(unsigned)OKTO_ACCUMULATE)
        return okto__rec_fail(r, OKTO_EINVAL, "unknown flags 0x%x (OKTO_ACCUMULATE is the one)",
                              flags & ~(unsigned)OKTO_ACCUMULATE);
    if ((s = okto__rec_tensor(r, loss, "loss", OKTO__DT_FLOATS)) != OKTO_OK)
        return s;
    if (gr->n < 1)
        return okto__rec_fail(r, OKTO_EINVAL, "n is %d: name at least one parameter", gr->n);
    if (!gr->params || !gr->grads)
        return okto__rec_fail(r, OKTO_EINVAL, "params and grads must not be NULL");
    for (int i = 0; i < gr->n; i++) {
        const okto_tensor *p = gr->params[i];
        okto_tensor *d = gr->grads[i];
        char pn[24], dn[24];
        snprintf(pn, sizeof pn, "params[%d]", i);
        snprintf(dn, sizeof dn, "grads[%d]", i);
        if ((s = okto__rec_tensor(r, p, pn, OKTO__DT_FLOATS)) != OKTO_OK ||
            (s = okto__rec_output(r, d, dn, OKTO__DT_FLOATS)) != OKTO_OK)
            return s;
        if (!atomic_load(&p->st->requires_grad))
            return okto__rec_fail(r, OKTO_EINVAL,
                                  "%s (%s) is not marked: call okto_tensor_set_requires_grad on "
                                  "it before recording the ops that read it",
                                  pn, OKTO__DESC(p));
        if (!okto__same_shape(p, d) || p->dtype != d->dtype)
            return okto__rec_fail(r, OKTO_EINVAL, "%s is %s but %s is %s", pn, OKTO__DESC(p), dn,
                                  OKTO__DESC(d));
        int di = okto__graph_store_find(gr->g, d->st);
        if (atomic_load(&d->st->requires_grad) || (di >= 0 && gr->g->stores[di].ad_req))
            return okto__rec_fail(r, OKTO_EINVAL,
                                  "%s (%s) lies in a storage the forward pass computes with",
                                  dn, OKTO__DESC(d));
        for (int j = 0; j < i; j++) {
            if (p->st == gr->params[j]->st && okto__views_overlap(p, gr->params[j]))
                return okto__rec_fail(r, OKTO_EINVAL, "params[%d] (%s) and %s (%s) overlap", j,
                                      OKTO__DESC(gr->params[j]), pn, OKTO__DESC(p));
            if (d->st == gr->grads[j]->st && okto__views_overlap(d, gr->grads[j]))
                return okto__rec_fail(r, OKTO_EINVAL, "grads[%d] (%s) and %s (%s) overlap", j,
                                      OKTO__DESC(gr->grads[j]), dn, OKTO__DESC(d));
        }
    }
    return OKTO_OK;
}

/* ---- the passes ------------------------------------------------------------------------------ */
static okto_status pass_forward(okto__grad *gr)
{
    for (int p = 0; p < gr->n; p++) {
        int si;
        gr->pstore[p] = -1;
        if (!where(gr, gr->params[p], &si, &gr->preg[p]))
            continue; /* nothing recorded reads it: its gradient is zero */
        gr->pstore[p] = si;
        gr->s[si].has_param = 1;
        if (rl_push(&gr->s[si].req, -1, &gr->preg[p]) < 0)
            return oom(gr);
    }
    for (int k = 0; k < gr->nnodes; k++) {
        const okto__ad_node *n = &gr->g->nodes[k];
        node_ad *na = &gr->na[k];
        int nslots = n->nin + n->nout + n->naux;
        for (int j = 0; j < nslots; j++) {
            int si;
            okto__region reg;
            if (where(gr, &n->t[j], &si, &reg) && rl_push(&gr->s[si].touch, k, &reg) < 0)
                return oom(gr);
        }
        for (int j = 0; j < n->nin; j++) {
            int si;
            okto__region reg;
            if (where(gr, &n->t[j], &si, &reg) && is_float(&n->t[j]) &&
                rl_overlap(&gr->s[si].req, &reg, -1, k, NULL))
                na->need_in |= (uint16_t)(1u << j);
        }
        if (!na->need_in)
            continue;
        for (int j = n->nin; j < n->nin + n->nout; j++) {
            int si;
            okto__region reg;
            if (where(gr, &n->t[j], &si, &reg) && is_float(&n->t[j]) &&
                rl_push(&gr->s[si].req, k, &reg) < 0)
                return oom(gr);
        }
    }
    return OKTO_OK;
}

/* Whether one of n's outputs overlaps one of its inputs (an in-place call: its rule turns the
 * output's gradient into the input's where they share a buffer). */
static int in_place(const okto__ad_node *n)
{
    for (int j = n->nin; j < n->nin + n->nout; j++)
        for (int i = 0; i < n->nin; i++)
            if (n->t[i].st && n->t[j].st && n->t[i].st == n->t[j].st &&
                okto__views_overlap(&n->t[i], &n->t[j]))
                return 1;
    return 0;
}

/* What n's rule reads must still hold the values n saw: no write to it from n's own tasks on
 * (inputs) or after them (outputs, statistics) up to this call. */
static okto_status check_saved(okto__grad *gr, int k)
{
    const okto__ad_node *n = &gr->g->nodes[k];
    for (int j = 0; j < n->nin + n->nout + n->naux; j++) {
        int si, task;
        okto__region reg;
        if (!(n->saved >> j & 1) || !where(gr, &n->t[j], &si, &reg))
            continue;
        int from = j < n->nin ? n->task0 : n->task1;
        if (!rl_overlap(&gr->s[si].writes, &reg, from, gr->ntasks, &task))
            continue;
        gr->node = n;
        gr->node_index = k;
        return okto__grad_fail(gr, OKTO_EINVAL,
                               "it reads %s, which task %d (%s) overwrites %s; record the op out "
                               "of place, or into a buffer nothing reuses before the gradient",
                               OKTO__DESC(&n->t[j]), task, okto__ops[gr->g->tasks[task].op]->name,
                               task < n->task1 ? "in the same call" : "later");
    }
    return OKTO_OK;
}

static okto_status pass_reverse(okto__grad *gr, const okto_tensor *loss)
{
    int si;
    okto__region reg;
    if (!where(gr, loss, &si, &reg) || rl_push(&gr->s[si].pend, gr->nnodes, &reg) < 0)
        return okto__rec_fail(gr->r, OKTO_EINVAL,
                              "loss (%s) was not computed by ops recorded on this graph from "
                              "a marked parameter",
                              OKTO__DESC(loss));
    int reached = 0;
    for (int k = gr->nnodes; k-- > 0;) {
        const okto__ad_node *n = &gr->g->nodes[k];
        node_ad *na = &gr->na[k];
        for (int j = 0; j < n->nout; j++) {
            const okto_tensor *t = &n->t[n->nin + j];
            if (where(gr, t, &si, &reg) && is_float(t) &&
                rl_overlap(&gr->s[si].pend, &reg, k, gr->nnodes + 1, NULL))
                na->pend_out |= (uint16_t)(1u << j);
        }
        if (!na->pend_out)
            continue;
        if (na->need_in) {
            gr->node = n;
            gr->node_index = k;
            if (!okto__ops[n->op]->backward)
                return okto__grad_fail(gr, OKTO_EINVAL,
                                       "the loss depends on the parameters through this op, which "
                                       "has no gradient");
            okto_status s = check_saved(gr, k);
            if (s != OKTO_OK)
                return s;
            na->act = ACT_RULE;
            reached = 1;
            for (int j = 0; j < n->nin; j++)
                if (na->need_in >> j & 1) {
                    where(gr, &n->t[j], &si, &reg);
                    if (rl_push(&gr->s[si].pend, k, &reg) < 0)
                        return oom(gr);
                }
        }
        if (!n->overwrite || in_place(n))
            continue;
        for (int j = 0; j < n->nout; j++) {
            if (!(na->pend_out >> j & 1))
                continue;
            where(gr, &n->t[n->nin + j], &si, &reg);
            /* a parameter's gradient sums every read of it; other values start again where
             * they were written, if anything earlier saw the region */
            if (gr->s[si].has_param || !rl_overlap(&gr->s[si].touch, &reg, 0, k, NULL))
                continue;
            na->zero_out |= (uint16_t)(1u << j);
            rl_remove_covered(&gr->s[si].pend, &reg);
        }
    }
    if (!reached)
        return okto__rec_fail(gr->r, OKTO_EINVAL,
                              "loss (%s) does not depend on any of the %d parameters through "
                              "ops recorded on this graph",
                              OKTO__DESC(loss), gr->n);
    return OKTO_OK;
}

/* Direct gradients for a parameter's storage when every gradient reaching it maps into one
 * parameter laid out like its grads[i]. */
static void pass_modes(okto__grad *gr, const okto_tensor *loss)
{
    for (int si = 0; si < gr->nstores; si++)
        gr->s[si].direct_ok = gr->s[si].has_param;
    int si;
    okto__region reg;
    if (where(gr, loss, &si, &reg))
        gr->s[si].direct_ok = 0;
    for (int k = 0; k < gr->nnodes; k++) {
        const okto__ad_node *n = &gr->g->nodes[k];
        const node_ad *na = &gr->na[k];
        if (!na->act && !na->zero_out)
            continue;
        for (int j = 0; j < n->nin + n->nout; j++) {
            int wanted = j < n->nin ? (na->act && (na->need_in >> j & 1))
                                    : (na->pend_out >> (j - n->nin) & 1);
            if (wanted && where(gr, &n->t[j], &si, &reg) && gr->s[si].direct_ok &&
                param_of(gr, si, &reg) < 0)
                gr->s[si].direct_ok = 0;
        }
    }
    for (si = 0; si < gr->nstores; si++)
        gr->s[si].mode = gr->s[si].direct_ok ? MODE_DIRECT : MODE_MIRROR;
}

/* The rule of an entry. In place (out is an input, the same view), the input's gradient and the
 * output's share one buffer, and the input's replaces the output's there: the rule adds into a
 * zeroed temporary, copied over the shared region once the rule has read it. Unless the
 * input's gradient is the output's (an identity: y += ...): then the buffer holds it already,
 * and the rule is not asked for it (once per output; a second aliased input, x + x in place,
 * goes through a temporary added on top). */
static okto_status run_rule(okto__grad *gr, const okto__ad_node *n)
{
    int alias[OKTO__AD_SLOTS];
    okto_tensor shared[OKTO__AD_SLOTS];
    okto_status s = OKTO_OK;
    unsigned replaced = 0, asked = gr->has_in;
    for (int j = 0; j < n->nin && s == OKTO_OK; j++) {
        alias[j] = -1;
        if (!(gr->has_in >> j & 1))
            continue;
        for (int o = 0; o < n->nout && alias[j] < 0; o++) {
            const okto_tensor *a = &gr->gin[j], *b = &gr->gout[o];
            if (!(gr->has_out >> o & 1) || a->st != b->st || !okto__views_overlap(a, b))
                continue;
            if (!okto__same_view(a, b))
                return okto__grad_fail(gr, OKTO_ENOTSUP,
                                       "input %d (%s) partly overlaps output %d (%s)", j,
                                       OKTO__DESC(&n->t[j]), o, OKTO__DESC(&n->t[n->nin + o]));
            alias[j] = o;
            if ((n->identity >> j & 1) && !(replaced >> o & 1)) {
                replaced |= 1u << o;
                gr->has_in &= ~(1u << j);
                alias[j] = -1;
                continue;
            }
            shared[j] = *a;
            if ((s = okto__rec_temp(gr->r, shared[j].dtype, shared[j].rank, shared[j].shape,
                                    &gr->gin[j])) == OKTO_OK)
                s = okto_fill(gr->g, &gr->gin[j], 0.0f);
        }
    }
    if (s == OKTO_OK && gr->has_in)
        s = okto__ops[n->op]->backward(gr, n);
    gr->has_in = asked;
    for (int j = 0; j < n->nin && s == OKTO_OK; j++) {
        if (!(gr->has_in >> j & 1) || alias[j] < 0)
            continue;
        if (replaced >> alias[j] & 1) {
            s = okto_axpy(gr->g, &shared[j], 1.0f, &gr->gin[j]);
        } else {
            s = okto_copy(gr->g, &shared[j], &gr->gin[j]);
            replaced |= 1u << alias[j];
        }
    }
    return s;
}

static okto_status record(okto__grad *gr, const okto_tensor *loss, unsigned flags)
{
    okto_graph *g = gr->g;
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    okto_status s = OKTO_OK;
    /* grads written directly start at zero (or at what they hold, accumulating); so do those
     * of parameters nothing recorded reads */
    for (int p = 0; p < gr->n && s == OKTO_OK; p++)
        if (!acc && (gr->pstore[p] < 0 || gr->s[gr->pstore[p]].mode == MODE_DIRECT))
            s = okto_fill(g, gr->grads[p], 0.0f);
    okto_tensor seed;
    if (s == OKTO_OK)
        s = grad_view(gr, loss, &seed);
    if (s == OKTO_OK)
        s = okto_fill(g, &seed, 1.0f);
    for (int k = gr->nnodes; k-- > 0 && s == OKTO_OK;) {
        const okto__ad_node *n = &g->nodes[k];
        const node_ad *na = &gr->na[k];
        gr->node = n;
        gr->node_index = k;
        gr->has_in = gr->has_out = 0;
        if (na->act) {
            for (int j = 0; j < n->nin && s == OKTO_OK; j++)
                if (na->need_in >> j & 1 && (s = grad_view(gr, &n->t[j], &gr->gin[j])) == OKTO_OK)
                    gr->has_in |= 1u << j;
            for (int j = 0; j < n->nout && s == OKTO_OK; j++)
                if (na->pend_out >> j & 1 &&
                    (s = grad_view(gr, &n->t[n->nin + j], &gr->gout[j])) == OKTO_OK)
                    gr->has_out |= 1u << j;
            if (s == OKTO_OK)
                s = run_rule(gr, n);
        }
        for (int j = 0; j < n->nout && s == OKTO_OK; j++) {
            okto_tensor z;
            if (na->zero_out >> j & 1 && (s = grad_view(gr, &n->t[n->nin + j], &z)) == OKTO_OK)
                s = okto_fill(g, &z, 0.0f);
        }
    }
    gr->node = NULL;
    /* parameters whose storage kept a whole-storage buffer: copy their part out */
    for (int p = 0; p < gr->n && s == OKTO_OK; p++) {
        if (gr->pstore[p] < 0 || gr->s[gr->pstore[p]].mode == MODE_DIRECT)
            continue;
        okto_tensor v;
        if (!gr->s[gr->pstore[p]].mirror.st) {
            s = acc ? OKTO_OK : okto_fill(g, gr->grads[p], 0.0f); /* no gradient reached it */
            continue;
        }
        if ((s = grad_view(gr, gr->params[p], &v)) == OKTO_OK)
            s = acc ? okto_axpy(g, gr->grads[p], 1.0f, &v) : okto_copy(g, gr->grads[p], &v);
    }
    return s;
}

okto_status okto_backward(okto_graph *g, const okto_tensor *loss, int n,
                          const okto_tensor *const *params, okto_tensor *const *grads,
                          unsigned flags)
{
    okto__rec r;
    /* the op id only names the call: the tasks are the rules' own ops */
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_FILL, "okto_backward");
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    okto__grad gr = {.r = &r, .g = g, .n = n, .params = params, .grads = grads};
    gr.nstores = g->nstores;
    gr.nnodes = g->nnodes;
    gr.ntasks = g->ntasks;
    s = check_args(&gr, loss, flags);
    if (s == OKTO_OK) {
        gr.s = calloc((size_t)gr.nstores + 1, sizeof *gr.s);
        gr.na = calloc((size_t)gr.nnodes + 1, sizeof *gr.na);
        gr.pstore = calloc((size_t)n, sizeof *gr.pstore);
        gr.preg = calloc((size_t)n, sizeof *gr.preg);
        if (!gr.s || !gr.na || !gr.pstore || !gr.preg)
            s = oom(&gr);
    }
    /* every write of every task so far, per storage, for check_saved */
    for (int t = 0; t < gr.ntasks && s == OKTO_OK; t++) {
        const okto__task *task = &g->tasks[t];
        const okto__access *a = okto__task_acc(g, task);
        for (uint32_t i = 0; i < task->nacc && s == OKTO_OK; i++)
            if ((a[i].mode & OKTO__W) && (int)a[i].store < gr.nstores &&
                rl_push(&gr.s[a[i].store].writes, t, &a[i].region) < 0)
                s = oom(&gr);
    }
    if (s == OKTO_OK)
        s = pass_forward(&gr);
    if (s == OKTO_OK)
        s = pass_reverse(&gr, loss);
    if (s == OKTO_OK) {
        pass_modes(&gr, loss);
        s = record(&gr, loss, flags);
    }
    if (gr.s)
        for (int i = 0; i < gr.nstores; i++) {
            free(gr.s[i].req.v);
            free(gr.s[i].pend.v);
            free(gr.s[i].touch.v);
            free(gr.s[i].writes.v);
        }
    free(gr.s);
    free(gr.na);
    free(gr.pstore);
    free(gr.preg);
    return okto__rec_end(&r, s);
}
