/* tests/ref/ref_pool.c: see ref_pool.h. The backward passes scatter from each output window,
 * as the definition reads (the kernels gather instead). */
#include "ref_pool.h"

#include <math.h>
#include <string.h>

void ref_maxpool2d_forward(const ref_pool_geom *g, const double *x, double *y, int *argmax)
{
    for (int p = 0; p < g->NC; p++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                double best = -INFINITY;
                int bi = -1;
                for (int kh = 0; kh < g->KH; kh++)
                    for (int kw = 0; kw < g->KW; kw++) {
                        int ih = oh * g->sh - g->ph + kh * g->dh;
                        int iw = ow * g->sw - g->pw + kw * g->dw;
                        if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
                            continue;
                        double v = x[((long)p * g->H + ih) * g->W + iw];
                        if (bi < 0 || v > best || isnan(v)) {
                            best = v;
                            bi = ih * g->W + iw;
                        }
                    }
                long o = ((long)p * g->OH + oh) * g->OW + ow;
                y[o] = best;
                argmax[o] = bi;
            }
}

void ref_maxpool2d_backward(const ref_pool_geom *g, const double *dy, const int *argmax, double *dx)
{
    memset(dx, 0, sizeof(double) * g->NC * g->H * g->W);
    for (int p = 0; p < g->NC; p++)
        for (int o = 0; o < g->OH * g->OW; o++) {
            long i = (long)p * g->OH * g->OW + o;
            if (argmax[i] >= 0)
                dx[(long)p * g->H * g->W + argmax[i]] += dy[i];
        }
}

/* PyTorch's window: start, end clipped to the padded input (its length is the
 * count_include_pad divisor), then clipped to the input */
static void span(int o, int stride, int pad, int k, int in, int *s, int *e, int *len)
{
    int a = o * stride - pad, b = a + k < in + pad ? a + k : in + pad;
    *len = b - a;
    *s = a > 0 ? a : 0;
    *e = b < in ? b : in;
}

static double divisor(const ref_pool_geom *g, int oh, int ow, int cip, int *hs, int *he, int *ws,
                      int *we)
{
    int hl, wl;
    span(oh, g->sh, g->ph, g->KH, g->H, hs, he, &hl);
    span(ow, g->sw, g->pw, g->KW, g->W, ws, we, &wl);
    return cip ? (double)hl * wl : (double)(*he - *hs) * (*we - *ws);
}

void ref_avgpool2d_forward(const ref_pool_geom *g, const double *x, double *y,
                           int count_include_pad)
{
    for (int p = 0; p < g->NC; p++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                int hs, he, ws, we;
                double d = divisor(g, oh, ow, count_include_pad, &hs, &he, &ws, &we), s = 0;
                for (int ih = hs; ih < he; ih++)
                    for (int iw = ws; iw < we; iw++)
                        s += x[((long)p * g->H + ih) * g->W + iw];
                y[((long)p * g->OH + oh) * g->OW + ow] = d > 0 ? s / d : 0;
            }
}

void ref_avgpool2d_backward(const ref_pool_geom *g, const double *dy, double *dx,
                            int count_include_pad)
{
    memset(dx, 0, sizeof(double) * g->NC * g->H * g->W);
    for (int p = 0; p < g->NC; p++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                int hs, he, ws, we;
                double d = divisor(g, oh, ow, count_include_pad, &hs, &he, &ws, &we);
                double v = dy[((long)p * g->OH + oh) * g->OW + ow];
                if (d > 0)
                    for (int ih = hs; ih < he; ih++)
                        for (int iw = ws; iw < we; iw++)
                            dx[((long)p * g->H + ih) * g->W + iw] += v / d;
            }
}

void ref_gap_forward(int NC, int HW, const double *x, double *y)
{
    for (int p = 0; p < NC; p++) {
        double s = 0;
        for (int i = 0; i < HW; i++)
            s += x[(long)p * HW + i];
        y[p] = s / HW;
    }
}

void ref_gap_backward(int NC, int HW, const double *dy, double *dx)
{
    for (int p = 0; p < NC; p++)
        for (int i = 0; i < HW; i++)
            dx[(long)p * HW + i] = dy[p] / HW;
}
