/* tests/ref/ref_xent.h: double-precision reference for cl/xent.cl. x and grad are
 * [rows, classes] row-major, labels [rows]. A row whose label == ignore_index has loss 0 and
 * gradient 0 and is not counted; any other label outside [0, classes) gives loss NaN and a NaN
 * gradient row, and is counted. */
#ifndef OKTO_REF_XENT_H
#define OKTO_REF_XENT_H

#include <stddef.h>

/* loss[r] per row; returns the mean over the counted rows (NaN when none) and stores the count
 * in *count. */
double ref_xent_fwd(const double *x, const int *labels, size_t rows, size_t classes,
                    int ignore_index, double *loss, double *count);
/* grad = dloss * d(mean loss)/dx. */
void ref_xent_bwd(const double *x, const int *labels, size_t rows, size_t classes, int ignore_index,
                  double dloss, double *grad);

#endif
