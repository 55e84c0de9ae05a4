/* tests/ref/ref_norm.h: double-precision references for cl/norm.cl. x, y, dy, dx are
 * [rows, cols] row-major; w, b, dw, db are [cols]; mean, rstd are [rows]. w and b may be NULL
 * (weight 1, bias 0); dx, dw, db, mean, rstd may be NULL (not wanted). Outputs are
 * overwritten. */
#ifndef OKTO_REF_NORM_H
#define OKTO_REF_NORM_H

#include <stddef.h>

void ref_layernorm_fwd(const double *x, const double *w, const double *b, double *y, double *mean,
                       double *rstd, size_t rows, size_t cols, double eps);
void ref_layernorm_bwd(const double *dy, const double *x, const double *w, double *dx, double *dw,
                       double *db, size_t rows, size_t cols, double eps);
void ref_rmsnorm_fwd(const double *x, const double *w, double *y, double *rstd, size_t rows,
                     size_t cols, double eps);
void ref_rmsnorm_bwd(const double *dy, const double *x, const double *w, double *dx, double *dw,
                     size_t rows, size_t cols, double eps);

#endif
