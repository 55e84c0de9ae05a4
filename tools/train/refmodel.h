/* tools/train/refmodel.h: okto-train's models (lib/nn/models.c) in double precision on the host,
 * forward and hand-written backward, for `okto-train --check` and tests/test_nn.c: one step's
 * loss and every parameter's gradient to compare with okto's.
 *
 * Parameters are contiguous double arrays in okto_nn_model's declaration order, with its shapes
 * (linear weights [in, out]; conv weights [Cout, Cin, 3, 3]):
 *   mlp: fc<i>.weight, fc<i>.bias ..., head.weight, head.bias
 *   cnn: conv<i>.weight, conv<i>.bias ..., head.weight, head.bias
 *   gpt: tok.weight [V, C], pos [context, C], then per block i
 *        blocks.i.attn.{ln.weight, ln.bias, qkv.weight, qkv.bias, proj.weight, proj.bias},
 *        blocks.i.mlp.{ln.weight, ln.bias, fc.weight, fc.bias, proj.weight, proj.bias},
 *        and lnf.weight, lnf.bias. */
#ifndef OTU_REFMODEL_H
#define OTU_REFMODEL_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OTU_REF_MLP, OTU_REF_CNN, OTU_REF_GPT } otu_ref_kind;

typedef struct otu_ref_config {
    otu_ref_kind kind;
    size_t features;                /* mlp */
    size_t channels, height, width; /* cnn */
    size_t classes;                 /* gpt: vocabulary */
    size_t hidden;                  /* mlp: width; cnn: first block's channels; gpt: width */
    int layers, heads;
    size_t context;
} otu_ref_config;

/* How many parameter tensors the model has, and (when shapes is not NULL) the element count of
 * each. */
int otu_ref_params(const otu_ref_config *c, size_t *numel);

/* One step: the mean cross-entropy loss over the batch, and every parameter's gradient of it
 * (grads[i] overwritten, shaped as params[i]). mlp/cnn: x float [B, features] (cnn: [B, C, H,
 * W]), labels [B]; gpt: ids [B, T], labels [B, T] (T <= context). Returns NaN when out of
 * memory. */
double otu_ref_step(const otu_ref_config *c, const double *const *params, double *const *grads,
                    const float *x, const int32_t *ids, const int32_t *labels, size_t B,
                    size_t T);

#endif
