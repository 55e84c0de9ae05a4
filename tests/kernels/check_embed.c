/* tests/kernels/check_embed.c: cl/embed.cl (gather, stable counting sort of the ids, segmented
 * gradient sum) against tests/ref/ref_embed.c: odd shapes, dim up to 1024, a hot id, a padding
 * id, bad ids (flag, first bad token, zero rows), f32/f16/bf16, accumulate; the sort equal to
 * the reference's stable sort; dtable the same bits on a second run and under every launch
 * shape; nothing written outside the outputs; the reference gradient against central
 * differences of the reference forward. */
#include "kc.h"
#include "../ref/ref_embed.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t ntok, vocab, dim;
    int padding_idx;
    const char *ids; /* "rand", "hot" (most tokens one id), "bad" (some outside the table) */
} ecase;

static const ecase cases[] = {
    {1, 1, 1, -1, "rand"},     {7, 13, 5, -1, "rand"},   {257, 7, 13, 2, "rand"},
    {1000, 50, 64, 3, "hot"},  {13, 1000, 7, -1, "bad"}, {20000, 5000, 16, -1, "rand"},
    {300, 3, 1024, 0, "rand"}, {4097, 257, 1, 7, "hot"},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* The forward copies: exact. The gradient: a compensated float sum of dtype values, rounded
 * once to the dtype. */
static double tol_grad(int dt) { return dt == KC_F32 ? 2e-6 : dt == KC_F16 ? 1e-3 : 8e-3; }

#define U(t) (t).m, (unsigned long long)(t).off

static void make_ids(const ecase *ec, int *ids, uint64_t seed)
{
    uint64_t s = seed;
    static const int bad[] = {-1, 0, INT_MIN, INT_MAX}; /* 0 becomes vocab */
    for (size_t t = 0; t < ec->ntok; t++) {
        ids[t] = (int)(kc_rand(&s) % ec->vocab);
        if (ec->ids[0] == 'h' && kc_rand(&s) % 10 != 0)
            ids[t] = (int)(ec->vocab / 2);
        if (ec->ids[0] == 'b' && t % 3 == 1)
            ids[t] = bad[(t / 3) % 4] ? bad[(t / 3) % 4] : (int)ec->vocab;
    }
}

static void check_fd(void)
{
    const size_t ntok = 9, vocab = 4, dim = 3;
    const int ids[9] = {1, 3, 1, 0, 7, 1, 3, 2, -1};
    double *table = kc_dalloc(vocab * dim), *dout = kc_dalloc(ntok * dim),
           *out = kc_dalloc(ntok * dim), *dt = kc_dalloc(vocab * dim), e = 0;
    kc_fill(table, vocab * dim, 1, -1, 1, KC_F32);
    kc_fill(dout, ntok * dim, 2, -1, 1, KC_F32);
    ref_embed_bwd(dout, ids, ntok, vocab, dim, -1, dt);
    for (size_t i = 0; i < vocab * dim; i++) {
        double keep = table[i], l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            table[i] = keep + (sgn ? -1e-6 : 1e-6);
            ref_embed_fwd(table, ids, ntok, vocab, dim, out);
            l[sgn] = 0;
            for (size_t j = 0; j < ntok * dim; j++)
                l[sgn] += dout[j] * out[j];
        }
        table[i] = keep;
        double fd = (l[0] - l[1]) / 2e-6, d = fabs(fd - dt[i]) / (fabs(fd) > 1 ? fabs(fd) : 1);
        e = d > e ? d : e;
    }
    kc_check("ref embed bwd vs central differences", -1, e, 1e-7);
    free(table), free(dout), free(out), free(dt);
}

typedef struct {
    cl_kernel fwd, sort, sum;
} kernels;

typedef struct {
    kc_stat fwd, grad;
    int sort_ok, flag_ok, det_ok, geom_ok, pads_ok;
} errs;

static void run(int dt, const kernels *k, size_t ci, errs *e)
{
    const ecase *ec = &cases[ci];
    size_t ntok = ec->ntok, vocab = ec->vocab, dim = ec->dim, o = ci % 3;
    int acc = ci % 2, ng, nlo;
    const kc_geom *geoms = kc_geoms(dt, &ng);
    const kc_local *locals = kc_locals(dt, &nlo);
    double *table = kc_dalloc(vocab * dim), *dout = kc_dalloc(ntok * dim),
           *dt0 = kc_dalloc(vocab * dim), *out = kc_dalloc(ntok * dim),
           *grad = kc_dalloc(vocab * dim), *idsd = kc_dalloc(ntok),
           *got = kc_dalloc((vocab + 1) * dim + ntok * dim + ntok);
    int *ids = malloc(ntok * sizeof *ids), *start = malloc((vocab + 1) * sizeof *start),
        *order = malloc((ntok + 1) * sizeof *order), first_bad = INT_MAX;
    kc_fill(table, vocab * dim, 10 + ci, -2, 2, dt);
    kc_fill(dout, ntok * dim, 20 + ci, -1, 1, dt);
    kc_fill(dt0, vocab * dim, 30 + ci, -1, 1, dt);
    make_ids(ec, ids, 40 + ci);
    for (size_t t = 0; t < ntok; t++) {
        idsd[t] = ids[t];
        if ((ids[t] < 0 || (size_t)ids[t] >= vocab) && first_bad == INT_MAX)
            first_bad = (int)t;
    }
    ref_embed_fwd(table, ids, ntok, vocab, dim, out);
    ref_embed_bwd(dout, ids, ntok, vocab, dim, ec->padding_idx, grad);
    ref_embed_sort(ids, ntok, vocab, ec->padding_idx, start, order);
    for (size_t v = 0; acc && v < vocab; v++)
        for (size_t d = 0; d < dim; d++)
            grad[v * dim + d] += dt0[v * dim + d];
    double flag0[2] = {0, INT_MAX};
    kc_t ttab = kc_t_new(dt, table, vocab * dim, o), tids = kc_t_new(KC_I32, idsd, ntok, o + 1),
         tout = kc_t_new(dt, NULL, ntok * dim, o + 2), tdout = kc_t_new(dt, dout, ntok * dim, o),
         tdt = kc_t_new(dt, NULL, vocab * dim, o + 1),
         tstart = kc_t_new(KC_I32, NULL, vocab + 1, o + 2), tcur = kc_t_new(KC_I32, NULL, vocab, o),
         tord = kc_t_new(KC_I32, NULL, ntok, o + 1), tflag = kc_t_new(KC_I32, flag0, 2, o + 2);
    void *bits[2] = {0};
    for (int gi = 0; gi < ng; gi++) {
        for (int rep = 0; rep < (gi == 0 ? 2 : 1); rep++) {
            kc_local lo = locals[gi % nlo];
            kc_t_write(&tflag, flag0);
            kc_args(k->fwd, "bububuuuubu", U(ttab), U(tids), U(tout), (unsigned long long)ntok,
                    (unsigned long long)vocab, (unsigned long long)dim, U(tflag));
            kc_launch2(k->fwd, dim, ntok, lo.lx, lo.ly);
            kc_t_read(&tout, got);
            kc_stat_add(&e->fwd, kc_err(got, out, ntok * dim), "%zu tokens %zux%zu", ntok, vocab,
                        dim);
            kc_t_read(&tflag, got);
            e->flag_ok &= got[0] == (first_bad != INT_MAX) && got[1] == first_bad;
            kc_t_write(&tflag, flag0);
            kc_args(k->sort, "buuuibubububu", U(tids), (unsigned long long)ntok,
                    (unsigned long long)vocab, ec->padding_idx, U(tstart), U(tcur), U(tord),
                    U(tflag));
            kc_launch(k->sort, geoms[gi]); /* groups past the first return */
            kc_t_read(&tflag, got);
            e->flag_ok &= got[0] == (first_bad != INT_MAX) && got[1] == first_bad;
            kc_t_read(&tstart, got);
            int ok = 1;
            for (size_t v = 0; v <= vocab; v++)
                ok &= got[v] == start[v];
            kc_t_read(&tord, got);
            for (int j = 0; j < start[vocab]; j++)
                ok &= got[j] == order[j];
            if (!ok)
                printf("    sort differs: %zu tokens %zux%zu L%zu\n", ntok, vocab, dim,
                       geoms[gi].local);
            e->sort_ok &= ok;
            kc_t_write(&tdt, dt0);
            kc_args(k->sum, "bubububuuui", U(tdout), U(tstart), U(tord), U(tdt),
                    (unsigned long long)vocab, (unsigned long long)dim, acc);
            kc_launch2(k->sum, dim, vocab, lo.lx, lo.ly);
            kc_t_read(&tdt, got);
            kc_stat_add(&e->grad, kc_err(got, grad, vocab * dim), "%zu tokens %zux%zu %s acc%d",
                        ntok, vocab, dim, ec->ids, acc);
            if (gi == 0 && rep == 0) {
                bits[0] = kc_t_bits(&tout);
                bits[1] = kc_t_bits(&tdt);
            } else if (gi == 0) {
                e->det_ok &= kc_t_same(&tout, bits[0]) && kc_t_same(&tdt, bits[1]);
            } else {
                e->geom_ok &= kc_t_same(&tdt, bits[1]);
            }
        }
    }
    kc_t *ts[] = {&ttab, &tids, &tout, &tdout, &tdt, &tstart, &tcur, &tord, &tflag};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        e->pads_ok &= kc_t_pads_ok(ts[i]);
        kc_t_free(ts[i]);
    }
    free(bits[0]), free(bits[1]);
    free(table), free(dout), free(dt0), free(out), free(grad), free(idsd), free(got), free(ids),
        free(start), free(order);
}

int main(void)
{
    kc_init("check_embed");
    check_fd();
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build("embed.cl", dt);
        kernels k = {kc_kernel(p, "okto_embed_fwd"), kc_kernel(p, "okto_embed_bwd_sort"),
                     kc_kernel(p, "okto_embed_bwd_sum")};
        errs e = {.sort_ok = 1, .flag_ok = 1, .det_ok = 1, .geom_ok = 1, .pads_ok = 1};
        for (size_t ci = 0; ci < NCASES; ci++)
            run(dt, &k, ci, &e);
        kc_stat_check("embed_fwd out (exact)", dt, &e.fwd, 0);
        kc_expect("embed_bwd_sort start, order = stable counting sort", dt, e.sort_ok, NULL);
        kc_stat_check("embed_bwd_sum dtable", dt, &e.grad, tol_grad(dt));
        kc_expect("bad ids: flag {1, first bad token}, else {0, INT_MAX}", dt, e.flag_ok, NULL);
        kc_expect("all outputs: same bits on a second run", dt, e.det_ok, NULL);
        if (dt == KC_F32)
            kc_expect("dtable: same bits under every launch shape", dt, e.geom_ok, NULL);
        kc_expect("nothing written outside the outputs", dt, e.pads_ok, NULL);
    }
    return kc_finish();
}
