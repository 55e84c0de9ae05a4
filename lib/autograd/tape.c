/* lib/autograd/tape.c: the tape, and the parameter marks it starts from.
 *
 * An op call goes on the tape when one of its tensors lies in a storage that needs a gradient:
 * one marked with okto_tensor_set_requires_grad, or one this graph's tape already wrote a value
 * to (gstore.ad_req). Storages stand for values here, coarsely (a buffer that holds both a value
 * made from a parameter and one that is not still counts as needing one); okto_backward then
 * works region by region, so the coarseness costs tape entries, never a wrong gradient.
 * Outputs count too, not only inputs: a call that overwrites a value on the tape (a fill of an
 * activation buffer) cuts the gradient there, and okto_backward must see it. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

okto_status okto_tensor_set_requires_grad(okto_tensor *t, int on)
{
    if (!t)
        return okto__fail(NULL, OKTO_EINVAL, "okto_tensor_set_requires_grad: t must not be NULL");
    if (!(OKTO__DT_FLOATS & OKTO__DT_BIT(t->dtype)))
        return okto__fail(t->st->ctx, OKTO_EINVAL,
                          "okto_tensor_set_requires_grad: t is %s; only f32, f16 and bf16 "
                          "tensors have gradients",
                          OKTO__DESC(t));
    atomic_store(&t->st->requires_grad, on != 0);
    return OKTO_OK;
}

int okto_tensor_requires_grad(const okto_tensor *t)
{
    return t && atomic_load(&t->st->requires_grad);
}

static int needs_grad(const okto_graph *g, const okto__storage *st)
{
    if (atomic_load(&st->requires_grad))
        return 1;
    int i = okto__graph_store_find(g, st);
    return i >= 0 && g->stores[i].ad_req;
}

int okto__ad_active(const okto__rec *r, int n, const okto_tensor *const *t)
{
    if (!r->g || r->depth != 1)
        return 0;
    for (int i = 0; i < n; i++)
        if (t[i] && needs_grad(r->g, t[i]->st))
            return 1;
    return 0;
}

okto_status okto__ad_record(okto__rec *r, const okto__ad_call *c)
{
    int nio = c->nin + c->nout;
    if (!okto__ad_active(r, nio, c->t))
        return OKTO_OK;
    okto_graph *g = r->g;
    if (g->nnodes == g->nodecap) {
        int cap = g->nodecap ? 2 * g->nodecap : 64;
        okto__ad_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory for the gradient tape");
        g->nodes = nodes;
        g->nodecap = cap;
    }
    okto__ad_node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->op = (uint16_t)c->op;
    n->nin = (uint8_t)c->nin;
    n->nout = (uint8_t)c->nout;
    n->naux = (uint8_t)c->naux;
    n->overwrite = (uint8_t)c->overwrite;
    n->saved = (uint16_t)c->saved;
    n->identity = (uint16_t)c->identity;
    n->fn = r->fn;
    n->task0 = r->start;
    n->task1 = g->ntasks;
    memcpy(n->f, c->f, sizeof n->f);
    memcpy(n->i, c->i, sizeof n->i);
    for (int k = 0; k < nio + c->naux; k++) {
        if (!c->t[k])
            continue;
        /* the graph keeps every storage on its tape (most are its tasks' already) */
        int si = okto__graph_store(g, c->t[k]->st);
        if (si < 0)
            return okto__rec_fail(r, OKTO_ENOMEM, "out of host memory for the gradient tape");
        n->t[k] = *c->t[k];
        n->t[k].heap = 0;
        if (k >= c->nin && k < nio && (OKTO__DT_FLOATS & OKTO__DT_BIT(c->t[k]->dtype)))
            g->stores[si].ad_req = 1;
    }
    g->nnodes++;
    return OKTO_OK;
}
