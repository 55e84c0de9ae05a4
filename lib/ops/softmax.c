/* lib/ops/softmax.c */
#include "internal.h"
