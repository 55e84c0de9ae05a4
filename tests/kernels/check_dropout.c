/* tests/kernels/check_dropout.c: cl/dropout.cl and cl/common.h's okto_philox. Philox against
 * the Random123 known-answer vectors (host and device) and the host reference on random
 * inputs; dropout forward and backward against tests/ref/ref_dropout.c for odd sizes and
 * p in {0, 0.1, 0.5, 0.9, 1}, f32/f16/bf16: the mask exactly (which elements are zero), the
 * values within a stated tolerance, the backward's mask the forward's (same bits), p = 0 the
 * identity bit for bit, the keep rate within 5 sigma of 1 - p, other streams and seeds other
 * masks, bitwise determinism, nothing written outside the outputs; the reference backward
 * against central differences of the reference forward. */
#include "kc.h"
#include "../ref/ref_dropout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U(t) (t).m, (unsigned long long)(t).off

static const size_t sizes[] = {1, 7, 13, 257, 1000, (1u << 20) + 3};
#define NSIZES (sizeof sizes / sizeof sizes[0])
static const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f, 1.0f};
#define NPS (sizeof ps / sizeof ps[0])
static const uint32_t seed0 = 0x12345678u, seed1 = 0x9abcdef0u;

/* A kept value is x * (1 / (1 - p)) rounded once to the dtype (the float scale's own rounding
 * is ~1 ulp; accumulating adds a rounding). */
static double tol(int dt) { return dt == KC_F32 ? 1e-6 : dt == KC_F16 ? 1e-3 : 8e-3; }

static void check_philox(void)
{
    /* Random123 kat_vectors, philox4x32 10 rounds: key, counter, answer */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
        {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du,
         0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
        {0xa4093822u, 0x299f31d0u, 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xd16cfe09u,
         0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    enum { N = 64 };
    uint32_t in[6 * N], out[4 * N], want[4 * N];
    uint64_t s = 99;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 6; j++)
            in[6 * i + j] = i < 3 ? kat[i][j] : (uint32_t)kc_rand(&s);
        ref_philox(in + 6 * i, in + 6 * i + 2, want + 4 * i);
    }
    int host_ok = 1;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            host_ok &= want[4 * i + j] == kat[i][6 + j];
    kc_expect("ref_philox = Random123 known answers", -1, host_ok, NULL);
    cl_program p = kc_build("tests/kernels/philox_kat.cl", KC_F32);
    cl_kernel k = kc_kernel(p, "philox_kat");
    cl_mem bin = kc_upload(in, sizeof in), bout = kc_alloc(sizeof out);
    kc_args(k, "bbU", bin, bout, (unsigned)N);
    kc_launch1(k, N, 16);
    kc_read(bout, out, sizeof out);
    int dev_ok = 1;
    for (int i = 0; i < 4 * N; i++)
        dev_ok &= out[i] == want[i];
    kc_expect("okto_philox = known answers and ref_philox", -1, dev_ok, NULL);
    kc_free(bin), kc_free(bout);
}

static void check_fd(void)
{
    const size_t n = 11;
    double x[11], dy[11], y[11], dx[11], e = 0;
    kc_fill(x, n, 1, -1, 1, KC_F32);
    kc_fill(dy, n, 2, -1, 1, KC_F32);
    ref_dropout(dy, dx, n, 0.5f, seed0, seed1, 3); /* the backward: the same map of dy */
    for (size_t i = 0; i < n; i++) {
        double keep = x[i], l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            x[i] = keep + (sgn ? -1e-6 : 1e-6);
            ref_dropout(x, y, n, 0.5f, seed0, seed1, 3);
            l[sgn] = 0;
            for (size_t j = 0; j < n; j++)
                l[sgn] += dy[j] * y[j];
        }
        x[i] = keep;
        double fd = (l[0] - l[1]) / 2e-6, d = fabs(fd - dx[i]) / (fabs(fd) > 1 ? fabs(fd) : 1);
        e = d > e ? d : e;
    }
    kc_check("ref dropout bwd vs central differences", -1, e, 1e-8);
}

typedef struct {
    kc_stat fwd, bwd;
    int mask_ok, same_mask_ok, ident_ok, rate_ok, streams_ok, det_ok, pads_ok;
} errs;

static void run(int dt, cl_kernel fwd, cl_kernel bwd, size_t si, errs *e)
{
    size_t n = sizes[si], o = si % 3;
    int acc = si % 2, nlo;
    const kc_local *locals = kc_locals(dt, &nlo);
    double *x = kc_dalloc(n), *dx0 = kc_dalloc(n), *y = kc_dalloc(n), *got = kc_dalloc(n),
           *want = kc_dalloc(n);
    /* |x| in [0.25, 2): a dropped element is the only zero */
    kc_fill(x, n, 10 + si, 0.25, 2, dt);
    for (size_t i = 0; i < n; i += 2)
        x[i] = -x[i];
    kc_fill(dx0, n, 20 + si, -1, 1, dt);
    kc_t tx = kc_t_new(dt, x, n, o), ty = kc_t_new(dt, NULL, n, o + 1),
         tdx = kc_t_new(dt, NULL, n, o + 2), tseed = kc_t_new(KC_I32, NULL, 2, o);
    uint32_t sw[2] = {seed0, seed1};
    kc_t_write_raw(&tseed, sw);
    for (size_t pi = 0; pi < NPS; pi++) {
        float p = ps[pi];
        uint32_t stream = (uint32_t)(7 + pi);
        ref_dropout(x, want, n, p, seed0, seed1, stream);
        for (int li = 0; li < nlo; li++) {
            for (int rep = 0; rep < (li == 0 ? 2 : 1); rep++) {
                size_t lx = locals[li].lx * locals[li].ly;
                kc_args(fwd, "bubuufbuU", U(tx), U(ty), (unsigned long long)n, (double)p, U(tseed),
                        stream);
                kc_launch1(fwd, (n + 3) / 4, lx);
                kc_t_read(&ty, got);
                kc_stat_add(&e->fwd, kc_err(got, want, n), "n %zu p %g", n, p);
                size_t kept = 0;
                for (size_t i = 0; i < n; i++) { /* the reference's zeros are its mask */
                    int k = want[i] != 0;
                    kept += k;
                    e->mask_ok &= (got[i] != 0) == k;
                }
                if (p == 0.0f) {
                    void *xb = kc_t_bits(&tx), *yb = kc_t_bits(&ty);
                    size_t ds = kc_dt_size(dt);
                    e->ident_ok &=
                        memcmp((char *)xb + o * ds, (char *)yb + (o + 1) * ds, n * ds) == 0;
                    free(xb), free(yb);
                }
                if (n > 100000 && p > 0 && p < 1) {
                    double rate = (double)kept / (double)n,
                           sigma = sqrt((double)p * (1 - p) / (double)n);
                    if (fabs(rate - (1 - p)) > 5 * sigma) {
                        printf("    keep rate %.5f for p %g (n %zu)\n", rate, p, n);
                        e->rate_ok = 0;
                    }
                }
                /* backward of dy = x, overwriting: the forward's bits */
                kc_args(bwd, "bubuufbuUi", U(tx), U(tdx), (unsigned long long)n, (double)p,
                        U(tseed), stream, 0);
                kc_launch1(bwd, (n + 3) / 4, lx);
                void *yb = kc_t_bits(&ty), *db = kc_t_bits(&tdx);
                size_t ds = kc_dt_size(dt);
                e->same_mask_ok &=
                    memcmp((char *)yb + (o + 1) * ds, (char *)db + (o + 2) * ds, n * ds) == 0;
                free(yb), free(db);
                /* backward accumulating onto dx0 */
                kc_t_write(&tdx, dx0);
                kc_args(bwd, "bubuufbuUi", U(tx), U(tdx), (unsigned long long)n, (double)p,
                        U(tseed), stream, acc);
                kc_launch1(bwd, (n + 3) / 4, lx);
                kc_t_read(&tdx, got);
                for (size_t i = 0; i < n; i++)
                    y[i] = want[i] + (acc ? dx0[i] : 0);
                kc_stat_add(&e->bwd, kc_err(got, y, n), "n %zu p %g acc%d", n, p, acc);
                if (rep == 1) { /* same bits as the first run */
                    kc_args(fwd, "bubuufbuU", U(tx), U(tdx), (unsigned long long)n, (double)p,
                            U(tseed), stream);
                    kc_launch1(fwd, (n + 3) / 4, lx);
                    void *a = kc_t_bits(&ty), *b = kc_t_bits(&tdx);
                    e->det_ok &=
                        memcmp((char *)a + (o + 1) * ds, (char *)b + (o + 2) * ds, n * ds) == 0;
                    free(a), free(b);
                }
            }
        }
    }
    /* another stream, another seed: another mask */
    if (n >= 1000) {
        size_t diff_stream = 0, diff_seed = 0;
        for (size_t i = 0; i < n; i++) {
            int k = ref_dropout_keep(seed0, seed1, 1, i, 0.5f);
            diff_stream += k != ref_dropout_keep(seed0, seed1, 2, i, 0.5f);
            diff_seed += k != ref_dropout_keep(seed0 + 1, seed1, 1, i, 0.5f);
        }
        e->streams_ok &= diff_stream > n / 3 && diff_seed > n / 3;
    }
    kc_t *ts[] = {&tx, &ty, &tdx, &tseed};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        e->pads_ok &= kc_t_pads_ok(ts[i]);
        kc_t_free(ts[i]);
    }
    free(x), free(dx0), free(y), free(got), free(want);
}

int main(void)
{
    kc_init("check_dropout");
    check_philox();
    check_fd();
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build("dropout.cl", dt);
        cl_kernel fwd = kc_kernel(p, "okto_dropout_fwd"), bwd = kc_kernel(p, "okto_dropout_bwd");
        errs e = {.mask_ok = 1,
                  .same_mask_ok = 1,
                  .ident_ok = 1,
                  .rate_ok = 1,
                  .streams_ok = 1,
                  .det_ok = 1,
                  .pads_ok = 1};
        for (size_t si = 0; si < NSIZES; si++)
            run(dt, fwd, bwd, si, &e);
        kc_stat_check("dropout_fwd y", dt, &e.fwd, tol(dt));
        kc_stat_check("dropout_bwd dx", dt, &e.bwd, tol(dt));
        kc_expect("mask = ref_dropout_keep, element by element", dt, e.mask_ok, NULL);
        kc_expect("backward mask = forward mask (same bits)", dt, e.same_mask_ok, NULL);
        kc_expect("p = 0: y = x bit for bit", dt, e.ident_ok, NULL);
        kc_expect("keep rate within 5 sigma of 1 - p (n = 2^20 + 3)", dt, e.rate_ok, NULL);
        kc_expect("other stream / seed: other mask", dt, e.streams_ok, NULL);
        kc_expect("same bits on a second run", dt, e.det_ok, NULL);
        kc_expect("nothing written outside the outputs", dt, e.pads_ok, NULL);
    }
    return kc_finish();
}
