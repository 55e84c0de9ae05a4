/* lib/engine/fuse.c: vertical fusion, the optimizer's second rewrite (lib/engine/optimize.c
 * owns the pass; this file finds chains and generates their kernels).
 *
 * A chain is a run of elementwise tasks over floats on ew_c's contiguous layout (their op-table
 * rows' expressions, okto__tb's fuse_expr) that write one and the same range of one buffer,
 * each reading the previous one's result there, plus inputs of their own that the chain does
 * not write. It becomes one generated kernel that loads the range once, applies the members'
 * expressions one statement each, straight-line (a loop over ops inside the kernel ran 6.6-7.8x
 * slower on PoCL), and stores once: the intermediates are never written. The same statements
 * in the same order, each rounded to float as before (no contraction across statements), give
 * the same bits as the separate kernels.
 *
 * Chains follow the batching rule: scanning in recording order, a task that depends on a
 * member of an open chain, and is not the chain's next member, closes it. So whatever reads a
 * chain's range from outside reads it after the chain's last member, which writes it: an
 * intermediate that is read outside ends its chain there, and is written. Members move to the
 * last one (their accesses with it), which nothing between them depends on.
 *
 * The generated source is cached by its hash in the context's kernel memo: a chain of the same
 * expressions and operand pattern builds once. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OPEN_MAX: chains open at once. A task looks for its chain among the open ones, so an unbounded
 * set made the pass quadratic: a fan of 100k independent row updates took 48 s in its first
 * run (okto-bench --only graph-scale). The oldest open chain closes when a new one would exceed
 * it; closing early only gives up fusion, never correctness. */
enum { EW_NARGS = 12, CHAIN_MAX = 64, EXT_MAX = 24, OPEN_MAX = 64 };
/* A chain holds at most one op of this many flops per element or more (the transcendental
 * maps: tanh, exp, sigmoid, gelu, ...). Measured on the 2-core PoCL machine, 512k floats: one
 * tanh kernel 1.1 ms, 16 fused ops with 4 tanh 7.5 ms (the separate kernels: ~6.2), 5 cheap
 * ops fused 0.19 ms against 0.2 ms for one: fusing pays for the memory traffic it saves, and
 * PoCL vectorizes a kernel with several transcendental calls worse than one with one. */
#define HEAVY_FLOPS 4.0

typedef struct ew_task {
    cl_mem mem[5]; /* out, a, b, c, d */
    uint64_t off[5];
    float s;
    uint64_t n;
} ew_task;

static int ew_of(const okto_graph *g, int ti, ew_task *e)
{
    const okto__task *t = &g->tasks[ti];
    if (!t->expr || t->kid == OKTO__NO_KERNEL || t->nargs != EW_NARGS || t->into || t->nfused)
        return 0;
    for (int k = 0; k < 5; k++) {
        memcpy(&e->mem[k], okto__task_arg(g, ti, 2 * k), sizeof(cl_mem));
        memcpy(&e->off[k], okto__task_arg(g, ti, 2 * k + 1), 8);
    }
    memcpy(&e->s, okto__task_arg(g, ti, 10), sizeof e->s);
    memcpy(&e->n, okto__task_arg(g, ti, 11), 8);
    /* an input in the output's buffer is the running value (the same range) or lies apart */
    for (int k = 1; k < 5; k++)
        if (e->mem[k] == e->mem[0] && e->off[k] != e->off[0] && e->off[k] < e->off[0] + e->n &&
            e->off[0] < e->off[k] + e->n)
            return 0;
    return 1;
}

typedef struct chain {
    int m[CHAIN_MAX];
    int n;
    int open;
    int heavy; /* members of at least HEAVY_FLOPS per element */
    cl_mem mem;
    uint64_t off, len;
} chain;

typedef struct gen_ctx {
    cl_mem ext_mem[EXT_MAX];
    uint64_t ext_off[EXT_MAX];
    int next;
} gen_ctx;

/* The operand k of member e: "v", or an external input's index (added when new); -1 when there
 * are too many. */
static int operand(gen_ctx *x, const ew_task *e, int k)
{
    if (e->mem[k] == e->mem[0] && e->off[k] == e->off[0])
        return -2; /* the running value */
    for (int i = 0; i < x->next; i++)
        if (x->ext_mem[i] == e->mem[k] && x->ext_off[i] == e->off[k])
            return i;
    if (x->next == EXT_MAX)
        return -1;
    x->ext_mem[x->next] = e->mem[k];
    x->ext_off[x->next] = e->off[k];
    return x->next++;
}

static okto_status build_chain(okto__rec *r, const int *m, int n)
{
    okto_graph *g = r->g;
    gen_ctx x = {.next = 0};
    size_t cap = 1024 + 512 * (size_t)n, len = 0;
    char *body = malloc(cap), *src = NULL;
    if (!body)
        return OKTO_ENOMEM;
    body[0] = 0;
    ew_task e0;
    ew_of(g, m[0], &e0);
    for (int i = 0; i < n; i++) {
        ew_task e;
        ew_of(g, m[i], &e);
        char opnd[4][48];
        for (int k = 1; k < 5; k++) {
            int o = operand(&x, &e, k);
            if (o == -1) {
                free(body);
                return OKTO_ENOTSUP;
            }
            if (o == -2)
                snprintf(opnd[k - 1], sizeof opnd[k - 1], "v");
            else
                snprintf(opnd[k - 1], sizeof opnd[k - 1], "x%d[x%doff + i]", o, o);
        }
        uint32_t sbits;
        memcpy(&sbits, &e.s, 4);
        len +=
            (size_t)snprintf(body + len, cap - len,
                             "    { float a = %s, b = %s, c = %s, d = %s, s = as_float(0x%08xu);\n"
                             "      (void)a; (void)b; (void)c; (void)d; (void)s;\n"
                             "      v = (%s); }\n",
                             opnd[0], opnd[1], opnd[2], opnd[3], sbits, g->tasks[m[i]].expr);
        if (len >= cap) {
            free(body);
            return OKTO_ENOTSUP;
        }
    }
    size_t scap = len + 2048;
    if (!(src = malloc(scap))) {
        free(body);
        return OKTO_ENOMEM;
    }
    size_t sl = (size_t)snprintf(src, scap,
                                 "/* generated by lib/engine/fuse.c: %d elementwise tasks */\n"
                                 "__kernel void fused(__global float *o, ulong ooff",
                                 n);
    for (int i = 0; i < x.next; i++)
        sl += (size_t)snprintf(src + sl, scap - sl, ", __global const float *x%d, ulong x%doff", i,
                               i);
    sl += (size_t)snprintf(src + sl, scap - sl,
                           ", ulong n)\n{\n    size_t i = get_global_id(0);\n"
                           "    if (i >= n) return;\n    o += ooff;\n    float v = o[i];\n%s"
                           "    o[i] = v;\n}\n",
                           body);
    free(body);
    uint64_t memo = 0xcbf29ce484222325ull;
    for (const char *p = src; *p; p++)
        memo = (memo ^ (uint8_t)*p) * 0x100000001b3ull;
    memo ^= 0xf05e0000f05eull;
    okto__kid kid;
    okto_status s = OKTO_OK;
    if (!okto__kid_memo_get(r->ctx, memo, &kid)) {
        okto__progkey key = {NULL, src, NULL};
        s = okto__kernel_id(r->ctx, &key, "fused", &kid);
        if (s == OKTO_OK)
            okto__kid_memo_put(r->ctx, memo, kid);
    }
    free(src);
    if (s != OKTO_OK)
        return s;
    okto__tb t;
    okto__tb_init(&t, r, g->tasks[m[n - 1]].op);
    okto__tb_kid(&t, kid);
    t.dtype = OKTO_F32;
    OKTO__TB_ARG(&t, e0.mem[0]);
    okto__tb_arg_ulong(&t, e0.off[0]);
    for (int i = 0; i < x.next; i++) {
        OKTO__TB_ARG(&t, x.ext_mem[i]);
        okto__tb_arg_ulong(&t, x.ext_off[i]);
    }
    okto__tb_arg_ulong(&t, e0.n);
    okto__tb_range_1d(&t, (size_t)e0.n);
    double flops = 0;
    for (int i = 0; i < n; i++)
        flops += g->tasks[m[i]].flops;
    okto__tb_cost(&t, flops, 4.0 * (double)e0.n * (2 + x.next),
                  (uint64_t)e0.n * 8 ^ (memo << 20) ^ 0xf5);
    return okto__tb_commit(&t);
}

static void close_chain(okto_graph *g, chain *c, int *changed, int *oom)
{
    if (!c->open)
        return;
    c->open = 0;
    if (c->n < 2 || *oom)
        return;
    int a = okto__rewrite(g, c->m, c->n, build_chain);
    if (a < 0)
        *oom = 1;
    if (a == 0)
        *changed = 1;
}

int okto__fuse_chains(okto_graph *g, int from)
{
    int n = g->ntasks;
    if (n - from < 2)
        return 0;
    int *cof = malloc((size_t)(n - from) * sizeof *cof); /* task -> its chain, or -1 */
    chain *ch = NULL;
    int nch = 0, capch = 0, changed = 0, oom = !cof;
    int openv[OPEN_MAX], nopen = 0; /* the open chains, oldest first (closed ones dropped lazily) */
    for (int ti = from; ti < n && !oom; ti++) {
        /* rewriting a chain below may move g->tasks (not g->deps): no pointer into it kept */
        uint32_t ndeps = g->tasks[ti].ndeps;
        const uint32_t *deps = okto__task_deps(g, &g->tasks[ti]);
        cof[ti - from] = -1;
        ew_task e;
        int ok = ew_of(g, ti, &e);
        /* the open chain on the same range, if any: ti may extend it */
        int join = -1;
        for (int k = nopen - 1; ok && k >= 0 && join < 0; k--) {
            int c = openv[k];
            if (ch[c].open && ch[c].mem == e.mem[0] && ch[c].off == e.off[0] && ch[c].len == e.n &&
                ch[c].n < CHAIN_MAX)
                join = c;
        }
        int heavy = ok && e.n && g->tasks[ti].flops >= HEAVY_FLOPS * (double)e.n;
        if (join >= 0 && heavy && ch[join].heavy) { /* a second heavy op starts a new chain */
            close_chain(g, &ch[join], &changed, &oom);
            join = -1;
        }
        for (uint32_t d = 0; d < ndeps; d++) {
            int dep = (int)deps[d];
            if (dep < from || cof[dep - from] < 0)
                continue;
            int c = cof[dep - from];
            if (c == join && dep == ch[c].m[ch[c].n - 1])
                continue; /* the chain's tail: ti continues it */
            if (c == join)
                join = -1;
            close_chain(g, &ch[c], &changed, &oom);
        }
        if (!ok)
            continue;
        if (join < 0) {
            /* a new chain; a closed one on the same range is gone (closed chains stay closed) */
            if (nch == capch) {
                int cap = capch ? 2 * capch : 16;
                chain *p = realloc(ch, (size_t)cap * sizeof *p);
                if (!p) {
                    oom = 1;
                    break;
                }
                ch = p, capch = cap;
            }
            /* an open chain on an overlapping range of the buffer closes */
            int kept = 0;
            for (int k = 0; k < nopen; k++) {
                int c = openv[k];
                if (ch[c].open && ch[c].mem == e.mem[0] && ch[c].off < e.off[0] + e.n &&
                    e.off[0] < ch[c].off + ch[c].len)
                    close_chain(g, &ch[c], &changed, &oom);
                if (ch[c].open)
                    openv[kept++] = c;
            }
            nopen = kept;
            if (nopen == OPEN_MAX) { /* the oldest gives way */
                close_chain(g, &ch[openv[0]], &changed, &oom);
                memmove(openv, openv + 1, (size_t)(--nopen) * sizeof *openv);
            }
            join = nch++;
            openv[nopen++] = join;
            ch[join] = (chain){.n = 0, .open = 1, .mem = e.mem[0], .off = e.off[0], .len = e.n};
        }
        ch[join].m[ch[join].n++] = ti;
        ch[join].heavy += heavy;
        cof[ti - from] = join;
    }
    for (int c = 0; c < nch && !oom; c++)
        close_chain(g, &ch[c], &changed, &oom);
    free(ch);
    free(cof);
    return oom ? -1 : changed;
}
