/* tests/ref/ref_norm.c: layernorm and rmsnorm in double, straight from the definitions. */
#include "ref_norm.h"

#include <math.h>
#include <stdlib.h>

static void moments(const double *xr, size_t cols, double eps, double *mu, double *rs)
{
    double s = 0, v = 0;
    for (size_t c = 0; c < cols; c++)
        s += xr[c];
    *mu = s / (double)cols;
    for (size_t c = 0; c < cols; c++)
        v += (xr[c] - *mu) * (xr[c] - *mu);
    *rs = 1.0 / sqrt(v / (double)cols + eps);
}

void ref_layernorm_fwd(const double *x, const double *w, const double *b, double *y, double *mean,
                       double *rstd, size_t rows, size_t cols, double eps)
{
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols;
        double mu, rs;
        moments(xr, cols, eps, &mu, &rs);
        for (size_t c = 0; c < cols; c++)
            y[r * cols + c] = (xr[c] - mu) * rs * (w ? w[c] : 1.0) + (b ? b[c] : 0.0);
        if (mean)
            mean[r] = mu;
        if (rstd)
            rstd[r] = rs;
    }
}

void ref_layernorm_bwd(const double *dy, const double *x, const double *w, double *dx, double *dw,
                       double *db, size_t rows, size_t cols, double eps)
{
    for (size_t c = 0; c < cols; c++) {
        if (dw)
            dw[c] = 0;
        if (db)
            db[c] = 0;
    }
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols, *dyr = dy + r * cols;
        double mu, rs, mg = 0, mgx = 0;
        moments(xr, cols, eps, &mu, &rs);
        for (size_t c = 0; c < cols; c++) {
            double g = dyr[c] * (w ? w[c] : 1.0), xh = (xr[c] - mu) * rs;
            mg += g;
            mgx += g * xh;
            if (dw)
                dw[c] += dyr[c] * xh;
            if (db)
                db[c] += dyr[c];
        }
        mg /= (double)cols;
        mgx /= (double)cols;
        for (size_t c = 0; dx && c < cols; c++) {
            double g = dyr[c] * (w ? w[c] : 1.0), xh = (xr[c] - mu) * rs;
            dx[r * cols + c] = rs * (g - mg - xh * mgx);
        }
    }
}

void ref_rmsnorm_fwd(const double *x, const double *w, double *y, double *rstd, size_t rows,
                     size_t cols, double eps)
{
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols;
        double s = 0;
        for (size_t c = 0; c < cols; c++)
            s += xr[c] * xr[c];
        double rs = 1.0 / sqrt(s / (double)cols + eps);
        for (size_t c = 0; c < cols; c++)
            y[r * cols + c] = xr[c] * rs * (w ? w[c] : 1.0);
        if (rstd)
            rstd[r] = rs;
    }
}

void ref_rmsnorm_bwd(const double *dy, const double *x, const double *w, double *dx, double *dw,
                     size_t rows, size_t cols, double eps)
{
    for (size_t c = 0; dw && c < cols; c++)
        dw[c] = 0;
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols, *dyr = dy + r * cols;
        double s = 0, mgx = 0;
        for (size_t c = 0; c < cols; c++)
            s += xr[c] * xr[c];
        double rs = 1.0 / sqrt(s / (double)cols + eps);
        for (size_t c = 0; c < cols; c++) {
            mgx += dyr[c] * (w ? w[c] : 1.0) * xr[c] * rs;
            if (dw)
                dw[c] += dyr[c] * xr[c] * rs;
        }
        mgx /= (double)cols;
        for (size_t c = 0; dx && c < cols; c++)
            dx[r * cols + c] = rs * (dyr[c] * (w ? w[c] : 1.0) - xr[c] * rs * mgx);
    }
}
