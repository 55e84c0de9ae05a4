/* tests/ref/ref_argmax.h: reference for cl/argmax.cl: out[r] = the first index of the largest
 * element of row r of x [rows, cols], NaN counting as larger than every number. */
#ifndef OKTO_REF_ARGMAX_H
#define OKTO_REF_ARGMAX_H

#include <stddef.h>

void ref_argmax(const double *x, size_t rows, size_t cols, int *out);

#endif
