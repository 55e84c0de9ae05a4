/* tests/ref/ref_softmax_ext.h: double-precision references for cl/softmax_ext.cl. All arrays
 * are [rows, cols] row-major; the backward passes take the forward's output y. */
#ifndef OKTO_REF_SOFTMAX_EXT_H
#define OKTO_REF_SOFTMAX_EXT_H

#include <stddef.h>

void ref_softmax_fwd(const double *x, double *y, size_t rows, size_t cols);
/* dx = y * (dy - sum(dy * y)) per row */
void ref_softmax_bwd(const double *y, const double *dy, double *dx, size_t rows, size_t cols);
void ref_log_softmax_fwd(const double *x, double *y, size_t rows, size_t cols);
/* dx = dy - exp(y) * sum(dy) per row */
void ref_log_softmax_bwd(const double *y, const double *dy, double *dx, size_t rows, size_t cols);

#endif
