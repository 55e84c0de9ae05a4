/* tests/ref/ref_attention.c: see ref_attention.h. Plain loops over the full score matrix: the
 * textbook formulas, so the fused kernel is checked against something derived independently
 * (the softmax backward here uses sum_j P dP, not the kernel's rowsum(dout * o)). */
#include "ref_attention.h"

#include <math.h>
#include <stdlib.h>

static int visible(int i, int j, int Tq, int Tk, int causal)
{
    return !causal || j <= i + (Tk - Tq);
}

/* p[i, j] = softmax over the visible j of scale * q_i . k_j (0 where masked); lse[i] */
static void probs(const double *q, const double *k, double *p, double *lse, int Tq, int Tk, int D,
                  double scale, int causal)
{
    for (int i = 0; i < Tq; i++) {
        double m = -INFINITY;
        for (int j = 0; j < Tk; j++) {
            double s = 0;
            if (visible(i, j, Tq, Tk, causal)) {
                for (int d = 0; d < D; d++)
                    s += q[i * D + d] * k[j * D + d];
                s *= scale;
                m = fmax(m, s);
            }
            p[i * Tk + j] = s;
        }
        double sum = 0;
        for (int j = 0; j < Tk; j++)
            if (visible(i, j, Tq, Tk, causal))
                sum += exp(p[i * Tk + j] - m);
        for (int j = 0; j < Tk; j++)
            p[i * Tk + j] = visible(i, j, Tq, Tk, causal) ? exp(p[i * Tk + j] - m) / sum : 0;
        if (lse)
            lse[i] = sum > 0 ? m + log(sum) : -INFINITY;
    }
}

void ref_attention_forward(const double *q, const double *k, const double *v, double *o,
                           double *lse, int B, int H, int Tq, int Tk, int D, double scale,
                           int causal)
{
    double *p = malloc(sizeof(double) * (size_t)Tq * (size_t)Tk + 1);
    for (int bh = 0; bh < B * H; bh++) {
        const double *qb = q + (size_t)bh * Tq * D, *kb = k + (size_t)bh * Tk * D;
        const double *vb = v + (size_t)bh * Tk * D;
        probs(qb, kb, p, lse ? lse + (size_t)bh * Tq : NULL, Tq, Tk, D, scale, causal);
        for (int i = 0; i < Tq; i++)
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int j = 0; j < Tk; j++)
                    s += p[i * Tk + j] * vb[j * D + d];
                o[((size_t)bh * Tq + i) * D + d] = s;
            }
    }
    free(p);
}

void ref_attention_backward(const double *q, const double *k, const double *v, const double *dout,
                            double *dq, double *dk, double *dv, int B, int H, int Tq, int Tk, int D,
                            double scale, int causal)
{
    size_t tt = (size_t)Tq * (size_t)Tk + 1;
    double *p = malloc(sizeof(double) * tt), *ds = malloc(sizeof(double) * tt);
    for (int bh = 0; bh < B * H; bh++) {
        const double *qb = q + (size_t)bh * Tq * D, *kb = k + (size_t)bh * Tk * D;
        const double *vb = v + (size_t)bh * Tk * D, *gb = dout + (size_t)bh * Tq * D;
        double *dqb = dq + (size_t)bh * Tq * D, *dkb = dk + (size_t)bh * Tk * D;
        double *dvb = dv + (size_t)bh * Tk * D;
        probs(qb, kb, p, NULL, Tq, Tk, D, scale, causal);
        /* dP = dout v^T; dS = P (dP - sum_j P dP), the softmax backward by rows */
        for (int i = 0; i < Tq; i++) {
            double pdp = 0;
            for (int j = 0; j < Tk; j++) {
                double dp = 0;
                for (int d = 0; d < D; d++)
                    dp += gb[i * D + d] * vb[j * D + d];
                ds[i * Tk + j] = dp;
                pdp += p[i * Tk + j] * dp;
            }
            for (int j = 0; j < Tk; j++)
                ds[i * Tk + j] = p[i * Tk + j] * (ds[i * Tk + j] - pdp);
        }
        for (int i = 0; i < Tq; i++)
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int j = 0; j < Tk; j++)
                    s += ds[i * Tk + j] * kb[j * D + d];
                dqb[i * D + d] = scale * s;
            }
        for (int j = 0; j < Tk; j++)
            for (int d = 0; d < D; d++) {
                double sk = 0, sv = 0;
                for (int i = 0; i < Tq; i++) {
                    sk += ds[i * Tk + j] * qb[i * D + d];
                    sv += p[i * Tk + j] * gb[i * D + d];
                }
                dkb[j * D + d] = scale * sk;
                dvb[j * D + d] = sv;
            }
    }
    free(p);
    free(ds);
}
