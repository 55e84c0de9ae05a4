/* tests/ref/ref_optim.c: SGD, AdamW and the clip norm in double, as PyTorch defines them. */
#include "ref_optim.h"

#include <math.h>

void ref_sgd(double *p, const double *g, double *mom, size_t n, double lr, double momentum,
             double wd, int nesterov, double gs)
{
    for (size_t i = 0; i < n; i++) {
        double d = g[i] * gs + wd * p[i];
        if (momentum != 0) {
            mom[i] = momentum * mom[i] + d;
            d = nesterov ? d + momentum * mom[i] : mom[i];
        }
        p[i] -= lr * d;
    }
}

void ref_adamw(double *p, const double *g, double *m, double *v, size_t n, double lr, double t,
               double beta1, double beta2, double eps, double wd, double gs)
{
    double bc1 = 1 - pow(beta1, t), bc2 = 1 - pow(beta2, t);
    for (size_t i = 0; i < n; i++) {
        double gr = g[i] * gs;
        m[i] = beta1 * m[i] + (1 - beta1) * gr;
        v[i] = beta2 * v[i] + (1 - beta2) * gr * gr;
        p[i] *= 1 - lr * wd;
        p[i] -= (lr / bc1) * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
    }
}

double ref_clip_norm(const double *g, size_t n, double max_norm, double *scale)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += g[i] * g[i];
    double norm = sqrt(s), c = max_norm / (norm + 1e-6);
    *scale = c < 1 ? c : 1;
    return norm;
}
