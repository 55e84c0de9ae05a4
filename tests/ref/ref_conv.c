/* tests/ref/ref_conv.c: see ref_conv.h. Direct loops over the definition; im2col / col2im as
 * the scatter the definition implies (independent of the kernels' gather). */
#include "ref_conv.h"

#include <string.h>

int ref_conv_out(int in, int k, int stride, int pad, int dil)
{
    int span = in + 2 * pad - dil * (k - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

/* x index of tap (kh, kw) for output (oh, ow), or -1 in the padding */
static long tap(const ref_conv_geom *g, int n, int c, int oh, int ow, int kh, int kw)
{
    int ih = oh * g->sh - g->ph + kh * g->dh, iw = ow * g->sw - g->pw + kw * g->dw;
    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
        return -1;
    return (((long)n * g->C + c) * g->H + ih) * g->W + iw;
}

void ref_conv2d_forward(const ref_conv_geom *g, const double *x, const double *w, const double *b,
                        double *y)
{
    for (int n = 0; n < g->N; n++)
        for (int o = 0; o < g->Cout; o++)
            for (int oh = 0; oh < g->OH; oh++)
                for (int ow = 0; ow < g->OW; ow++) {
                    double s = b ? b[o] : 0;
                    for (int c = 0; c < g->C; c++)
                        for (int kh = 0; kh < g->KH; kh++)
                            for (int kw = 0; kw < g->KW; kw++) {
                                long i = tap(g, n, c, oh, ow, kh, kw);
                                if (i >= 0)
                                    s += w[((o * g->C + c) * g->KH + kh) * g->KW + kw] * x[i];
                            }
                    y[(((long)n * g->Cout + o) * g->OH + oh) * g->OW + ow] = s;
                }
}

void ref_conv2d_backward(const ref_conv_geom *g, const double *x, const double *w, const double *dy,
                         double *dx, double *dw, double *db)
{
    memset(dx, 0, sizeof(double) * g->N * g->C * g->H * g->W);
    memset(dw, 0, sizeof(double) * g->Cout * g->C * g->KH * g->KW);
    memset(db, 0, sizeof(double) * g->Cout);
    for (int n = 0; n < g->N; n++)
        for (int o = 0; o < g->Cout; o++)
            for (int oh = 0; oh < g->OH; oh++)
                for (int ow = 0; ow < g->OW; ow++) {
                    double d = dy[(((long)n * g->Cout + o) * g->OH + oh) * g->OW + ow];
                    db[o] += d;
                    for (int c = 0; c < g->C; c++)
                        for (int kh = 0; kh < g->KH; kh++)
                            for (int kw = 0; kw < g->KW; kw++) {
                                long i = tap(g, n, c, oh, ow, kh, kw);
                                long wi = ((o * g->C + c) * g->KH + kh) * g->KW + kw;
                                if (i >= 0) {
                                    dx[i] += w[wi] * d;
                                    dw[wi] += x[i] * d;
                                }
                            }
                }
}

void ref_im2col(const ref_conv_geom *g, const double *x, double *cols, size_t ld, size_t nstride)
{
    for (int c = 0; c < g->C; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                size_t r = ((size_t)c * g->KH + kh) * g->KW + kw;
                for (int n = 0; n < g->N; n++)
                    for (int oh = 0; oh < g->OH; oh++)
                        for (int ow = 0; ow < g->OW; ow++) {
                            long i = tap(g, n, c, oh, ow, kh, kw);
                            cols[r * ld + n * nstride + (size_t)oh * g->OW + ow] =
                                i >= 0 ? x[i] : 0;
                        }
            }
}

void ref_col2im(const ref_conv_geom *g, const double *cols, double *dx, size_t ld, size_t nstride)
{
    memset(dx, 0, sizeof(double) * g->N * g->C * g->H * g->W);
    for (int c = 0; c < g->C; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                size_t r = ((size_t)c * g->KH + kh) * g->KW + kw;
                for (int n = 0; n < g->N; n++)
                    for (int oh = 0; oh < g->OH; oh++)
                        for (int ow = 0; ow < g->OW; ow++) {
                            long i = tap(g, n, c, oh, ow, kh, kw);
                            if (i >= 0)
                                dx[i] += cols[r * ld + n * nstride + (size_t)oh * g->OW + ow];
                        }
            }
}
