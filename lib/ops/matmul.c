/* lib/ops/matmul.c */
#include "internal.h"
