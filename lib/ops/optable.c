/* lib/ops/optable.c: the op table, one descriptor per row of ops/ops.def. */
#include "op.h"

#define OKTO__OP(id) extern const okto__op_desc okto__desc_##id;
#include "ops.def"
#undef OKTO__OP

const okto__op_desc *const okto__ops[OKTO__OP_COUNT] = {
#define OKTO__OP(id) [OKTO__OP_##id] = &okto__desc_##id,
#include "ops.def"
#undef OKTO__OP
};

/* the families' ops sit in ops.def in their public enums' order */
_Static_assert(OKTO__OP_MAP_SQUARE - OKTO__OP_MAP_RELU == OKTO_MAP_SQUARE - OKTO_MAP_RELU &&
                   OKTO__OP_ZIP_RELU_GRAD - OKTO__OP_ZIP_ADD == OKTO_ZIP_COUNT - 1 &&
                   OKTO__OP_REDUCE_MEAN - OKTO__OP_REDUCE_SUM == OKTO_REDUCE_COUNT - 1,
               "ops.def lists each family in its enum's order");
