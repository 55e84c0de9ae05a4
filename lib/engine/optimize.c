/* lib/engine/optimize.c: the graph optimizer, a pass between recording and planning that
 * rewrites the task graph so it does less work per launch: horizontal batching (here, through
 * the op table's batch hooks), then vertical fusion of elementwise chains (lib/engine/fuse.c).
 *
 * Horizontal batching. Tasks of one op whose op-table row has a batch hook (lib/op.h), with
 * equal batch keys (same kernel, dtype, shape, scalars, buffers) and no dependency path between
 * them, become one launch. The tasks are scanned in recording order; an open batch per key
 * collects members until a task depends on one of them, which closes it (so nothing between
 * its first and last member depends on a member, and no member on another). Each closed batch
 * of two or more is rewritten in place:
 *   - its last member (the leader) becomes the batched launch the hook records, with the union
 *     of all members' accesses;
 *   - the other members point at the leader (task.into) and the run skips them; dependency
 *     analysis maps a dependency on one of them to the leader, which is later than all of
 *     them, so every plan's global topological order (lib/engine/plan.c) still holds;
 *   - the graph's dependencies are analysed again from scratch.
 * A batch stays within what its members' dependencies allow, so the micro-batches of a
 * training step keep their overlap: a batch never spans a dependency path, and the stages
 * of one micro-batch depend on each other.
 * The recorded members keep their own arguments: truncating the graph below a leader puts its
 * members back as they were (lib/engine/graph.c).
 *
 * Switches: OKTO_FUSE unset or 1: every rewrite; 0: none; else a comma list of their names
 * (gemm: small matmuls; optim: per-tensor AdamW steps into multi-tensor ones; ew: elementwise
 * chains). A graph's
 * own setting (okto__graph_set_fuse) wins. The report's trace names what a batch replaced. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

int okto__fuse_parse(const char *e, unsigned *out)
{
    if (!e || !*e || strcmp(e, "1") == 0 || strcmp(e, "all") == 0) {
        *out = OKTO__FUSE_ALL;
        return 1;
    }
    if (strcmp(e, "0") == 0 || strcmp(e, "none") == 0) {
        *out = 0;
        return 1;
    }
    /* a comma list of rewrite names; anything else is refused (lib/context.c says so when
     * the context is created), never read as "none" */
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"gemm", OKTO__FUSE_GEMM}, {"optim", OKTO__FUSE_OPTIM}, {"ew", OKTO__FUSE_EW}};
    unsigned m = 0;
    for (const char *p = e; *p;) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (n == strlen(names[i].name) && strncmp(p, names[i].name, n) == 0)
                m |= names[i].bit, found = 1;
        if (!found)
            return 0;
        p += n;
        if (*p == ',')
            p++;
    }
    *out = m;
    return 1;
}

static unsigned env_fuse(void)
{
    unsigned m;
    return okto__fuse_parse(getenv("OKTO_FUSE"), &m) ? m : OKTO__FUSE_ALL;
}

unsigned okto__graph_fuse(const okto_graph *g)
{
    return g->fuse >= 0 ? (unsigned)g->fuse : env_fuse();
}

void okto__graph_set_fuse(okto_graph *g, int fuse)
{
    if (g->fuse != fuse) {
        g->fuse = fuse;
        okto__graph_changed(g);
    }
}

typedef struct batch {
    uint64_t key;
    int *m; /* members, ascending */
    int n, cap;
    int open;
} batch;

typedef struct pass {
    batch *b;
    int nb, cap;
    int *slot; /* key -> open batch index, open addressing (-1 empty) */
    int nslot;
} pass;

static int slot_of(const pass *p, uint64_t key)
{
    size_t h = (size_t)(key * 0x9e3779b97f4a7c15ull >> 17) & (size_t)(p->nslot - 1);
    while (p->slot[h] >= 0 && p->b[p->slot[h]].key != key)
        h = (h + 1) & (size_t)(p->nslot - 1);
    return (int)h;
}

static void close_batch(pass *p, int bi)
{
    batch *b = &p->b[bi];
    if (!b->open)
        return;
    b->open = 0;
    /* remove from the open table: re-insert the cluster after it (linear probing) */
    int h = slot_of(p, b->key);
    p->slot[h] = -1;
    for (int j = (h + 1) & (p->nslot - 1); p->slot[j] >= 0; j = (j + 1) & (p->nslot - 1)) {
        int v = p->slot[j];
        p->slot[j] = -1;
        p->slot[slot_of(p, p->b[v].key)] = v;
    }
}

static int by_access(const void *x, const void *y)
{
    const okto__access *a = x, *b = y;
    if (a->store != b->store)
        return a->store < b->store ? -1 : 1;
    return memcmp(&a->region, &b->region, sizeof a->region);
}

/* Rewrites one closed batch; 0 when it did, 1 when the hook refused, -1 without memory. */
static int apply(okto_graph *g, const batch *b)
{
    return okto__rewrite(g, b->m, b->n, okto__ops[g->tasks[b->m[b->n - 1]].op]->batch);
}

int okto__rewrite(okto_graph *g, const int *m, int n,
                  okto_status (*build)(okto__rec *r, const int *m, int n))
{
    int lead = m[n - 1], nt = g->ntasks;
    okto__op op = (okto__op)g->tasks[lead].op;
    okto__rec r = {
        .g = g, .ctx = g->ctx, .op = op, .fn = "okto optimizer", .start = nt, .depth = 1};
    okto_status s = build(&r, m, n);
    if (s != OKTO_OK || g->ntasks != nt + 1) {
        okto__graph_truncate(g, nt);
        return 1;
    }
    /* the union of the members' accesses, each (storage, region) once with all its modes */
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += g->tasks[m[i]].nacc;
    okto__access *u = malloc((total ? total : 1) * sizeof *u);
    size_t need = g->nacc + total;
    if (!u || total > UINT32_MAX || need > UINT32_MAX) {
        free(u);
        okto__graph_truncate(g, nt);
        return -1;
    }
    if (need > g->acccap) {
        size_t cap = g->acccap ? g->acccap : 64;
        while (cap < need)
            cap *= 2;
        okto__access *p = realloc(g->acc, cap * sizeof *p);
        if (!p) {
            free(u);
            okto__graph_truncate(g, nt);
            return -1;
        }
        g->acc = p, g->acccap = cap;
    }
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const okto__task *t = &g->tasks[m[i]];
        memcpy(u + k, g->acc + t->acc, t->nacc * sizeof *u);
        k += t->nacc;
    }
    qsort(u, k, sizeof *u, by_access);
    okto__task nw = g->tasks[nt];
    nw.acc = (uint32_t)g->nacc;
    nw.nacc = 0;
    for (size_t i = 0; i < k; i++) {
        okto__access *last = nw.nacc ? &g->acc[nw.acc + nw.nacc - 1] : NULL;
        if (last && last->store == u[i].store &&
            memcmp(&last->region, &u[i].region, sizeof u[i].region) == 0)
            last->mode |= u[i].mode;
        else
            g->acc[nw.acc + nw.nacc++] = u[i];
    }
    free(u);
    g->nacc += nw.nacc;
    /* the new task's slot goes; its arguments and accesses stay, above the floors */
    g->ntasks = nt;
    g->acc_floor = g->nacc;
    g->arg_floor = g->nargs;
    nw.deps = nw.ndeps = nw.nsucc = 0;
    nw.part = 0;
    nw.nparts = 1;
    nw.into = 0;
    nw.nfused = (uint32_t)n;
    g->tasks[lead] = nw;
    for (int i = 0; i + 1 < n; i++)
        g->tasks[m[i]].into = (uint32_t)lead + 1;
    g->nbatched++;
    return 0;
}

okto_status okto__optimize(okto_graph *g)
{
    unsigned fuse = okto__graph_fuse(g);
    int from = g->opt_from, n = g->ntasks;
    g->opt_from = n;
    if (!fuse || n - from < 2)
        return OKTO_OK;
    pass p = {0};
    int *bof = malloc((size_t)(n - from) * sizeof *bof); /* task -> its batch, or -1 */
    p.nslot = 64;
    while (p.nslot < 2 * (n - from))
        p.nslot *= 2;
    p.slot = malloc((size_t)p.nslot * sizeof *p.slot);
    int oom = !bof || !p.slot;
    for (int i = 0; !oom && i < p.nslot; i++)
        p.slot[i] = -1;
    for (int ti = from; ti < n && !oom; ti++) {
        const okto__task *t = &g->tasks[ti];
        bof[ti - from] = -1;
        const uint32_t *deps = okto__task_deps(g, t);
        for (uint32_t d = 0; d < t->ndeps; d++)
            if ((int)deps[d] >= from && bof[deps[d] - from] >= 0)
                close_batch(&p, bof[deps[d] - from]);
        const okto__op_desc *od = okto__ops[t->op];
        if (t->into || t->nfused || !od->batch_key || !(od->batch_switch & fuse))
            continue;
        uint64_t key = od->batch_key(g, ti);
        if (!key)
            continue;
        key = key * 1000003u + t->op; /* keys of different ops never meet */
        int h = slot_of(&p, key);
        int bi = p.slot[h];
        if (bi < 0) {
            if (p.nb == p.cap) {
                int cap = p.cap ? 2 * p.cap : 16;
                batch *nb = realloc(p.b, (size_t)cap * sizeof *nb);
                if (!nb) {
                    oom = 1;
                    break;
                }
                p.b = nb, p.cap = cap;
            }
            bi = p.nb++;
            p.b[bi] = (batch){.key = key, .open = 1};
            p.slot[h] = bi;
        }
        batch *b = &p.b[bi];
        if (b->n == b->cap) {
            int cap = b->cap ? 2 * b->cap : 8;
            int *m = realloc(b->m, (size_t)cap * sizeof *m);
            if (!m) {
                oom = 1;
                break;
            }
            b->m = m, b->cap = cap;
        }
        b->m[b->n++] = ti;
        bof[ti - from] = bi;
    }
    int changed = 0;
    for (int i = 0; i < p.nb && !oom; i++)
        if (p.b[i].n >= 2) {
            int a = apply(g, &p.b[i]);
            if (a < 0)
                oom = 1;
            changed |= a == 0;
        }
    if (changed && !oom) { /* the chains below see the batches' dependencies */
        g->analyzed = 0;
        if (okto__deps_analyze(g) != OKTO_OK)
            oom = 1;
    }
    if ((fuse & OKTO__FUSE_EW) && !oom) {
        int f = okto__fuse_chains(g, from);
        if (f < 0)
            oom = 1;
        changed |= f > 0;
    }
    for (int i = 0; i < p.nb; i++)
        free(p.b[i].m);
    free(p.b);
    free(p.slot);
    free(bof);
    okto_status s = OKTO_OK;
    if (changed) {
        g->analyzed = 0; /* the leaders' accesses changed: analyse again */
        okto__graph_changed(g);
        s = okto__deps_analyze(g);
    }
    if (oom && s == OKTO_OK)
        s = okto__fail(g->ctx, OKTO_ENOMEM, "optimizing a graph of %d tasks: out of host memory",
                       n);
    return s;
}
