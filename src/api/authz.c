/*
 * authz.c: the authorization decision (SPEC §7 "Tenancy"), a pure function so that the whole
 * table is unit-tested (tests/unit/test_authz.c). api.c authenticates the key (which gives the
 * key's organization, or none for an admin key, and its scope; or a portal session's), then asks
 * this who may go on.
 */
#include "api/api.h"

int hk_authz_decide(int route_auth, int is_get, int admin, int session, int scope,
                    int has_org_header)
{
    int read_only = scope == HK_SCOPE_READ;
    if (route_auth == HK_AUTH_ADMIN) {
        if (!admin) return HK_AUTHZ_ADMIN_ONLY; /* a session has an organization */
        return read_only && !is_get ? HK_AUTHZ_SCOPE : HK_AUTHZ_OK;
    }
    if (route_auth == HK_AUTH_MINT) { /* the handler takes the organization of an admin key */
        if (session) return HK_AUTHZ_SESSION;
        return read_only ? HK_AUTHZ_SCOPE : HK_AUTHZ_OK;
    }
    /* an organization's route */
    if (session && route_auth == HK_AUTH_ORG_FULL) return HK_AUTHZ_SESSION;
    if (read_only && (!is_get || route_auth == HK_AUTH_ORG_FULL)) return HK_AUTHZ_SCOPE;
    if (admin) return has_org_header ? HK_AUTHZ_ACT_AS : HK_AUTHZ_NEED_ORG;
    return HK_AUTHZ_OK;
}
