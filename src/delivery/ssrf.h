/*
 * ssrf.h: what hookd refuses to connect to (SPEC §3 validation, §4 SSRF guard), and the
 * validation of webhook URLs.
 *
 * Two checks, one rule:
 *  - at connect time (httpc.c's open-socket callback) every address curl is about to connect
 *    to is checked, after DNS, so a name that resolves (or re-resolves: DNS rebinding) to a
 *    private address is refused whatever it resolved to when the webhook was created;
 *  - at create/patch time, a URL whose host is a literal address in a refused range (in any
 *    spelling curl accepts: "127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1",
 *    "[::ffff:127.0.0.1]", ...) or the name "localhost" (or *.localhost) is refused with 422.
 *
 * Refused ranges: unspecified (0.0.0.0/8, ::), loopback (127/8, ::1), private (10/8,
 * 172.16/12, 192.168/16), CGNAT (100.64/10), link-local (169.254/16 incl. the cloud metadata
 * address, fe80::/10), multicast (224/4, ff00::/8), reserved (240/4, 255.255.255.255),
 * benchmarking (198.18/15), documentation (192.0.2/24, 198.51.100/24, 203.0.113/24,
 * 2001:db8::/32), IETF protocol assignments (192.0.0/24), ULA (fc00::/7), site-local (fec0::/10),
 * and IPv6 forms that embed an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible
 * ::/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32) when the
 * embedded address is refused. HOOKD_ALLOW_NETWORKS (CIDR list) overrides any of them.
 */
#ifndef HK_SSRF_H
#define HK_SSRF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

typedef struct hk_ssrf_guard hk_ssrf_guard;

/* A guard using cfg->allow_networks (copied). Never NULL. */
hk_ssrf_guard *hk_ssrf_guard_new(const hk_config *cfg);
void hk_ssrf_guard_free(hk_ssrf_guard *g);

/* The refused range an address (16 bytes; IPv4 as IPv4-mapped ::ffff:a.b.c.d) falls in, e.g.
 * "loopback", "private", "link-local", "cgnat", "multicast", "reserved", "documentation",
 * "unspecified", "ula", ...; NULL if it is public. Ignores HOOKD_ALLOW_NETWORKS. */
const char *hk_ssrf_classify(const uint8_t addr[16]);

/* 0 if addr (AF_INET or AF_INET6 sockaddr) may be connected to: public, or inside an allowed
 * network. Otherwise HK_EDENIED and msg says why, e.g. "address 127.0.0.1 is loopback; hookd
 * refuses it (allow with HOOKD_ALLOW_NETWORKS)". */
int hk_ssrf_check(const hk_ssrf_guard *g, const struct sockaddr *addr, size_t addrlen, char *msg,
                  size_t msglen);

/* Validates a webhook URL for create/patch: absolute http or https (https only when
 * https_only), at most 2048 bytes, no user or password, a host present, no CR/LF/NUL or spaces,
 * and a host that is not a refused literal address or localhost (unless allowed). Returns 0,
 * or HK_EINVAL with msg naming the problem ("url must use https (HOOKD_HTTPS_ONLY=1)"). */
int hk_url_validate(const hk_ssrf_guard *g, const char *url, int https_only, char *msg,
                    size_t msglen);

#endif
