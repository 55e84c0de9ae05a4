/* examples/fit.c: least squares with okto's autograd, the smallest complete training loop.
 *
 * Finds w for y = x w from 256 samples of 8 features. One graph is the whole step: the forward
 * pass, the loss, the gradient (okto_backward) and the SGD update, recorded once and replayed.
 * Built with the project (build/examples/okto-example-fit) and run by the test suite; the
 * README quotes it. Exit status 0 when the fit recovers w_true to 1e-3. */
#include <okto/okto.h>
#include <math.h>
#include <stdio.h>

#define N 256
#define D 8

#define CHECK(call)                                                                            \
    do {                                                                                       \
        okto_status s_ = (call);                                                               \
        if (s_ != OKTO_OK) {                                                                   \
            fprintf(stderr, "%s: %s: %s\n", #call, okto_status_str(s_), okto_last_error(ctx)); \
            goto out;                                                                          \
        }                                                                                      \
    } while (0)

int main(void)
{
    static float xh[N * D], yh[N], wh[D];
    const float w_true[D] = {1, -2, 3, -4, 0.5f, -0.25f, 2, 0};
    unsigned seed = 1;
    for (int i = 0; i < N; i++) {
        yh[i] = 0;
        for (int j = 0; j < D; j++) {
            seed = seed * 1664525u + 1013904223u;
            xh[i * D + j] = (float)(seed >> 8) / (float)(1u << 24) * 2 - 1;
            yh[i] += xh[i * D + j] * w_true[j];
        }
    }

    int rc = 1;
    okto_context *ctx = NULL;
    okto_tensor *x = NULL, *y = NULL, *w = NULL, *dw = NULL, *loss = NULL;
    okto_graph *g = NULL;
    if (okto_context_create(NULL, &ctx) != OKTO_OK) {
        fprintf(stderr, "okto: %s\n", okto_last_error(NULL));
        return 1;
    }
    const size_t xs[2] = {N, D}, ys[2] = {N, 1}, ws[2] = {D, 1}, one[1] = {1};
    CHECK(okto_tensor_create(ctx, OKTO_F32, 2, xs, &x));
    CHECK(okto_tensor_create(ctx, OKTO_F32, 2, ys, &y));
    CHECK(okto_tensor_create(ctx, OKTO_F32, 2, ws, &w));
    CHECK(okto_tensor_create(ctx, OKTO_F32, 2, ws, &dw));
    CHECK(okto_tensor_create(ctx, OKTO_F32, 1, one, &loss));
    CHECK(okto_tensor_write_f32(x, xh));
    CHECK(okto_tensor_write_f32(y, yh));
    for (int j = 0; j < D; j++)
        wh[j] = 0;
    CHECK(okto_tensor_write_f32(w, wh));
    CHECK(okto_tensor_set_requires_grad(w, 1)); /* before the ops that read w are recorded */

    /* The step: loss = mean((x w - y)^2); dw = d loss / dw; w -= 0.1 dw. Temporaries belong to
     * the graph (okto_graph_tensor), so nothing else needs freeing. */
    okto_tensor *pred, *diff, *sq;
    CHECK(okto_graph_create(ctx, &g));
    CHECK(okto_graph_tensor(g, OKTO_F32, 2, ys, &pred));
    CHECK(okto_graph_tensor(g, OKTO_F32, 2, ys, &diff));
    CHECK(okto_graph_tensor(g, OKTO_F32, 2, ys, &sq));
    CHECK(okto_matmul(g, pred, x, w, 0));
    CHECK(okto_zip(g, diff, pred, y, OKTO_ZIP_SUB));
    CHECK(okto_zip(g, sq, diff, diff, OKTO_ZIP_MUL));
    CHECK(okto_reduce_all(g, loss, sq, OKTO_REDUCE_MEAN));
    CHECK(okto_backward(g, loss, 1, (const okto_tensor *const[]){w}, (okto_tensor *const[]){dw},
                        0));
    CHECK(okto_axpy(g, w, -0.1f, dw));

    float l = 0;
    for (int step = 0; step < 300; step++) {
        CHECK(okto_graph_run(g));
        if (step % 100 == 0 || step == 299) {
            CHECK(okto_tensor_read_f32(loss, &l));
            printf("step %3d  loss %.3g\n", step, l);
        }
    }
    CHECK(okto_tensor_read_f32(w, wh));
    double err = 0;
    for (int j = 0; j < D; j++)
        err = fmax(err, fabs(wh[j] - w_true[j]));
    printf("w = [");
    for (int j = 0; j < D; j++)
        printf("%s%.3f", j ? " " : "", wh[j]);
    printf("], largest error %.2g\n", err);
    rc = err < 1e-3 ? 0 : 1;
out:
    okto_graph_destroy(g);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
    okto_tensor_destroy(w);
    okto_tensor_destroy(dw);
    okto_tensor_destroy(loss);
    okto_context_destroy(ctx);
    return rc;
}
