/* tests/kernels/check_argmax.c: cl/argmax.cl against tests/ref/ref_argmax.c, exactly: odd
 * shapes up to 100k columns, f32/f16/bf16, many ties (small integers, and the rounding of the
 * narrow dtypes), rows with NaNs, rows of -inf, rows with +inf, under every launch shape;
 * nothing written outside the output. */
#include "kc.h"
#include "../ref/ref_argmax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const size_t shapes[][2] = {{1, 1},    {7, 13},     {13, 7},  {257, 1},
                                   {3, 1000}, {2, 100000}, {100, 3}, {64, 300}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

#define U(t) (t).m, (unsigned long long)(t).off

int main(void)
{
    kc_init("check_argmax");
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build("argmax.cl", dt);
        cl_kernel k = kc_kernel(p, "okto_argmax_rows");
        int ng, ok = 1, pads = 1, special = 0;
        const kc_geom *geoms = kc_geoms(dt, &ng);
        for (size_t si = 0; si < NSHAPES; si++) {
            size_t rows = shapes[si][0], cols = shapes[si][1], n = rows * cols, o = si % 4;
            double *x = kc_dalloc(n), *got = kc_dalloc(rows);
            int *want = malloc(rows * sizeof *want);
            kc_fill(x, n, 10 + si, -3, 3, dt);
            uint64_t s = 50 + si;
            for (size_t r = 0; r < rows; r++) {
                double *xr = x + r * cols;
                switch (r % 6) {
                case 1: /* small integers: ties everywhere */
                    for (size_t c = 0; c < cols; c++)
                        xr[c] = (double)(kc_rand(&s) % 4);
                    break;
                case 2: /* NaNs (the first one wins) */
                    xr[kc_rand(&s) % cols] = NAN;
                    xr[kc_rand(&s) % cols] = NAN;
                    special++;
                    break;
                case 3: /* all -inf: index 0 */
                    for (size_t c = 0; c < cols; c++)
                        xr[c] = -INFINITY;
                    special++;
                    break;
                case 4: /* +inf, twice */
                    xr[kc_rand(&s) % cols] = INFINITY;
                    xr[kc_rand(&s) % cols] = INFINITY;
                    break;
                default: break;
                }
            }
            ref_argmax(x, rows, cols, want);
            kc_t tx = kc_t_new(dt, x, n, o), tout = kc_t_new(KC_I32, NULL, rows, o + 1);
            for (int gi = 0; gi < ng; gi++) {
                kc_args(k, "bubuuu", U(tx), U(tout), (unsigned long long)rows,
                        (unsigned long long)cols);
                kc_launch(k, geoms[gi]);
                kc_t_read(&tout, got);
                for (size_t r = 0; r < rows; r++)
                    if (got[r] != want[r]) {
                        if (ok)
                            printf("    %zux%zu row %zu: %g, want %d (L%zu)\n", rows, cols, r,
                                   got[r], want[r], geoms[gi].local);
                        ok = 0;
                    }
            }
            pads &= kc_t_pads_ok(&tx) && kc_t_pads_ok(&tout);
            kc_t_free(&tx), kc_t_free(&tout);
            free(x), free(got), free(want);
        }
        char detail[64];
        snprintf(detail, sizeof detail, "(%d rows of NaN or -inf among them)", special);
        kc_expect("argmax_rows = ref_argmax, every row, every launch", dt, ok, detail);
        kc_expect("nothing written outside the output", dt, pads, NULL);
    }
    return kc_finish();
}
