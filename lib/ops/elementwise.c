/* lib/ops/elementwise.c */
#include "internal.h"
