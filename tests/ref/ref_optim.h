/* tests/ref/ref_optim.h: double-precision references for cl/optim.cl, one step over n
 * contiguous elements, in place (p, and the state mom / m / v). gs multiplies the gradient. */
#ifndef OKTO_REF_OPTIM_H
#define OKTO_REF_OPTIM_H

#include <stddef.h>

/* PyTorch SGD, dampening 0: d = g gs + wd p; momentum != 0: buf = momentum buf + d,
 * d = nesterov ? d + momentum buf : buf; p -= lr d. */
void ref_sgd(double *p, const double *g, double *mom, size_t n, double lr, double momentum,
             double wd, int nesterov, double gs);
/* PyTorch AdamW at step t (>= 1). */
void ref_adamw(double *p, const double *g, double *m, double *v, size_t n, double lr, double t,
               double beta1, double beta2, double eps, double wd, double gs);
/* The global norm of the n gradients and min(1, max_norm / (norm + 1e-6)). */
double ref_clip_norm(const double *g, size_t n, double max_norm, double *scale);

#endif
