/* lib/sched/registry.c: the policy registry, generated from OKTO_SCHED_MAP (okto/context.h):
 * one row per policy, in okto_sched's order; the names, OKTO_SCHED's parsing and every loop over
 * the policies (tests, tools) come from it. Adding a policy is one file in lib/sched/ and one
 * row of OKTO_SCHED_MAP. */
#include "engine.h"

#include <string.h>

#define OKTO__SCHED_EXTERN(name, str, module) extern const okto__sched_ops okto__sched_##module;
OKTO_SCHED_MAP(OKTO__SCHED_EXTERN)
#undef OKTO__SCHED_EXTERN

const okto__sched_ops *const okto__scheds[OKTO_SCHED_COUNT - 1] = {
#define OKTO__SCHED_ROW(name, str, module) [OKTO_SCHED_##name - 1] = &okto__sched_##module,
    OKTO_SCHED_MAP(OKTO__SCHED_ROW)
#undef OKTO__SCHED_ROW
};

/* the public names and the modules' names must agree, row by row */
static const char *const public_names[] = {
#define OKTO__SCHED_NAME(name, str, module) str,
    OKTO_SCHED_MAP(OKTO__SCHED_NAME)
#undef OKTO__SCHED_NAME
};
_Static_assert(sizeof public_names / sizeof *public_names == OKTO_SCHED_COUNT - 1,
               "one registry row per okto_sched");

const okto__sched_ops *okto__sched_get(okto_sched s)
{
    return s > OKTO_SCHED_AUTO && s < OKTO_SCHED_COUNT ? okto__scheds[s - 1]
                                                       : okto__scheds[OKTO_SCHED_HEFT - 1];
}

const char *okto_sched_name(okto_sched s)
{
    if (s == OKTO_SCHED_AUTO)
        return "auto";
    return s > OKTO_SCHED_AUTO && s < OKTO_SCHED_COUNT ? okto__scheds[s - 1]->name : "unknown";
}

int okto__sched_parse(const char *name, okto_sched *out)
{
    if (strcmp(name, "auto") == 0) {
        *out = OKTO_SCHED_AUTO;
        return 1;
    }
    for (int s = 1; s < OKTO_SCHED_COUNT; s++)
        if (strcmp(name, okto__scheds[s - 1]->name) == 0 &&
            strcmp(name, public_names[s - 1]) == 0) {
            *out = (okto_sched)s;
            return 1;
        }
    return 0;
}

const char *okto__sched_names(void)
{
    static char buf[256];
    static atomic_int ready;
    if (!atomic_load(&ready)) {
        size_t off = 0;
        char tmp[256];
        for (int s = 1; s < OKTO_SCHED_COUNT; s++)
            off += (size_t)snprintf(tmp + off, sizeof tmp - off, "%s%s",
                                    s == 1                      ? ""
                                    : s == OKTO_SCHED_COUNT - 1 ? " or "
                                                                : ", ",
                                    okto__scheds[s - 1]->name);
        memcpy(buf, tmp, sizeof buf); /* the same bytes whichever thread writes them */
        atomic_store(&ready, 1);
    }
    return buf;
}

okto_status okto_sched_from_name(const char *name, okto_sched *out)
{
    if (!name || !out)
        return okto__fail(NULL, OKTO_EINVAL,
                          "okto_sched_from_name: name and out must not be "
                          "NULL");
    if (!okto__sched_parse(name, out))
        return okto__fail(NULL, OKTO_EINVAL,
                          "okto_sched_from_name: \"%s\" is not a policy "
                          "(expected auto, %s)",
                          name, okto__sched_names());
    return OKTO_OK;
}
