/*
 * ids.h: identifiers. Every row id is a prefix ("wh", "whev", "whde", "whda", "whsub", "key"),
 * an underscore and 24 characters of [a-z0-9]: 9 of them the creation time in base36 ms (so ids
 * sort by creation and insert at the end of B-trees) and 15 random from the CSPRNG (~77 bits),
 * so ids are unique and never reused across nodes and restarts.
 *
 * API keys are the user's; they must match [A-Za-z0-9_-]{16,128}. Generated ones are "hk_" +
 * 32 random base62 characters.
 */
#ifndef HK_IDS_H
#define HK_IDS_H

#include <stddef.h>
#include <stdint.h>

#define HK_ID_MAX      48 /* buffer size for any id (prefix up to 8 chars + '_' + 24 + NUL) */
#define HK_ID_BODY_LEN 24 /* characters after the '_' in generated ids */

/* Writes prefix + "_" + 24 id chars into out. prefix must be at most 8 chars of [a-z]. */
void hk_id_new(const char *prefix, char out[HK_ID_MAX]);

/* 1 if s is prefix + "_" + 20..40 chars of [a-z0-9] (the form the API accepts), else 0. */
int hk_id_valid(const char *s, const char *prefix);

#define HK_APIKEY_GEN_LEN 36 /* "hk_" + 32 + NUL */
void hk_apikey_generate(char out[HK_APIKEY_GEN_LEN]);
/* 1 if s matches [A-Za-z0-9_-]{16,128}. */
int hk_apikey_valid(const char *s);

#endif
