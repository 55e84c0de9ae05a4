/* tests/ref/ref_softmax_ext.c: softmax and log-softmax in double (max-subtracted, so the
 * references themselves stay finite for large logits). */
#include "ref_softmax_ext.h"

#include <math.h>

static void row_stats(const double *x, size_t cols, double *m, double *s)
{
    *m = -INFINITY;
    for (size_t c = 0; c < cols; c++)
        *m = x[c] > *m ? x[c] : *m;
    *s = 0;
    for (size_t c = 0; c < cols; c++)
        *s += exp(x[c] - *m);
}

void ref_softmax_fwd(const double *x, double *y, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        double m, s;
        row_stats(x + r * cols, cols, &m, &s);
        for (size_t c = 0; c < cols; c++)
            y[r * cols + c] = exp(x[r * cols + c] - m) / s;
    }
}

void ref_softmax_bwd(const double *y, const double *dy, double *dx, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t c = 0; c < cols; c++)
            s += dy[r * cols + c] * y[r * cols + c];
        for (size_t c = 0; c < cols; c++)
            dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - s);
    }
}

void ref_log_softmax_fwd(const double *x, double *y, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        double m, s;
        row_stats(x + r * cols, cols, &m, &s);
        for (size_t c = 0; c < cols; c++)
            y[r * cols + c] = (x[r * cols + c] - m) - log(s);
    }
}

void ref_log_softmax_bwd(const double *y, const double *dy, double *dx, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t c = 0; c < cols; c++)
            s += dy[r * cols + c];
        for (size_t c = 0; c < cols; c++)
            dx[r * cols + c] = dy[r * cols + c] - exp(y[r * cols + c]) * s;
    }
}
