/* lib/engine/deps.c: dependency analysis. Each task's accesses (storage, region, mode) give its
 * dependencies:
 *   - two accesses conflict when their regions overlap and one of them writes (RAW, WAR, WAW);
 *     disjoint regions never conflict, which is what lets partitioned layers pipeline;
 *   - a write that covers an earlier access hides it (the write depends on it already), so only
 *     the nearest conflicts become edges;
 *   - edges implied through another dependency of the same task are then dropped (transitive
 *     reduction, with a bounded search), so wait lists stay short.
 *
 * Scale: a storage's index is its live frontier, not its history. Dimension 0 of the storage is
 * cut into segments (a treap keyed by their first index, split wherever an access begins or
 * ends); each segment keeps the writes not yet hidden and the reads since, with their inner
 * boxes. An access visits only the segments it spans and, in them, only the live records, so a
 * graph of n tasks is analysed in O(n log n) for the usual patterns (row views of one tensor,
 * chains, fans), where scanning each storage's history was quadratic. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct rec {
    uint32_t task;
    uint32_t lo[3], hi[3];
} rec;

typedef struct recs {
    rec *v;
    uint32_t n, cap;
} recs;

typedef struct seg seg;
struct seg {
    uint64_t key; /* first index of dimension 0; the segment ends at the next key */
    uint32_t prio;
    seg *l, *r;
    recs w, rd; /* live writes, reads since */
};

struct okto__dindex {
    seg *root;
    uint64_t dim0;
    uint32_t rng;
};

static int recs_push(recs *s, rec x)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 2;
        rec *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

static int recs_copy(recs *dst, const recs *src)
{
    dst->n = dst->cap = 0;
    dst->v = NULL;
    if (!src->n)
        return 0;
    if (!(dst->v = malloc(src->n * sizeof *dst->v)))
        return -1;
    memcpy(dst->v, src->v, src->n * sizeof *dst->v);
    dst->n = dst->cap = src->n;
    return 0;
}

static void seg_free(seg *s)
{
    while (s) { /* the right spine iteratively, the left recursively: depth O(log n) expected */
        seg_free(s->l);
        seg *r = s->r;
        free(s->w.v);
        free(s->rd.v);
        free(s);
        s = r;
    }
}

void okto__dindex_free(okto__dindex *ix)
{
    if (ix) {
        seg_free(ix->root);
        free(ix);
    }
}

static uint32_t next_prio(okto__dindex *ix)
{
    uint32_t x = ix->rng; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return ix->rng = x;
}

static seg *seg_new(okto__dindex *ix, uint64_t key)
{
    seg *s = calloc(1, sizeof *s);
    if (s) {
        s->key = key;
        s->prio = next_prio(ix);
    }
    return s;
}

/* The segment holding index x (the one with the largest key <= x). */
static seg *seg_find(seg *t, uint64_t x)
{
    seg *best = NULL;
    while (t) {
        if (t->key <= x) {
            best = t;
            t = t->r;
        } else {
            t = t->l;
        }
    }
    return best;
}

static seg *rot_right(seg *t)
{
    seg *l = t->l;
    t->l = l->r;
    l->r = t;
    return l;
}

static seg *rot_left(seg *t)
{
    seg *r = t->r;
    t->r = r->l;
    r->l = t;
    return r;
}

static seg *seg_insert(seg *t, seg *n)
{
    if (!t)
        return n;
    if (n->key < t->key) {
        t->l = seg_insert(t->l, n);
        if (t->l->prio > t->prio)
            t = rot_right(t);
    } else {
        t->r = seg_insert(t->r, n);
        if (t->r->prio > t->prio)
            t = rot_left(t);
    }
    return t;
}

/* Makes x a segment boundary (0 < x < dim0): the segment holding x is cut in two, both halves
 * with its records. */
static int split_at(okto__dindex *ix, uint64_t x)
{
    if (x == 0 || x >= ix->dim0)
        return 0;
    seg *s = seg_find(ix->root, x);
    if (s->key == x)
        return 0;
    seg *n = seg_new(ix, x);
    if (!n || recs_copy(&n->w, &s->w) < 0 || recs_copy(&n->rd, &s->rd) < 0) {
        if (n) {
            free(n->w.v);
            free(n);
        }
        return -1;
    }
    ix->root = seg_insert(ix->root, n);
    return 0;
}

static okto__dindex *index_of(okto_graph *g, uint32_t store)
{
    okto__gstore *gs = &g->stores[store];
    if (!gs->ix) {
        okto__dindex *ix = calloc(1, sizeof *ix);
        if (!ix)
            return NULL;
        ix->rng = 0x9e3779b9u ^ store;
        ix->dim0 = gs->st->shape[0];
        if (!(ix->root = seg_new(ix, 0))) {
            free(ix);
            return NULL;
        }
        gs->ix = ix;
    }
    return gs->ix;
}

static int inner_overlap(const rec *a, const okto__region *b)
{
    for (int j = 0; j < 3; j++)
        if (a->lo[j] >= b->hi[j] || b->lo[j] >= a->hi[j])
            return 0;
    return 1;
}

static int inner_covers(const okto__region *a, const rec *b)
{
    for (int j = 0; j < 3; j++)
        if (a->lo[j] > b->lo[j] || a->hi[j] < b->hi[j])
            return 0;
    return 1;
}

/* The dependencies of the task being analysed, deduplicated by stamp. */
typedef struct deplist {
    uint32_t *v;
    uint32_t n, cap;
    uint32_t self;
    unsigned *stamp, mark;
} deplist;

static int dep_add(deplist *d, uint32_t task)
{
    if (task == d->self || d->stamp[task] == d->mark)
        return 0;
    d->stamp[task] = d->mark;
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? 2 * d->cap : 16;
        uint32_t *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = task;
    return 0;
}

typedef struct visit {
    const okto__access *a;
    uint32_t task;
    deplist *deps;
    int err;
} visit;

/* One segment inside the access: edges to the live records it conflicts with, then the
 * frontier update (a write hides what it covers and becomes the segment's write; a read joins
 * the reads). */
static void visit_seg(seg *s, visit *v)
{
    const okto__region *b = &v->a->region;
    int writes = (v->a->mode & OKTO__W) != 0;
    for (uint32_t i = 0; i < s->w.n; i++)
        if (inner_overlap(&s->w.v[i], b) && dep_add(v->deps, s->w.v[i].task) < 0)
            v->err = 1;
    if (writes)
        for (uint32_t i = 0; i < s->rd.n; i++)
            if (inner_overlap(&s->rd.v[i], b) && dep_add(v->deps, s->rd.v[i].task) < 0)
                v->err = 1;
    rec x = {v->task, {b->lo[0], b->lo[1], b->lo[2]}, {b->hi[0], b->hi[1], b->hi[2]}};
    if (writes) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < s->w.n; i++)
            if (!inner_covers(b, &s->w.v[i]))
                s->w.v[k++] = s->w.v[i];
        s->w.n = k;
        k = 0;
        for (uint32_t i = 0; i < s->rd.n; i++)
            if (!inner_covers(b, &s->rd.v[i]))
                s->rd.v[k++] = s->rd.v[i];
        s->rd.n = k;
        if (recs_push(&s->w, x) < 0)
            v->err = 1;
    } else {
        /* the same task reading twice (two accesses of one region): once is enough */
        if ((!s->rd.n || s->rd.v[s->rd.n - 1].task != v->task ||
             memcmp(&s->rd.v[s->rd.n - 1], &x, sizeof x) != 0) &&
            recs_push(&s->rd, x) < 0)
            v->err = 1;
    }
}

/* Visits the segments whose keys lie in [lo, hi) in order. */
static void visit_range(seg *t, uint64_t lo, uint64_t hi, visit *v)
{
    while (t) {
        if (t->key < lo) {
            t = t->r;
        } else if (t->key >= hi) {
            t = t->l;
        } else {
            visit_range(t->l, lo, hi, v);
            visit_seg(t, v);
            t = t->r;
        }
    }
}

/* Drops dep d of the task when another of its deps reaches d: a search over deps that never
 * goes below d (deps always point to lower indices), within a budget of visited tasks so that
 * a task costs O(1) however large the graph (past the budget an edge is kept: correct, just a
 * longer wait list). */
#define OKTO__REDUCE_BUDGET 256

static void reduce(okto_graph *g, deplist *d, uint32_t *stack)
{
    if (d->n < 2)
        return;
    int budget = OKTO__REDUCE_BUDGET;
    for (uint32_t i = 0; i < d->n && budget > 0; i++, budget--) {
        uint32_t target = d->v[i];
        int reachable = 0, sp = 0;
        if (g->stamp_now == UINT32_MAX) { /* the marks wrap: start them over */
            memset(g->stamp, 0, (size_t)g->stampcap * sizeof *g->stamp);
            g->stamp_now = 0;
        }
        unsigned mark = ++g->stamp_now;
        for (uint32_t j = 0; j < d->n; j++)
            if (j != i && d->v[j] > target && g->stamp[d->v[j]] != mark &&
                sp < OKTO__REDUCE_BUDGET) {
                g->stamp[d->v[j]] = mark;
                stack[sp++] = d->v[j];
            }
        while (sp > 0 && !reachable && budget > 0) {
            const okto__task *u = &g->tasks[stack[--sp]];
            budget--;
            const uint32_t *ud = okto__task_deps(g, u); /* NULL-safe (UBSan) */
            for (uint32_t k = 0; k < u->ndeps; k++) {
                uint32_t w = ud[k];
                if (w == target) {
                    reachable = 1;
                    break;
                }
                if (w > target && g->stamp[w] != mark && sp < OKTO__REDUCE_BUDGET) {
                    g->stamp[w] = mark;
                    stack[sp++] = w;
                }
            }
        }
        if (reachable) {
            d->v[i] = d->v[--d->n];
            i--;
        }
    }
}

static void reset(okto_graph *g)
{
    for (int i = 0; i < g->nstores; i++) {
        okto__dindex_free(g->stores[i].ix);
        g->stores[i].ix = NULL;
    }
    g->ndeps = 0;
    for (int i = 0; i < g->ntasks; i++)
        g->tasks[i].ndeps = g->tasks[i].nsucc = 0;
}

okto_status okto__deps_analyze(okto_graph *g)
{
    if (g->analyzed == g->ntasks)
        return OKTO_OK;
    if (g->analyzed == 0)
        reset(g);
    if (g->stampcap < g->ntasks) {
        int cap = g->ntasks + g->ntasks / 2 + 64;
        unsigned *st = realloc(g->stamp, (size_t)cap * sizeof *st);
        if (!st)
            return okto__fail(g->ctx, OKTO_ENOMEM,
                              "analysing a graph of %d tasks: out of host "
                              "memory",
                              g->ntasks);
        memset(st + g->stampcap, 0, (size_t)(cap - g->stampcap) * sizeof *st);
        g->stamp = st;
        g->stampcap = cap;
    }
    uint32_t stack[OKTO__REDUCE_BUDGET];
    deplist d = {.stamp = g->stamp};
    okto_status s = OKTO_OK;
    for (int ti = g->analyzed; ti < g->ntasks && s == OKTO_OK; ti++) {
        okto__task *t = &g->tasks[ti];
        if (t->into) {
            /* batched into a later task (engine/optimize.c), whose accesses include this one's:
             * its work happens there, so its accesses must not hide earlier ones in the index
             * (a batched write would hide the reads before it from the batch) */
            t->deps = (uint32_t)g->ndeps;
            t->ndeps = 0;
            g->analyzed = ti + 1;
            continue;
        }
        if (g->stamp_now == UINT32_MAX) {
            memset(g->stamp, 0, (size_t)g->stampcap * sizeof *g->stamp);
            g->stamp_now = 0;
        }
        d.n = 0;
        d.self = (uint32_t)ti;
        d.mark = ++g->stamp_now;
        visit v = {NULL, (uint32_t)ti, &d, 0};
        for (uint32_t k = 0; k < t->nacc && !v.err; k++) {
            const okto__access *a = &g->acc[t->acc + k];
            okto__dindex *ix = index_of(g, a->store);
            if (!ix || split_at(ix, a->region.lo0) < 0 || split_at(ix, a->region.hi0) < 0) {
                v.err = 1;
                break;
            }
            v.a = a;
            visit_range(ix->root, a->region.lo0, a->region.hi0, &v);
        }
        if (!v.err) {
            reduce(g, &d, stack);
            if (g->ndeps + d.n > UINT32_MAX) {
                v.err = 1;
            } else if (g->ndeps + d.n > g->depcap) {
                size_t cap = g->depcap ? g->depcap : 1024;
                while (cap < g->ndeps + d.n)
                    cap *= 2;
                uint32_t *p = realloc(g->deps, cap * sizeof *p);
                if (!p)
                    v.err = 1;
                else
                    g->deps = p, g->depcap = cap;
            }
        }
        if (v.err) {
            s = okto__fail(g->ctx, OKTO_ENOMEM,
                           "analysing a graph of %d tasks: out of host "
                           "memory",
                           g->ntasks);
            g->analyzed = 0; /* the indexes are half-updated: start again next time */
            break;
        }
        t->deps = (uint32_t)g->ndeps;
        t->ndeps = 0;
        /* a task batched into another (engine/optimize.c) runs as that one: depend on it
         * instead, never on oneself (batched tasks are not indexed, above; this is the
         * belt to those braces) */
        int mapped = 0;
        for (uint32_t k = 0; k < d.n && g->nbatched && !mapped; k++)
            mapped = g->tasks[d.v[k]].into != 0;
        for (uint32_t k = 0; k < d.n && !t->into; k++) {
            uint32_t v = d.v[k];
            if (g->tasks[v].into)
                v = g->tasks[v].into - 1;
            /* d is deduplicated already; only a mapped list can repeat */
            int dup = v == (uint32_t)ti;
            for (uint32_t q = t->deps; mapped && q < g->ndeps && !dup; q++)
                dup = g->deps[q] == v;
            if (dup)
                continue;
            g->deps[g->ndeps++] = v;
            t->ndeps++;
            g->tasks[v].nsucc++;
        }
        g->analyzed = ti + 1;
    }
    free(d.v);
    return s;
}
