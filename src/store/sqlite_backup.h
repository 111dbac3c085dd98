/*
 * sqlite_backup.h: `hookd backup PATH`, a consistent copy of the SQLite store taken while
 * hookd serves it (issue 16, part 4). It uses SQLite's online backup API on a connection of its
 * own, opened read-only on HOOKD_DB: it never takes the "<db>.lock" flock that makes a serving
 * hookd single-node (a backup is a reader), never blocks the serving writer (WAL mode: a
 * reader holds only a WAL read mark), and copies one snapshot, the one its read transaction
 * began on, in steps of a bounded number of pages. While it runs, checkpoints cannot go past
 * that snapshot, so the -wal file may grow until it ends.
 *
 * The copy is written to a private temporary file beside PATH (mode 0600), flushed to disk,
 * and only then renamed to PATH, so PATH is either absent or a complete database: an
 * interrupted or failed backup never leaves a half-written PATH (a killed one may leave its
 * "PATH.tmp-XXXXXX" behind). Ciphertext stays ciphertext: with WEBHOOK_ENCRYPTION_KEY the copy
 * is useless without that key.
 */
#ifndef HK_SQLITE_BACKUP_H
#define HK_SQLITE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

/* Figures of one finished backup. */
typedef struct hk_backup_stats {
    int64_t pages; /* pages copied */
    int64_t bytes; /* size of the copy */
    int64_t steps; /* sqlite3_backup_step calls */
    int64_t ms;    /* wall time */
} hk_backup_stats;

/* Pages copied per sqlite3_backup_step (4 MB at the default 4 KB page). */
#define HK_BACKUP_STEP_PAGES 1024

/* Copies the SQLite database db_path to dest. Refuses (HK_EEXIST, nothing written) when dest
 * exists, unless force, in which case dest is replaced atomically once the copy is complete.
 * Always refuses (HK_EINVAL) a dest that is db_path itself, or beside which a "-wal", "-shm"
 * or "-journal" file exists (a live database: SQLite would apply that stale journal to the
 * copy). Returns 0 and fills *out (may be NULL), or a negative HK_E* code with a message that
 * names the path in err: HK_EUNAVAIL (db_path cannot be opened or read), HK_EIO (dest cannot
 * be written). Never opens db_path for writing, never creates it. */
int hk_sqlite_backup(const char *db_path, const char *dest, int force, hk_backup_stats *out,
                     char *err, size_t errlen);

#endif
