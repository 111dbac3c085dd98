/*
 * sig_scheme.h: the names of the signature schemes of SPEC §4 ("standard", "reloop", "sha256")
 * and the bits a webhook stores them as (hk_webhook.schemes). The API reads the names, the
 * store keeps the bits, the delivery signs with them (delivery/sign.h, which says what each
 * scheme sends); this header holds only the vocabulary, so the store does not reach up into
 * delivery for it.
 */
#ifndef HK_SIG_SCHEME_H
#define HK_SIG_SCHEME_H

enum hk_sig_scheme {
    HK_SIG_STANDARD = 1 << 0,
    HK_SIG_RELOOP = 1 << 1,
    HK_SIG_SHA256 = 1 << 2,
    HK_SIG_ED25519 = 1 << 3, /* Standard Webhooks v1a, with the webhook's key pair */
};
#define HK_SIG_LAST    HK_SIG_ED25519 /* the highest bit, for loops over the schemes */
#define HK_SIG_DEFAULT (HK_SIG_STANDARD | HK_SIG_RELOOP)
#define HK_SIG_ALL     (HK_SIG_STANDARD | HK_SIG_RELOOP | HK_SIG_SHA256)

/* "standard" -> HK_SIG_STANDARD etc.; 0 if unknown. */
unsigned hk_sig_scheme_from_name(const char *name);
/* Name of one scheme bit; NULL if not exactly one known bit. */
const char *hk_sig_scheme_name(unsigned bit);

#endif
