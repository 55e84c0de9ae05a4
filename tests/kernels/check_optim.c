/* tests/kernels/check_optim.c: cl/optim.cl against tests/ref/ref_optim.c.
 *   single range: SGD (momentum 0 / 0.9, nesterov, weight decay, a gradient scale) and AdamW
 *     over odd sizes, f32/f16/bf16 parameters and gradients with float32 state, three steps
 *     with the learning rate and t rewritten in the sched buffer between them, each step
 *     compared with the reference step from the device's own state; a non-finite gradient
 *     scale skips the step (same bits).
 *   multi-tensor: six tensors in arenas with gaps, one split into three chunks, per-chunk
 *     decay: SGD and AdamW against the reference and bit for bit against the single-range
 *     kernels; clipping (sum of squares, norm, scale, apply) with a norm above and below
 *     max_norm and a non-finite one; zero-fill; okto_sched_advance; the gaps untouched.
 *   okto_adamw_prepare's bias corrections for t from 1 to 10^6.
 * Every output twice: same bits. */
#include "kc.h"
#include "../ref/ref_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U(t) (t).m, (unsigned long long)(t).off

static const size_t sizes[] = {1, 7, 13, 257, 1000, 100003};
#define NSIZES (sizeof sizes / sizeof sizes[0])
static const float lrs[3] = {0.1f, 0.05f, 0.02f};
static const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;

/* Parameters are written in the dtype: one rounding, and a few float ulps of arithmetic.
 * The float32 state: a few ulps, measured against max(floor, |want|) (m ~ 0.1, v ~ 1e-3). */
static double tol_p(int dt) { return dt == KC_F32 ? 1e-6 : dt == KC_F16 ? 1e-3 : 8e-3; }
static const double tol_state = 1e-6;

static double err_floor(const double *got, const double *want, size_t n, double floor)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(want[i]), d = fabs(got[i] - want[i]) / (a > floor ? a : floor);
        if (!(d <= e))
            e = d;
    }
    return e;
}

typedef struct {
    cl_kernel sgd, adamw, sgd_multi, adamw_multi, sumsq, norm, apply, zero, advance, prepare;
} kernels;

typedef struct {
    kc_stat prep, sgd_p, sgd_mom, adam_p, adam_m, adam_v, multi_p, multi_state, clip_norm, clip_g;
    int skip_ok, det_ok, same_as_single, clip_scale_ok, zero_ok, advance_ok, pads_ok;
} errs;

/* ---- single range ---- */

static void run_single(int dt, const kernels *k, size_t si, errs *e)
{
    size_t n = sizes[si], o = si % 4;
    int nlo;
    const kc_local *locals = kc_locals(dt, &nlo);
    double *p = kc_dalloc(n), *g = kc_dalloc(n), *m = kc_dalloc(n), *v = kc_dalloc(n),
           *got = kc_dalloc(n), sched[4] = {0}, gs1 = 0.5, gsinf = INFINITY;
    int momentum_on = si % 2 == 1, nesterov = si % 4 == 3, has_gs = si % 3 == 1;
    float momentum = momentum_on ? 0.9f : 0.0f, wd = si % 2 == 0 ? 0.01f : 0.0f;
    kc_fill(p, n, 10 + si, -1, 1, dt);
    kc_fill(g, n, 20 + si, -1, 1, dt);
    kc_fill(m, n, 30 + si, -0.1, 0.1, KC_F32);
    kc_fill(v, n, 40 + si, 0, 0.01, KC_F32);
    kc_t tp = kc_t_new(dt, p, n, o), tg = kc_t_new(dt, g, n, o + 1),
         tm = kc_t_new(KC_F32, m, n, o + 2), tv = kc_t_new(KC_F32, v, n, o),
         tsched = kc_t_new(KC_F32, NULL, 4, o + 1), tgs = kc_t_new(KC_F32, &gs1, 1, o + 2),
         tinf = kc_t_new(KC_F32, &gsinf, 1, o);
    for (int opt = 0; opt < 2; opt++) { /* 0 SGD, 1 AdamW */
        for (int li = 0; li < nlo; li++) {
            size_t lx = locals[li].lx * locals[li].ly;
            kc_t_write(&tp, p), kc_t_write(&tm, m), kc_t_write(&tv, v);
            for (int step = 1; step <= 3; step++) {
                double *cp = kc_dalloc(n), *cm = kc_dalloc(n), *cv = kc_dalloc(n);
                kc_t_read(&tp, cp), kc_t_read(&tm, cm), kc_t_read(&tv, cv);
                sched[0] = lrs[step - 1], sched[1] = step;
                kc_t_write(&tsched, sched);
                kc_args(k->prepare, "buff", U(tsched), (double)beta1, (double)beta2);
                kc_launch1(k->prepare, 1, 1);
                double gsv = has_gs ? gs1 : 1.0;
                if (opt == 0) {
                    ref_sgd(cp, g, cm, n, (double)lrs[step - 1], (double)momentum, (double)wd,
                            nesterov, gsv);
                    kc_args(k->sgd, "bububuuffibubui", U(tp), U(tg), U(tm), (unsigned long long)n,
                            (double)momentum, (double)wd, nesterov, U(tsched), U(tgs), has_gs);
                    kc_launch1(k->sgd, n, lx);
                    kc_t_read(&tp, got);
                    kc_stat_add(&e->sgd_p, kc_err(got, cp, n), "n %zu mom %g nest %d step %d", n,
                                momentum, nesterov, step);
                    kc_t_read(&tm, got);
                    kc_stat_add(&e->sgd_mom, err_floor(got, cm, n, 0.1), "n %zu step %d", n, step);
                } else {
                    ref_adamw(cp, g, cm, cv, n, (double)lrs[step - 1], step, (double)beta1,
                              (double)beta2, (double)eps, (double)wd, gsv);
                    kc_args(k->adamw, "bubububuuffffbubui", U(tp), U(tg), U(tm), U(tv),
                            (unsigned long long)n, (double)beta1, (double)beta2, (double)eps,
                            (double)wd, U(tsched), U(tgs), has_gs);
                    kc_launch1(k->adamw, n, lx);
                    kc_t_read(&tp, got);
                    kc_stat_add(&e->adam_p, kc_err(got, cp, n), "n %zu step %d", n, step);
                    kc_t_read(&tm, got);
                    kc_stat_add(&e->adam_m, err_floor(got, cm, n, 0.1), "n %zu step %d", n, step);
                    kc_t_read(&tv, got);
                    kc_stat_add(&e->adam_v, err_floor(got, cv, n, 1e-3), "n %zu step %d", n, step);
                }
                free(cp), free(cm), free(cv);
            }
            /* a non-finite gradient scale skips the step: nothing changes */
            void *bp = kc_t_bits(&tp), *bm = kc_t_bits(&tm), *bv = kc_t_bits(&tv);
            if (opt == 0)
                kc_args(k->sgd, "bububuuffibubui", U(tp), U(tg), U(tm), (unsigned long long)n,
                        (double)momentum, (double)wd, nesterov, U(tsched), U(tinf), 1);
            else
                kc_args(k->adamw, "bubububuuffffbubui", U(tp), U(tg), U(tm), U(tv),
                        (unsigned long long)n, (double)beta1, (double)beta2, (double)eps,
                        (double)wd, U(tsched), U(tinf), 1);
            kc_launch1(opt == 0 ? k->sgd : k->adamw, n, lx);
            e->skip_ok &= kc_t_same(&tp, bp) && kc_t_same(&tm, bm) && kc_t_same(&tv, bv);
            free(bp), free(bm), free(bv);
            /* the same step twice from the same state: the same bits */
            if (li == 0) {
                void *b[3] = {0};
                for (int rep = 0; rep < 2; rep++) {
                    kc_t_write(&tp, p), kc_t_write(&tm, m), kc_t_write(&tv, v);
                    if (opt == 0)
                        kc_args(k->sgd, "bububuuffibubui", U(tp), U(tg), U(tm),
                                (unsigned long long)n, (double)momentum, (double)wd, nesterov,
                                U(tsched), U(tgs), has_gs);
                    else
                        kc_args(k->adamw, "bubububuuffffbubui", U(tp), U(tg), U(tm), U(tv),
                                (unsigned long long)n, (double)beta1, (double)beta2, (double)eps,
                                (double)wd, U(tsched), U(tgs), has_gs);
                    kc_launch1(opt == 0 ? k->sgd : k->adamw, n, lx);
                    kc_t *ts[3] = {&tp, &tm, &tv};
                    for (int i = 0; i < 3; i++) {
                        if (rep == 0)
                            b[i] = kc_t_bits(ts[i]);
                        else
                            e->det_ok &= kc_t_same(ts[i], b[i]);
                    }
                }
                free(b[0]), free(b[1]), free(b[2]);
            }
        }
    }
    kc_t *ts[] = {&tp, &tg, &tm, &tv, &tsched, &tgs, &tinf};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        e->pads_ok &= kc_t_pads_ok(ts[i]);
        kc_t_free(ts[i]);
    }
    free(p), free(g), free(m), free(v), free(got);
}

/* ---- multi-tensor ---- */

enum { NT = 6, NCH = 8, GAP = 3 };
static const size_t tsizes[NT] = {1, 7, 300, 1000, 13, 2500};
static const double gap_value = 1280.0; /* 5 * 2^8: exact in every dtype */

typedef struct {
    size_t total;         /* arena length, gaps included */
    size_t off[4][NT];    /* p, g, m, v offsets of each tensor */
    cl_ulong tab[NCH][5]; /* the chunk table */
    double decay[NCH];
    int tensor_of[NCH];
} layout;

static void make_layout(layout *L)
{
    /* p and g in tensor order, m forwards with other gaps, v backwards: columns independent */
    size_t pos[4] = {GAP, 2 * GAP, GAP + 1, GAP};
    for (int t = 0; t < NT; t++) {
        L->off[0][t] = pos[0], pos[0] += tsizes[t] + GAP;
        L->off[1][t] = pos[1], pos[1] += tsizes[t] + GAP;
        L->off[2][t] = pos[2], pos[2] += tsizes[t] + GAP + 1;
    }
    for (int t = NT - 1; t >= 0; t--)
        L->off[3][t] = pos[3], pos[3] += tsizes[t] + GAP;
    L->total = 0;
    for (int c = 0; c < 4; c++)
        L->total = pos[c] > L->total ? pos[c] : L->total;
    int c = 0;
    for (int t = 0; t < NT; t++) {
        size_t pieces = t == NT - 1 ? 3 : 1, at = 0; /* the last tensor: 1000 + 1000 + 500 */
        for (size_t j = 0; j < pieces; j++, c++) {
            size_t len = pieces == 1 ? tsizes[t] : j < 2 ? 1000 : tsizes[t] - 2000;
            for (int col = 0; col < 4; col++)
                L->tab[c][col] = L->off[col][t] + at;
            L->tab[c][4] = len;
            L->decay[c] = c % 2 ? 0.0 : (double)0.01f;
            L->tensor_of[c] = t;
            at += len;
        }
    }
}

/* An arena of L->total elements: gap_value in the gaps, random data in the chunks. */
static double *arena(const layout *L, int col, uint64_t seed, double lo, double hi, int dt)
{
    double *a = kc_dalloc(L->total);
    for (size_t i = 0; i < L->total; i++)
        a[i] = gap_value;
    for (int c = 0; c < NCH; c++)
        kc_fill(a + L->tab[c][col], L->tab[c][4], seed + (uint64_t)c, lo, hi, dt);
    return a;
}

static int gaps_intact(const layout *L, int col, const double *a)
{
    char *in = calloc(L->total, 1);
    for (int c = 0; c < NCH; c++)
        memset(in + L->tab[c][col], 1, L->tab[c][4]);
    int ok = 1;
    for (size_t i = 0; i < L->total; i++)
        ok &= in[i] || a[i] == gap_value;
    free(in);
    return ok;
}

static void run_multi(int dt, const kernels *k, errs *e)
{
    layout L;
    make_layout(&L);
    int ng, nlo;
    const kc_geom *geoms = kc_geoms(dt, &ng);
    const kc_local *locals = kc_locals(dt, &nlo);
    double *p = arena(&L, 0, 100, -1, 1, dt), *g = arena(&L, 1, 200, -1, 1, dt),
           *m = arena(&L, 2, 300, -0.1, 0.1, KC_F32), *v = arena(&L, 3, 400, 0, 0.01, KC_F32);
    double *w = kc_dalloc(L.total), *wm = kc_dalloc(L.total), *wv = kc_dalloc(L.total),
           *got = kc_dalloc(L.total), sched[4] = {(double)0.05f, 2, 0, 0}, gs = 0.5;
    kc_t tp = kc_t_new(dt, p, L.total, 1), tg = kc_t_new(dt, g, L.total, 2),
         tm = kc_t_new(KC_F32, m, L.total, 3), tv = kc_t_new(KC_F32, v, L.total, 1),
         tsched = kc_t_new(KC_F32, sched, 4, 2), tdecay = kc_t_new(KC_F32, L.decay, NCH, 1),
         tgs = kc_t_new(KC_F32, &gs, 1, 3), tpart = kc_t_new(KC_F32, NULL, NCH, 2),
         tclip = kc_t_new(KC_F32, NULL, 2, 1);
    kc_args(k->prepare, "buff", U(tsched), (double)beta1, (double)beta2);
    kc_launch1(k->prepare, 1, 1);
    kc_t_read(&tsched, sched); /* sched[2], sched[3] as the kernels see them */
    /* the table: ulongs, written raw, offsets from the buffers' starts (past the pads) */
    cl_ulong tabpad[3 + NCH * 5];
    const size_t base[4] = {tp.off, tg.off, tm.off, tv.off};
    memset(tabpad, 0xee, sizeof tabpad);
    for (int c = 0; c < NCH; c++)
        for (int col = 0; col < 5; col++)
            tabpad[3 + 5 * c + col] = L.tab[c][col] + (col < 4 ? base[col] : 0);
    cl_mem btab = kc_upload(tabpad, sizeof tabpad);
    const unsigned long long tab_off = 3;
    /* single-range copies for the bitwise comparison */
    kc_t sp = kc_t_new(dt, p, L.total, 1), sm = kc_t_new(KC_F32, m, L.total, 3),
         sv = kc_t_new(KC_F32, v, L.total, 1);

    for (int opt = 0; opt < 2; opt++) {
        for (int gi = 0; gi < ng; gi++) {
            size_t lx = locals[gi % nlo].lx * locals[gi % nlo].ly;
            int nesterov = gi % 2 == 0, has_gs = gi != 1;
            float momentum = 0.9f;
            kc_t_write(&tp, p), kc_t_write(&tm, m), kc_t_write(&tv, v);
            memcpy(w, p, L.total * sizeof *w), memcpy(wm, m, L.total * sizeof *w);
            memcpy(wv, v, L.total * sizeof *w);
            for (int c = 0; c < NCH; c++) {
                size_t len = L.tab[c][4];
                if (opt == 0)
                    ref_sgd(w + L.tab[c][0], g + L.tab[c][1], wm + L.tab[c][2], len, sched[0],
                            (double)momentum, L.decay[c], nesterov, has_gs ? gs : 1.0);
                else
                    ref_adamw(w + L.tab[c][0], g + L.tab[c][1], wm + L.tab[c][2], wv + L.tab[c][3],
                              len, sched[0], sched[1], (double)beta1, (double)beta2, (double)eps,
                              L.decay[c], has_gs ? gs : 1.0);
            }
            void *b[3] = {0};
            for (int rep = 0; rep < 2; rep++) {
                kc_t_write(&tp, p), kc_t_write(&tm, m), kc_t_write(&tv, v);
                if (opt == 0) {
                    kc_args(k->sgd_multi, "bbbbubuufibubui", tp.m, tg.m, tm.m, btab, tab_off,
                            U(tdecay), (unsigned long long)NCH, (double)momentum, nesterov,
                            U(tsched), U(tgs), has_gs);
                    kc_launch(k->sgd_multi, geoms[gi]);
                } else {
                    kc_args(k->adamw_multi, "bbbbbubuufffbubui", tp.m, tg.m, tm.m, tv.m, btab,
                            tab_off, U(tdecay), (unsigned long long)NCH, (double)beta1,
                            (double)beta2, (double)eps, U(tsched), U(tgs), has_gs);
                    kc_launch(k->adamw_multi, geoms[gi]);
                }
                kc_t *ts[3] = {&tp, &tm, &tv};
                for (int i = 0; i < 3; i++) {
                    if (rep == 0)
                        b[i] = kc_t_bits(ts[i]);
                    else
                        e->det_ok &= kc_t_same(ts[i], b[i]);
                }
            }
            free(b[0]), free(b[1]), free(b[2]);
            kc_t_read(&tp, got);
            kc_stat_add(&e->multi_p, kc_err(got, w, L.total), "%s L%zu", opt ? "adamw" : "sgd",
                        geoms[gi].local);
            e->pads_ok &= gaps_intact(&L, 0, got);
            kc_t_read(&tm, got);
            kc_stat_add(&e->multi_state, err_floor(got, wm, L.total, 0.1), "m, %s",
                        opt ? "adamw" : "sgd");
            e->pads_ok &= gaps_intact(&L, 2, got);
            kc_t_read(&tv, got);
            kc_stat_add(&e->multi_state, err_floor(got, wv, L.total, 1e-3), "v, %s",
                        opt ? "adamw" : "sgd");
            e->pads_ok &= gaps_intact(&L, 3, got);
            /* the single-range kernel, chunk by chunk, gives the same bits */
            kc_t_write(&sp, p), kc_t_write(&sm, m), kc_t_write(&sv, v);
            for (int c = 0; c < NCH; c++) {
                unsigned long long len = L.tab[c][4];
                if (opt == 0) {
                    kc_args(k->sgd, "bububuuffibubui", sp.m, sp.off + L.tab[c][0], tg.m,
                            tg.off + L.tab[c][1], sm.m, sm.off + L.tab[c][2], len, (double)momentum,
                            L.decay[c], nesterov, U(tsched), U(tgs), has_gs);
                    kc_launch1(k->sgd, len, lx);
                } else {
                    kc_args(k->adamw, "bubububuuffffbubui", sp.m, sp.off + L.tab[c][0], tg.m,
                            tg.off + L.tab[c][1], sm.m, sm.off + L.tab[c][2], sv.m,
                            sv.off + L.tab[c][3], len, (double)beta1, (double)beta2, (double)eps,
                            L.decay[c], U(tsched), U(tgs), has_gs);
                    kc_launch1(k->adamw, len, lx);
                }
            }
            void *x1 = kc_t_bits(&tp), *x2 = kc_t_bits(&sm), *x3 = kc_t_bits(&sv);
            int same = kc_t_same(&sp, x1) && kc_t_same(&tm, x2) && kc_t_same(&tv, x3);
            free(x1), free(x2), free(x3);
            if (!same)
                printf("    %s multi != single (L%zu)\n", opt ? "adamw" : "sgd", geoms[gi].local);
            e->same_as_single &= same;
        }
    }

    /* clipping: max_norm below the norm (scaled), above it (scale 1: untouched), and a
     * non-finite gradient (scale NaN, and a step reading it is skipped) */
    double *gcat = kc_dalloc(L.total);
    size_t ng_all = 0;
    for (int c = 0; c < NCH; c++)
        for (size_t i = 0; i < L.tab[c][4]; i++)
            gcat[ng_all++] = g[L.tab[c][1] + i];
    for (int cse = 0; cse < 3; cse++) {
        double max_norm = cse == 1 ? 1e6 : 2.0, scale;
        double *gg = kc_dalloc(L.total);
        memcpy(gg, g, L.total * sizeof *gg);
        if (cse == 2)
            gg[L.tab[4][1] + 3] = INFINITY;
        kc_t_write(&tg, gg);
        double norm = ref_clip_norm(gcat, ng_all, max_norm, &scale);
        for (int gi = 0; gi < ng; gi++) {
            kc_t_write(&tg, gg);
            void *before = kc_t_bits(&tg), *clip1 = NULL;
            for (int rep = 0; rep < 2; rep++) {
                kc_args(k->sumsq, "bbuubu", tg.m, btab, tab_off, (unsigned long long)NCH, U(tpart));
                kc_launch(k->sumsq, geoms[gi]);
                kc_args(k->norm, "buufbu", U(tpart), (unsigned long long)NCH, max_norm, U(tclip));
                kc_launch(k->norm, geoms[gi]);
                if (rep == 0)
                    clip1 = kc_t_bits(&tclip);
                else
                    e->det_ok &= kc_t_same(&tclip, clip1);
            }
            free(clip1);
            double cl[2];
            kc_t_read(&tclip, cl);
            if (cse < 2) {
                kc_stat_add(&e->clip_norm, fabs(cl[1] - norm) / norm, "max_norm %g L%zu", max_norm,
                            geoms[gi].local);
                kc_stat_add(&e->clip_norm, fabs(cl[0] - scale) / scale, "scale, max_norm %g",
                            max_norm);
                e->clip_scale_ok &= cse == 0 ? cl[0] < 1 : cl[0] == 1;
            } else {
                e->clip_scale_ok &= isinf(cl[1]) && isnan(cl[0]);
            }
            kc_args(k->apply, "bbuubu", tg.m, btab, tab_off, (unsigned long long)NCH, U(tclip));
            kc_launch(k->apply, geoms[gi]);
            if (cse == 1)
                e->clip_scale_ok &= kc_t_same(&tg, before); /* scale 1: not written */
            if (cse == 0) {
                double *want = kc_dalloc(L.total);
                for (size_t i = 0; i < L.total; i++)
                    want[i] = g[i];
                for (int c = 0; c < NCH; c++)
                    for (size_t i = 0; i < L.tab[c][4]; i++)
                        want[L.tab[c][1] + i] *= cl[0];
                kc_t_read(&tg, got);
                kc_stat_add(&e->clip_g, kc_err(got, want, L.total), "L%zu", geoms[gi].local);
                e->pads_ok &= gaps_intact(&L, 1, got);
                free(want);
            }
            if (cse == 2) { /* the NaN scale as gscale: the step is skipped */
                kc_t_write(&tp, p), kc_t_write(&tm, m), kc_t_write(&tv, v);
                void *bp = kc_t_bits(&tp), *bm = kc_t_bits(&tm), *bv = kc_t_bits(&tv);
                kc_args(k->adamw_multi, "bbbbbubuufffbubui", tp.m, tg.m, tm.m, tv.m, btab, tab_off,
                        U(tdecay), (unsigned long long)NCH, (double)beta1, (double)beta2,
                        (double)eps, U(tsched), U(tclip), 1);
                kc_launch(k->adamw_multi, geoms[gi]);
                e->skip_ok &= kc_t_same(&tp, bp) && kc_t_same(&tm, bm) && kc_t_same(&tv, bv);
                free(bp), free(bm), free(bv);
            }
            free(before);
        }
        free(gg);
    }
    free(gcat);

    /* zero-fill the gradients' chunks; advance t */
    kc_t_write(&tg, g);
    kc_args(k->zero, "bbuui", tg.m, btab, tab_off, (unsigned long long)NCH, 1);
    kc_launch(k->zero, geoms[0]);
    kc_t_read(&tg, got);
    for (int c = 0; c < NCH; c++)
        for (size_t i = 0; i < L.tab[c][4]; i++)
            e->zero_ok &= got[L.tab[c][1] + i] == 0;
    e->zero_ok &= gaps_intact(&L, 1, got);
    kc_args(k->advance, "bu", U(tsched));
    kc_launch1(k->advance, 1, 1);
    kc_t_read(&tsched, got);
    e->advance_ok &=
        got[0] == sched[0] && got[1] == sched[1] + 1 && got[2] == sched[2] && got[3] == sched[3];

    kc_t *ts[] = {&tp, &tg, &tm, &tv, &tsched, &tdecay, &tgs, &tpart, &tclip, &sp, &sm, &sv};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        e->pads_ok &= kc_t_pads_ok(ts[i]);
        kc_t_free(ts[i]);
    }
    kc_free(btab);
    free(p), free(g), free(m), free(v), free(w), free(wm), free(wv), free(got);
}

/* okto_adamw_prepare against the bias corrections in double, t from 1 to 10^6. */
static void check_prepare(int dt, const kernels *k, kc_stat *st)
{
    static const double ts[] = {1, 2, 3, 10, 100, 1000, 1e4, 1e6};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        double sched[4] = {(double)0.01f, ts[i], 0, 0}, got[4];
        kc_t t = kc_t_new(KC_F32, sched, 4, 1);
        kc_args(k->prepare, "buff", U(t), (double)beta1, (double)beta2);
        kc_launch1(k->prepare, 1, 1);
        kc_t_read(&t, got);
        double want2 = sched[0] / (1 - pow((double)beta1, ts[i])),
               want3 = 1 / sqrt(1 - pow((double)beta2, ts[i]));
        kc_stat_add(st, fabs(got[2] - want2) / want2, "step size, t %g", ts[i]);
        kc_stat_add(st, fabs(got[3] - want3) / want3, "1/sqrt(bc2), t %g", ts[i]);
        kc_t_free(&t);
    }
    (void)dt;
}

int main(void)
{
    kc_init("check_optim");
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build("optim.cl", dt);
        kernels k = {kc_kernel(p, "okto_sgd"),           kc_kernel(p, "okto_adamw"),
                     kc_kernel(p, "okto_sgd_multi"),     kc_kernel(p, "okto_adamw_multi"),
                     kc_kernel(p, "okto_clip_sumsq"),    kc_kernel(p, "okto_clip_norm"),
                     kc_kernel(p, "okto_clip_apply"),    kc_kernel(p, "okto_chunks_zero"),
                     kc_kernel(p, "okto_sched_advance"), kc_kernel(p, "okto_adamw_prepare")};
        errs e = {.skip_ok = 1,
                  .det_ok = 1,
                  .same_as_single = 1,
                  .clip_scale_ok = 1,
                  .zero_ok = 1,
                  .advance_ok = 1,
                  .pads_ok = 1};
        for (size_t si = 0; si < NSIZES; si++)
            run_single(dt, &k, si, &e);
        run_multi(dt, &k, &e);
        check_prepare(dt, &k, &e.prep);
        kc_stat_check("adamw_prepare bias corrections (relative)", dt, &e.prep, 1e-6);
        kc_stat_check("sgd param", dt, &e.sgd_p, tol_p(dt));
        kc_stat_check("sgd momentum (float32)", dt, &e.sgd_mom, tol_state);
        kc_stat_check("adamw param", dt, &e.adam_p, tol_p(dt));
        kc_stat_check("adamw m (float32)", dt, &e.adam_m, tol_state);
        kc_stat_check("adamw v (float32)", dt, &e.adam_v, tol_state);
        kc_stat_check("sgd_multi, adamw_multi param", dt, &e.multi_p, tol_p(dt));
        kc_stat_check("sgd_multi, adamw_multi state (float32)", dt, &e.multi_state, tol_state);
        kc_expect("multi-tensor = single-range, bit for bit", dt, e.same_as_single, NULL);
        kc_stat_check("clip_sumsq + clip_norm norm, scale (relative)", dt, &e.clip_norm, 1e-6);
        kc_stat_check("clip_apply gradients", dt, &e.clip_g, tol_p(dt));
        kc_expect("clip scale < 1, = 1 (grads untouched), NaN (inf norm)", dt, e.clip_scale_ok,
                  NULL);
        kc_expect("non-finite gradient scale: step skipped", dt, e.skip_ok, NULL);
        kc_expect("chunks_zero", dt, e.zero_ok, NULL);
        kc_expect("sched_advance: t + 1", dt, e.advance_ok, NULL);
        kc_expect("same bits on a second run", dt, e.det_ok, NULL);
        kc_expect("nothing written outside the outputs (pads, arena gaps)", dt, e.pads_ok, NULL);
    }
    return kc_finish();
}
