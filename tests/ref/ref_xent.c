/* tests/ref/ref_xent.c: cross-entropy in double, straight from the definition. */
#include "ref_xent.h"

#include <math.h>

static double logsumexp(const double *x, size_t n)
{
    double m = -INFINITY, s = 0;
    for (size_t c = 0; c < n; c++)
        m = x[c] > m ? x[c] : m;
    for (size_t c = 0; c < n; c++)
        s += exp(x[c] - m);
    return m + log(s);
}

static int bad(int lab, size_t classes) { return lab < 0 || (size_t)lab >= classes; }

double ref_xent_fwd(const double *x, const int *labels, size_t rows, size_t classes,
                    int ignore_index, double *loss, double *count)
{
    double sum = 0, n = 0;
    for (size_t r = 0; r < rows; r++) {
        int lab = labels[r];
        if (lab == ignore_index) {
            loss[r] = 0;
            continue;
        }
        n++;
        loss[r] =
            bad(lab, classes) ? NAN : logsumexp(x + r * classes, classes) - x[r * classes + lab];
        sum += loss[r];
    }
    *count = n;
    return sum / n;
}

void ref_xent_bwd(const double *x, const int *labels, size_t rows, size_t classes, int ignore_index,
                  double dloss, double *grad)
{
    double n = 0;
    for (size_t r = 0; r < rows; r++)
        n += labels[r] != ignore_index;
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * classes;
        int lab = labels[r];
        double lse = logsumexp(xr, classes);
        for (size_t c = 0; c < classes; c++) {
            double g;
            if (lab == ignore_index)
                g = 0;
            else if (bad(lab, classes))
                g = NAN;
            else
                g = dloss * (exp(xr[c] - lse) - ((int)c == lab ? 1.0 : 0.0)) / n;
            grad[r * classes + c] = g;
        }
    }
}
