/* tests/ref/ref_argmax.c: argmax by rows, a left-to-right scan. */
#include "ref_argmax.h"

#include <math.h>

void ref_argmax(const double *x, size_t rows, size_t cols, int *out)
{
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols;
        size_t best = 0;
        for (size_t c = 1; c < cols; c++) {
            if (isnan(xr[best]))
                break;
            if (isnan(xr[c]) || xr[c] > xr[best])
                best = c;
        }
        out[r] = (int)best;
    }
}
