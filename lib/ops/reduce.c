/* lib/ops/reduce.c */
#include "internal.h"
