/*
 * test_authz.c: the authorization decision (api/authz.c, SPEC §7) on its whole table: every
 * kind of route x admin or organization key or portal session x full or read scope x with or
 * without X-Organization-Id x GET or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"

enum { POST = 0, GET = 1 };
enum { ORGKEY = 0, ADMIN = 1 };
enum { NOHDR = 0, HDR = 1 };

static int d(int route, int is_get, int admin, int scope, int hdr)
{
    return hk_authz_decide(route, is_get, admin, 0, scope, hdr);
}

/* a portal session: of an organization, never admin */
static int sess(int route, int is_get, int scope)
{
    return hk_authz_decide(route, is_get, ORGKEY, 1, scope, NOHDR);
}

static void test_sessions(void **state)
{
    (void)state;
    assert_int_equal(sess(HK_AUTH_ORG, GET, HK_SCOPE_FULL), HK_AUTHZ_OK);
    assert_int_equal(sess(HK_AUTH_ORG, POST, HK_SCOPE_FULL), HK_AUTHZ_OK);
    assert_int_equal(sess(HK_AUTH_ORG, GET, HK_SCOPE_READ), HK_AUTHZ_OK);
    assert_int_equal(sess(HK_AUTH_ORG, POST, HK_SCOPE_READ), HK_AUTHZ_SCOPE);
    for (int scope = 0; scope < 2; scope++) {
        assert_int_equal(sess(HK_AUTH_ORG_FULL, GET, scope), HK_AUTHZ_SESSION);
        assert_int_equal(sess(HK_AUTH_ORG_FULL, POST, scope), HK_AUTHZ_SESSION);
        assert_int_equal(sess(HK_AUTH_MINT, POST, scope), HK_AUTHZ_SESSION);
        assert_int_equal(sess(HK_AUTH_ADMIN, GET, scope), HK_AUTHZ_ADMIN_ONLY);
    }
}

static void test_mint(void **state)
{
    (void)state;
    assert_int_equal(d(HK_AUTH_MINT, POST, ADMIN, HK_SCOPE_FULL, NOHDR), HK_AUTHZ_OK);
    assert_int_equal(d(HK_AUTH_MINT, POST, ADMIN, HK_SCOPE_FULL, HDR), HK_AUTHZ_OK);
    assert_int_equal(d(HK_AUTH_MINT, POST, ORGKEY, HK_SCOPE_FULL, NOHDR), HK_AUTHZ_OK);
    assert_int_equal(d(HK_AUTH_MINT, POST, ORGKEY, HK_SCOPE_READ, NOHDR), HK_AUTHZ_SCOPE);
    assert_int_equal(d(HK_AUTH_MINT, POST, ADMIN, HK_SCOPE_READ, NOHDR), HK_AUTHZ_SCOPE);
}

static void test_org_routes(void **state)
{
    (void)state;
    for (int hdr = 0; hdr < 2; hdr++) {
        /* an organization's key: the header is ignored */
        assert_int_equal(d(HK_AUTH_ORG, GET, ORGKEY, HK_SCOPE_FULL, hdr), HK_AUTHZ_OK);
        assert_int_equal(d(HK_AUTH_ORG, POST, ORGKEY, HK_SCOPE_FULL, hdr), HK_AUTHZ_OK);
        assert_int_equal(d(HK_AUTH_ORG, GET, ORGKEY, HK_SCOPE_READ, hdr), HK_AUTHZ_OK);
        assert_int_equal(d(HK_AUTH_ORG, POST, ORGKEY, HK_SCOPE_READ, hdr), HK_AUTHZ_SCOPE);
    }
    /* an admin key acts on the organization named by the header, and needs it */
    assert_int_equal(d(HK_AUTH_ORG, GET, ADMIN, HK_SCOPE_FULL, HDR), HK_AUTHZ_ACT_AS);
    assert_int_equal(d(HK_AUTH_ORG, POST, ADMIN, HK_SCOPE_FULL, HDR), HK_AUTHZ_ACT_AS);
    assert_int_equal(d(HK_AUTH_ORG, GET, ADMIN, HK_SCOPE_FULL, NOHDR), HK_AUTHZ_NEED_ORG);
    assert_int_equal(d(HK_AUTH_ORG, POST, ADMIN, HK_SCOPE_FULL, NOHDR), HK_AUTHZ_NEED_ORG);
    /* a read admin key reads only */
    assert_int_equal(d(HK_AUTH_ORG, GET, ADMIN, HK_SCOPE_READ, HDR), HK_AUTHZ_ACT_AS);
    assert_int_equal(d(HK_AUTH_ORG, POST, ADMIN, HK_SCOPE_READ, HDR), HK_AUTHZ_SCOPE);
}

static void test_key_routes_need_full(void **state)
{
    (void)state;
    assert_int_equal(d(HK_AUTH_ORG_FULL, GET, ORGKEY, HK_SCOPE_FULL, NOHDR), HK_AUTHZ_OK);
    assert_int_equal(d(HK_AUTH_ORG_FULL, POST, ORGKEY, HK_SCOPE_FULL, NOHDR), HK_AUTHZ_OK);
    assert_int_equal(d(HK_AUTH_ORG_FULL, GET, ORGKEY, HK_SCOPE_READ, NOHDR), HK_AUTHZ_SCOPE);
    assert_int_equal(d(HK_AUTH_ORG_FULL, POST, ORGKEY, HK_SCOPE_READ, NOHDR), HK_AUTHZ_SCOPE);
    assert_int_equal(d(HK_AUTH_ORG_FULL, GET, ADMIN, HK_SCOPE_FULL, HDR), HK_AUTHZ_ACT_AS);
    assert_int_equal(d(HK_AUTH_ORG_FULL, GET, ADMIN, HK_SCOPE_FULL, NOHDR), HK_AUTHZ_NEED_ORG);
    assert_int_equal(d(HK_AUTH_ORG_FULL, GET, ADMIN, HK_SCOPE_READ, HDR), HK_AUTHZ_SCOPE);
}

static void test_admin_routes(void **state)
{
    (void)state;
    for (int hdr = 0; hdr < 2; hdr++) {
        for (int scope = 0; scope < 2; scope++) {
            assert_int_equal(d(HK_AUTH_ADMIN, GET, ORGKEY, scope, hdr), HK_AUTHZ_ADMIN_ONLY);
            assert_int_equal(d(HK_AUTH_ADMIN, POST, ORGKEY, scope, hdr), HK_AUTHZ_ADMIN_ONLY);
        }
        assert_int_equal(d(HK_AUTH_ADMIN, GET, ADMIN, HK_SCOPE_FULL, hdr), HK_AUTHZ_OK);
        assert_int_equal(d(HK_AUTH_ADMIN, POST, ADMIN, HK_SCOPE_FULL, hdr), HK_AUTHZ_OK);
        assert_int_equal(d(HK_AUTH_ADMIN, GET, ADMIN, HK_SCOPE_READ, hdr), HK_AUTHZ_OK);
        assert_int_equal(d(HK_AUTH_ADMIN, POST, ADMIN, HK_SCOPE_READ, hdr), HK_AUTHZ_SCOPE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_org_routes),   cmocka_unit_test(test_key_routes_need_full),
        cmocka_unit_test(test_admin_routes), cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_mint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
