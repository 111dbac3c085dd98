/*
 * sig_scheme.c: signature scheme names <-> bits (see sig_scheme.h), one table.
 */
#include "store/sig_scheme.h"

#include <stddef.h>
#include <string.h>

#include "core/common.h"

static const struct {
    unsigned bit;
    const char *name;
} schemes_by_name[] = {
    {HK_SIG_STANDARD, "standard"},
    {HK_SIG_RELOOP, "reloop"},
    {HK_SIG_SHA256, "sha256"},
    {HK_SIG_ED25519, "ed25519"},
};

unsigned hk_sig_scheme_from_name(const char *name)
{
    if (!name) return 0;
    for (size_t i = 0; i < HK_ARRAY_LEN(schemes_by_name); i++)
        if (strcmp(name, schemes_by_name[i].name) == 0) return schemes_by_name[i].bit;
    return 0;
}

const char *hk_sig_scheme_name(unsigned bit)
{
    for (size_t i = 0; i < HK_ARRAY_LEN(schemes_by_name); i++)
        if (bit == schemes_by_name[i].bit) return schemes_by_name[i].name;
    return NULL;
}
