/*
 * pg.c: the PostgreSQL store backend (PG_URL). Not implemented yet (issue 4): opening it fails
 * with a clear message, so PG_URL never silently falls back to SQLite.
 */
#include <stdio.h>

#include "store/backend.h"

static int pg_open(void **conn, const hk_config *cfg, int role, char *err, size_t errlen)
{
    (void)conn;
    (void)cfg;
    (void)role;
    snprintf(err, errlen, "PG_URL is set but this hookd build has no PostgreSQL backend yet");
    return HK_EUNAVAIL;
}

const hk_store_backend hk_pg_backend = {
    .name = "postgres",
    .open = pg_open,
};
