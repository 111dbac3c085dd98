/*
 * test_config.c: hookd's options (core/config.c) through the public API: every default, the
 * source priority (.env < environment < flags), booleans, an error naming the option for every
 * kind of bad value, CIDR lists, the lease/timeout cross check, what goes to rest[], --help,
 * NODE_TLS_REJECT_UNAUTHORIZED, the encryption key, the .env parser and the help table.
 * Each test starts from an environment without any hookd variable and a private temp dir.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "core/config.h"

static const char *const all_env[] = {
    "PORT",
    "HOOKD_HOST",
    "BASE_URL",
    "NODE_ENV",
    "HOOKD_MAX_BODY_BYTES",
    "HOOKD_MAX_CONNECTIONS",
    "HOOKD_SHUTDOWN_TIMEOUT_MS",
    "HOOKD_METRICS_KEY",
    "HOOKD_SWAGGER_UI_DIR",
    "HOOKD_INGEST_RATE_LIMIT",
    "HOOKD_DB",
    "HOOKD_SQLITE_SYNC",
    "PG_URL",
    "HOOKD_PG_POOL",
    "WEBHOOK_ENCRYPTION_KEY",
    "HOOKD_BOOTSTRAP_KEY",
    "HOOKD_BOOTSTRAP_ORG",
    "REDIS_URL",
    "HOOKD_REDIS_PREFIX",
    "HOOKD_SWEEP_INTERVAL_MS",
    "HOOKD_NODE_ID",
    "HOOKD_LEASE_MS",
    "HOOKD_POLL_INTERVAL_MS",
    "HOOKD_QUEUE_WINDOW",
    "HOOKD_HTTP_TIMEOUT_MS",
    "HOOKD_RESPONSE_BODY_MAX",
    "HOOKD_RETRY_SCHEDULE",
    "HOOKD_RETRY_JITTER",
    "HOOKD_DISABLE_AFTER",
    "HOOKD_ENDPOINT_CONCURRENCY",
    "HOOKD_MAX_INFLIGHT",
    "HOOKD_ORG_MAX_INFLIGHT",
    "HOOKD_ALLOW_NETWORKS",
    "HOOKD_HTTPS_ONLY",
    "HOOKD_TLS_INSECURE",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "HOOKD_CA_FILE",
    "HOOKD_USER_AGENT",
    "NATS_URL",
    "HOOKD_NATS_SUBJECTS",
    "HOOKD_NATS_STREAM",
    "HOOKD_NATS_DURABLE",
    "HOOKD_LOG_FORMAT",
    "HOOKD_LOG_LEVEL",
};

static char tmpdir[256];
static char envpath[300];
static const char *const KEY64 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

static int setup(void **state)
{
    for (size_t i = 0; i < HK_ARRAY_LEN(all_env); i++) unsetenv(all_env[i]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hk_test_config_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(envpath, sizeof envpath, "%s/.env", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < HK_ARRAY_LEN(all_env); i++) unsetenv(all_env[i]);
    unlink(envpath);
    char p[320];
    snprintf(p, sizeof p, "%s/ca.pem", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/dir", tmpdir);
    rmdir(p);
    rmdir(tmpdir);
    return 0;
}

static void write_env(const char *text)
{
    FILE *f = fopen(envpath, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads with argv (NULL-terminated list after the program name) and the temp .env path. */
typedef struct loaded {
    hk_config cfg;
    int rc, rest[32], nrest, help;
    char err[512];
} loaded;

static int load_v(loaded *l, const char *dotenv, va_list ap)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"hookd";
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31) argv[argc++] = (char *)a;
    argv[argc] = NULL;
    memset(l, 0, sizeof *l);
    l->rc = hk_config_load(&l->cfg, argc, argv, dotenv, l->rest, &l->nrest, &l->help, l->err,
                           sizeof l->err);
    return l->rc;
}

static int load(loaded *l, ...)
{
    va_list ap;
    va_start(ap, l);
    int rc = load_v(l, envpath, ap);
    va_end(ap);
    return rc;
}

static int load_argv(loaded *l, int argc, char **argv)
{
    memset(l, 0, sizeof *l);
    l->rc = hk_config_load(&l->cfg, argc, argv, envpath, l->rest, &l->nrest, &l->help, l->err,
                           sizeof l->err);
    return l->rc;
}

/* ---- defaults and sources ----------------------------------------------------------------- */

static void test_defaults(void **state)
{
    loaded l;
    assert_int_equal(load(&l, NULL), HK_OK);
    hk_config *c = &l.cfg;
    assert_int_equal(l.help, 0);
    assert_int_equal(l.nrest, 0);
    assert_int_equal(c->port, 8013);
    assert_string_equal(c->host, "0.0.0.0");
    assert_string_equal(c->base_url, "");
    assert_string_equal(c->node_env, "production");
    assert_int_equal(c->max_body_bytes, 1048576);
    assert_int_equal(c->max_connections, 16384);
    assert_int_equal(c->shutdown_timeout_ms, 10000);
    assert_string_equal(c->metrics_key, "");
    assert_string_equal(c->swagger_ui_dir, "");
    assert_int_equal(c->ingest_rate_limit, 0);
    assert_string_equal(c->db_path, "./hookd.db");
    assert_string_equal(c->sqlite_sync, "full");
    assert_string_equal(c->pg_url, "");
    assert_int_equal(c->pg_pool, 4);
    assert_string_equal(c->encryption_key, "");
    assert_int_equal(c->has_enc_key, 0);
    assert_string_equal(c->bootstrap_key, "");
    assert_string_equal(c->bootstrap_org, "org_default");
    assert_string_equal(c->redis_url, "");
    assert_string_equal(c->redis_prefix, "hookd:");
    assert_int_equal(c->sweep_interval_ms, 30000);
    assert_string_equal(c->node_id, "");
    assert_int_equal(c->lease_ms, 30000);
    assert_int_equal(c->poll_interval_ms, 1000);
    assert_int_equal(c->queue_window, 50000);
    assert_int_equal(c->http_timeout_ms, 10000);
    assert_int_equal(c->response_body_max, 8192);
    assert_string_equal(c->retry_schedule_str, "5s,5m,30m,2h,5h,10h");
    assert_int_equal(c->retry_schedule_len, 6);
    const int64_t sched[] = {5000, 300000, 1800000, 7200000, 18000000, 36000000};
    for (int i = 0; i < 6; i++) assert_int_equal(c->retry_schedule[i], sched[i]);
    assert_true(c->retry_jitter == 0.2);
    assert_int_equal(c->disable_after, 10);
    assert_int_equal(c->endpoint_concurrency, 16);
    assert_int_equal(c->max_inflight, 1024);
    assert_string_equal(c->org_max_inflight_str, "auto");
    assert_int_equal(c->org_max_inflight, 768);
    assert_string_equal(c->allow_networks_str, "");
    assert_int_equal(c->allow_networks_len, 0);
    assert_int_equal(c->https_only, 0);
    assert_int_equal(c->tls_insecure, 0);
    assert_string_equal(c->node_tls_reject, "");
    assert_string_equal(c->ca_file, "");
    assert_string_equal(c->user_agent, "hookd/" HK_VERSION);
    assert_string_equal(c->nats_url, "");
    assert_string_equal(c->nats_subjects,
                        "kumomta.event,kumomta.event.*,tracking.*,webhook.triggered");
    assert_string_equal(c->nats_stream, "");
    assert_string_equal(c->nats_durable, "hookd");
    assert_string_equal(c->log_format, "text");
    assert_string_equal(c->log_level, "info");
    hk_config_free(c);
    assert_null(c->host); /* free clears the struct */
    hk_config_free(c);    /* and a second free is harmless */
}

static void test_precedence(void **state)
{
    write_env("# a comment\n"
              "export PORT=1111\n"
              "HOOKD_HOST=\"10.0.0.1\"\n"
              "HOOKD_DB='/tmp/from file.db'\n"
              "HOOKD_LOG_LEVEL=debug # trailing comment\n"
              "OTHER_PROGRAM_VAR=whatever\n"
              "HOOKD_RETRY_JITTER=0.5\n");
    loaded l;
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.port, 1111);
    assert_string_equal(l.cfg.host, "10.0.0.1");
    assert_string_equal(l.cfg.db_path, "/tmp/from file.db");
    assert_string_equal(l.cfg.log_level, "debug");
    assert_true(l.cfg.retry_jitter == 0.5);
    hk_config_free(&l.cfg);

    setenv("PORT", "2222", 1);
    setenv("HOOKD_HOST", "127.0.0.1", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.port, 2222);
    assert_string_equal(l.cfg.host, "127.0.0.1");
    assert_string_equal(l.cfg.db_path, "/tmp/from file.db");
    hk_config_free(&l.cfg);

    assert_int_equal(load(&l, "--port", "3333", "--db=/x.db", "--retry-jitter", "0", NULL), HK_OK);
    assert_int_equal(l.cfg.port, 3333);
    assert_string_equal(l.cfg.host, "127.0.0.1");
    assert_string_equal(l.cfg.db_path, "/x.db");
    assert_true(l.cfg.retry_jitter == 0.0);
    assert_int_equal(l.nrest, 0);
    hk_config_free(&l.cfg);

    /* the last of repeated flags wins */
    assert_int_equal(load(&l, "--port=1", "--port=2", NULL), HK_OK);
    assert_int_equal(l.cfg.port, 2);
    hk_config_free(&l.cfg);

    /* an empty environment value is the empty string for text, an error for numbers */
    setenv("BASE_URL", "", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_string_equal(l.cfg.base_url, "");
    hk_config_free(&l.cfg);
    setenv("PORT", "", 1);
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    assert_string_equal(l.err, "PORT (--port): must be an integer between 1 and 65535, got \"\" "
                               "(from the environment)");
    hk_config_free(&l.cfg);
}

static void test_dotenv_default_path_and_missing(void **state)
{
    /* NULL path = ./.env in the working directory */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    write_env("HOOKD_NODE_ID=node-a\n");
    loaded l;
    memset(&l, 0, sizeof l);
    char *argv[] = {"hookd", NULL};
    assert_int_equal(
        hk_config_load(&l.cfg, 1, argv, NULL, l.rest, &l.nrest, &l.help, l.err, sizeof l.err),
        HK_OK);
    assert_string_equal(l.cfg.node_id, "node-a");
    hk_config_free(&l.cfg);
    unlink(envpath);
    assert_int_equal(
        hk_config_load(&l.cfg, 1, argv, NULL, l.rest, &l.nrest, &l.help, l.err, sizeof l.err),
        HK_OK); /* no .env: fine */
    assert_string_equal(l.cfg.node_id, "");
    hk_config_free(&l.cfg);
    assert_int_equal(chdir(cwd), 0);

    /* a .env that cannot be read is an error */
    char dir[320];
    snprintf(dir, sizeof dir, "%s/dir", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(
        hk_config_load(&l.cfg, 1, argv, dir, l.rest, &l.nrest, &l.help, l.err, sizeof l.err),
        HK_EINVAL);
    assert_non_null(strstr(l.err, "not a regular file"));
    hk_config_free(&l.cfg);

    /* a malformed .env names the line */
    write_env("PORT=1\nthis is not an assignment\n");
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    assert_non_null(strstr(l.err, "line 2"));
    assert_non_null(strstr(l.err, envpath));
    hk_config_free(&l.cfg);

    /* a bad value from .env says so */
    write_env("HOOKD_PG_POOL=100\n");
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    assert_string_equal(l.err, "HOOKD_PG_POOL (--pg-pool): must be an integer between 1 and 64, "
                               "got \"100\" (from the .env file)");
    hk_config_free(&l.cfg);
    /* ... unless the environment overrides it: only the effective value is checked */
    setenv("HOOKD_PG_POOL", "8", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.pg_pool, 8);
    hk_config_free(&l.cfg);
}

/* ---- value kinds ---------------------------------------------------------------------------- */

static void test_bool_forms(void **state)
{
    static const struct {
        const char *v;
        int want;
    } forms[] = {{"1", 1},   {"0", 0},  {"true", 1}, {"false", 0}, {"yes", 1},
                 {"no", 0},  {"on", 1}, {"off", 0},  {"TRUE", 1},  {"False", 0},
                 {"YeS", 1}, {"NO", 0}, {"On", 1},   {"OFF", 0}};
    loaded l;
    for (size_t i = 0; i < HK_ARRAY_LEN(forms); i++) {
        setenv("HOOKD_HTTPS_ONLY", forms[i].v, 1);
        assert_int_equal(load(&l, NULL), HK_OK);
        assert_int_equal(l.cfg.https_only, forms[i].want);
        hk_config_free(&l.cfg);
    }
    setenv("HOOKD_HTTPS_ONLY", "0", 1);
    assert_int_equal(load(&l, "--https-only", "serve", NULL), HK_OK); /* alone: 1, no value eaten */
    assert_int_equal(l.cfg.https_only, 1);
    assert_int_equal(l.nrest, 1);
    assert_int_equal(l.rest[0], 2);
    hk_config_free(&l.cfg);
    setenv("HOOKD_HTTPS_ONLY", "1", 1);
    assert_int_equal(load(&l, "--https-only=off", NULL), HK_OK);
    assert_int_equal(l.cfg.https_only, 0);
    hk_config_free(&l.cfg);
    for (const char *const *bad = (const char *const[]){"", "2", "y", "maybe", " 1", NULL}; *bad;
         bad++) {
        setenv("HOOKD_TLS_INSECURE", *bad, 1);
        assert_int_equal(load(&l, NULL), HK_EINVAL);
        assert_non_null(strstr(l.err, "HOOKD_TLS_INSECURE (--tls-insecure): must be one of "
                                      "1/0/true/false/yes/no/on/off"));
        hk_config_free(&l.cfg);
    }
}

static void test_errors_name_the_option(void **state)
{
    char cafile_missing[320];
    snprintf(cafile_missing, sizeof cafile_missing, "%s/missing.pem", tmpdir);
    static char big_ua[300];
    memset(big_ua, 'u', 257);
    big_ua[257] = '\0';
    const struct {
        const char *env, *flag, *value, *needle;
    } cases[] = {
        {"PORT", "port", "0", "must be an integer between 1 and 65535, got \"0\""},
        {"PORT", "port", "70000", "between 1 and 65535"},
        {"PORT", "port", "80a", "got \"80a\""},
        {"PORT", "port", "+80", "got \"+80\""},
        {"PORT", "port", " 80", "got \" 80\""},
        {"HOOKD_HOST", "host", "", "must be a host name or an IP address"},
        {"HOOKD_HOST", "host", "a b", "must be a host name"},
        {"BASE_URL", "base-url", "http://x\n",
         "must not contain control characters, got "
         "\"http://x\\x0a\""},
        {"NODE_ENV", "node-env", "a\tb", "control characters"},
        {"HOOKD_MAX_BODY_BYTES", "max-body-bytes", "1023", "between 1024 and 67108864"},
        {"HOOKD_MAX_CONNECTIONS", "max-connections", "15", "between 16 and 1000000"},
        {"HOOKD_SHUTDOWN_TIMEOUT_MS", "shutdown-timeout-ms", "-1", "between 0 and 600000"},
        {"HOOKD_METRICS_KEY", "metrics-key", "a\x01",
         "control characters, got a value of 2 "
         "characters (not shown: secret)"},
        {"HOOKD_SWAGGER_UI_DIR", "swagger-ui-dir", "/nonexistent/dir", "cannot use the directory"},
        {"HOOKD_SWAGGER_UI_DIR", "swagger-ui-dir", "/dev/null", "is not a directory"},
        {"HOOKD_INGEST_RATE_LIMIT", "ingest-rate-limit", "10000001", "between 0 and 10000000"},
        {"HOOKD_DB", "db", "", "must not be empty"},
        {"HOOKD_SQLITE_SYNC", "sqlite-sync", "off", "must be one of full, normal, got \"off\""},
        {"PG_URL", "pg-url", "postgres://u:pw\r@h", "not shown: secret"},
        {"HOOKD_PG_POOL", "pg-pool", "65", "between 1 and 64"},
        {"WEBHOOK_ENCRYPTION_KEY", "webhook-encryption-key", "nothex",
         "must be empty or exactly 64 hex characters (32 bytes), got a value of 6 characters"},
        {"HOOKD_BOOTSTRAP_KEY", "bootstrap-key", "short", "16 to 128 characters of [A-Za-z0-9_-]"},
        {"HOOKD_BOOTSTRAP_KEY", "bootstrap-key", "has space 0123456789", "not shown: secret"},
        {"HOOKD_BOOTSTRAP_ORG", "bootstrap-org", "", "1 to 128 characters of [A-Za-z0-9_.:-]"},
        {"HOOKD_BOOTSTRAP_ORG", "bootstrap-org", "org/a", "got \"org/a\""},
        {"REDIS_URL", "redis-url", "redis://\x7f", "not shown: secret"},
        {"HOOKD_REDIS_PREFIX", "redis-prefix", "a b", "at most 128 bytes without spaces"},
        {"HOOKD_SWEEP_INTERVAL_MS", "sweep-interval-ms", "99", "between 100 and 3600000"},
        {"HOOKD_NODE_ID", "node-id", "node 1", "at most 64 characters of [A-Za-z0-9_.:-]"},
        {"HOOKD_LEASE_MS", "lease-ms", "999", "between 1000 and 3600000"},
        {"HOOKD_POLL_INTERVAL_MS", "poll-interval-ms", "60001", "between 10 and 60000"},
        {"HOOKD_QUEUE_WINDOW", "queue-window", "99", "between 100 and 10000000"},
        {"HOOKD_HTTP_TIMEOUT_MS", "http-timeout-ms", "abc",
         "must be an integer between 100 and 600000, got \"abc\""},
        {"HOOKD_RESPONSE_BODY_MAX", "response-body-max", "1048577", "between 0 and 1048576"},
        {"HOOKD_RETRY_SCHEDULE", "retry-schedule", "5s,soon", "soon"},
        {"HOOKD_RETRY_SCHEDULE", "retry-schedule", "", "got \"\""},
        {"HOOKD_RETRY_JITTER", "retry-jitter", "2", "must be a number between 0 and 1, got \"2\""},
        {"HOOKD_RETRY_JITTER", "retry-jitter", "-0.1", "between 0 and 1"},
        {"HOOKD_RETRY_JITTER", "retry-jitter", "nan", "between 0 and 1"},
        {"HOOKD_RETRY_JITTER", "retry-jitter", "1e-1", "between 0 and 1"},
        {"HOOKD_RETRY_JITTER", "retry-jitter", ".", "between 0 and 1"},
        {"HOOKD_DISABLE_AFTER", "disable-after", "1000001", "between 0 and 1000000"},
        {"HOOKD_ENDPOINT_CONCURRENCY", "endpoint-concurrency", "0", "between 1 and 10000"},
        {"HOOKD_MAX_INFLIGHT", "max-inflight", "100001", "between 1 and 100000"},
        {"HOOKD_ORG_MAX_INFLIGHT", "org-max-inflight", "-1",
         "must be auto, 0 (no cap) or an integer between 1 and 100000, got \"-1\""},
        {"HOOKD_ORG_MAX_INFLIGHT", "org-max-inflight", "100001", "between 1 and 100000"},
        {"HOOKD_ORG_MAX_INFLIGHT", "org-max-inflight", "", "got \"\""},
        {"HOOKD_ORG_MAX_INFLIGHT", "org-max-inflight", "half", "must be auto, 0 (no cap)"},
        {"HOOKD_ALLOW_NETWORKS", "allow-networks", "10.0.0.0/99",
         "bad network \"10.0.0.0/99\": prefix must be 0..32"},
        {"HOOKD_HTTPS_ONLY", "https-only", "2", "1/0/true/false/yes/no/on/off"},
        {"HOOKD_TLS_INSECURE", "tls-insecure", "", "1/0/true/false/yes/no/on/off"},
        {"NODE_TLS_REJECT_UNAUTHORIZED", "node-tls-reject-unauthorized", "false",
         "must be one of \"\" (empty), 0, 1, got \"false\""},
        {"HOOKD_CA_FILE", "ca-file", cafile_missing, "cannot read the file: No such file"},
        {"HOOKD_CA_FILE", "ca-file", "/", "is not a regular file"},
        {"HOOKD_USER_AGENT", "user-agent", "x\r\ny: z", "control characters"},
        {"HOOKD_USER_AGENT", "user-agent", big_ua, "at most 256 bytes"},
        {"NATS_URL", "nats-url", "nats://\n", "not shown: secret"},
        {"HOOKD_NATS_SUBJECTS", "nats-subjects", "a,,b", "comma-separated list of NATS subjects"},
        {"HOOKD_NATS_SUBJECTS", "nats-subjects", "", "comma-separated list"},
        {"HOOKD_NATS_SUBJECTS", "nats-subjects", "a b", "comma-separated list"},
        {"HOOKD_NATS_STREAM", "nats-stream", "a.b", "[A-Za-z0-9_-]"},
        {"HOOKD_NATS_DURABLE", "nats-durable", "", "1 to 256 characters of [A-Za-z0-9_-]"},
        {"HOOKD_LOG_FORMAT", "log-format", "xml", "must be one of text, json, got \"xml\""},
        {"HOOKD_LOG_LEVEL", "log-level", "verbose",
         "must be one of debug, info, warn, error, got \"verbose\""},
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
        char prefix[128], flagarg[512];
        snprintf(prefix, sizeof prefix, "%s (--%s): ", cases[i].env, cases[i].flag);
        /* from the environment */
        setenv(cases[i].env, cases[i].value, 1);
        loaded l;
        assert_int_equal(load(&l, NULL), HK_EINVAL);
        if (strncmp(l.err, prefix, strlen(prefix)) != 0 || !strstr(l.err, cases[i].needle))
            fail_msg("case %zu (%s=%s): got \"%s\"", i, cases[i].env, cases[i].value, l.err);
        assert_non_null(strstr(l.err, "(from the environment)"));
        assert_null(l.cfg.host); /* nothing left allocated after an error */
        hk_config_free(&l.cfg);
        unsetenv(cases[i].env);
        /* and from a flag */
        snprintf(flagarg, sizeof flagarg, "--%s=%s", cases[i].flag, cases[i].value);
        assert_int_equal(load(&l, flagarg, NULL), HK_EINVAL);
        if (strncmp(l.err, prefix, strlen(prefix)) != 0 || !strstr(l.err, cases[i].needle))
            fail_msg("case %zu (%s): got \"%s\"", i, flagarg, l.err);
        assert_non_null(strstr(l.err, "(from the command line)"));
        hk_config_free(&l.cfg);
    }
}

static void test_secrets_never_echoed(void **state)
{
    loaded l;
    setenv("WEBHOOK_ENCRYPTION_KEY",
           "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    assert_null(strstr(l.err, "zz1122"));
    assert_non_null(strstr(l.err, "got a value of 64 characters"));
    hk_config_free(&l.cfg);
    unsetenv("WEBHOOK_ENCRYPTION_KEY");
    setenv("HOOKD_BOOTSTRAP_KEY", "secret!secret!secret!", 1);
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    assert_null(strstr(l.err, "secret!"));
    hk_config_free(&l.cfg);
}

static void test_flag_needs_value(void **state)
{
    loaded l;
    assert_int_equal(load(&l, "--port", NULL), HK_EINVAL);
    assert_string_equal(l.err, "PORT (--port): the flag needs a value (--port=VALUE)");
    hk_config_free(&l.cfg);
    /* "--flag=" is an explicit empty value */
    assert_int_equal(load(&l, "--base-url=", "--node-env", "", NULL), HK_OK);
    assert_string_equal(l.cfg.base_url, "");
    assert_string_equal(l.cfg.node_env, "");
    hk_config_free(&l.cfg);
}

static void test_lease_cross_check(void **state)
{
    loaded l;
    /* 15000 is not greater than 10000 + 5000 */
    assert_int_equal(load(&l, "--lease-ms=15000", NULL), HK_EINVAL);
    assert_non_null(strstr(l.err, "HOOKD_LEASE_MS (--lease-ms)"));
    assert_non_null(strstr(l.err, "HOOKD_HTTP_TIMEOUT_MS (--http-timeout-ms)"));
    assert_non_null(strstr(l.err, "got 15000 and 10000"));
    hk_config_free(&l.cfg);
    assert_int_equal(load(&l, "--lease-ms=15001", NULL), HK_OK);
    assert_int_equal(l.cfg.lease_ms, 15001);
    hk_config_free(&l.cfg);
    setenv("HOOKD_HTTP_TIMEOUT_MS", "30000", 1);
    assert_int_equal(load(&l, NULL), HK_EINVAL); /* default lease 30000 < 35000 */
    assert_non_null(strstr(l.err, "got 30000 and 30000"));
    hk_config_free(&l.cfg);
    assert_int_equal(load(&l, "--lease-ms", "60000", NULL), HK_OK);
    hk_config_free(&l.cfg);
}

/* HOOKD_ORG_MAX_INFLIGHT resolves against HOOKD_MAX_INFLIGHT: auto = three quarters (at least
 * 1), 0 = no cap (= max_inflight), a number above max_inflight = max_inflight. */
static void test_org_max_inflight(void **state)
{
    static const struct {
        const char *max, *org;
        int want;
    } cases[] = {
        {"1024", "auto", 768}, {"64", "AUTO", 48}, {"1", "auto", 1},     {"3", "auto", 2},
        {"64", "0", 64},       {"64", "16", 16},   {"64", "100000", 64}, {"64", "1", 1},
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(cases); i++) {
        char max[64], org[64];
        snprintf(max, sizeof max, "--max-inflight=%s", cases[i].max);
        snprintf(org, sizeof org, "--org-max-inflight=%s", cases[i].org);
        loaded l;
        assert_int_equal(load(&l, max, org, NULL), HK_OK);
        if (l.cfg.org_max_inflight != cases[i].want)
            fail_msg("max %s, org %s: got %d, want %d", cases[i].max, cases[i].org,
                     l.cfg.org_max_inflight, cases[i].want);
        hk_config_free(&l.cfg);
    }
}

static void test_rest_and_double_dash(void **state)
{
    char *argv[] = {"hookd", "--no-such-option", "apikey", "create", "--org",
                    "org_a", "--port=9000",      "--name", "ci",     "-x",
                    "--",    "--port",           "1",      NULL};
    loaded l;
    assert_int_equal(load_argv(&l, 13, argv), HK_OK);
    assert_int_equal(l.cfg.port, 9000); /* config flags count anywhere before "--" */
    const int want[] = {1, 2, 3, 4, 5, 7, 8, 9, 11, 12};
    assert_int_equal(l.nrest, (int)HK_ARRAY_LEN(want));
    for (int i = 0; i < l.nrest; i++) assert_int_equal(l.rest[i], want[i]);
    hk_config_free(&l.cfg);

    char *argv2[] = {"hookd", NULL};
    assert_int_equal(load_argv(&l, 1, argv2), HK_OK);
    assert_int_equal(l.nrest, 0);
    hk_config_free(&l.cfg);
}

static void test_help(void **state)
{
    loaded l;
    setenv("PORT", "not a port", 1); /* --help works whatever the other sources say */
    write_env("garbage line\n");
    assert_int_equal(load(&l, "serve", "--help", "--port=x", NULL), HK_OK);
    assert_int_equal(l.help, 1);
    assert_int_equal(l.nrest, 0);
    assert_int_equal(l.cfg.port, 8013);
    hk_config_free(&l.cfg);
    assert_int_equal(load(&l, "-h", NULL), HK_OK);
    assert_int_equal(l.help, 1);
    hk_config_free(&l.cfg);
    /* after "--" it is just an argument */
    unsetenv("PORT");
    unlink(envpath);
    assert_int_equal(load(&l, "--", "--help", NULL), HK_OK);
    assert_int_equal(l.help, 0);
    assert_int_equal(l.nrest, 1);
    assert_int_equal(l.rest[0], 2);
    hk_config_free(&l.cfg);
}

static void test_help_table(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    hk_config_print_help(f);
    fclose(f);
    assert_non_null(strstr(text, "Sources: defaults < .env < environment < --flags"));
    for (const char *sec = "Server:\0Store and API keys:\0Queue and cluster:\0Delivery:\0"
                           "NATS ingest:\0Logs:\0";
         *sec; sec += strlen(sec) + 1)
        assert_non_null(strstr(text, sec));
    /* every option has a line "  ENV  --flag  default" with the flag derived from the name */
    for (size_t i = 0; i < HK_ARRAY_LEN(all_env); i++) {
        const char *env = all_env[i];
        char flag[64] = "--";
        const char *base = strncmp(env, "HOOKD_", 6) == 0 ? env + 6 : env;
        size_t k = 2;
        for (; *base; base++)
            flag[k++] = *base == '_'                     ? '-'
                        : (*base >= 'A' && *base <= 'Z') ? (char)(*base + 32)
                                                         : *base;
        flag[k] = '\0';
        char line_start[80];
        snprintf(line_start, sizeof line_start, "\n  %s ", env);
        const char *p = strstr(text, line_start);
        if (!p) fail_msg("no help line for %s", env);
        const char *eol = strchr(p + 1, '\n');
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(eol - p - 1), p + 1);
        char want_flag[70];
        snprintf(want_flag, sizeof want_flag, " %s ", flag);
        if (!strstr(line, want_flag)) fail_msg("help line of %s lacks %s: %s", env, flag, line);
    }
    assert_non_null(strstr(text, "--http-timeout-ms"));
    assert_non_null(strstr(text, "5s,5m,30m,2h,5h,10h"));
    assert_non_null(strstr(text, "./hookd.db"));
    assert_non_null(strstr(text, "hookd/" HK_VERSION));
    assert_non_null(strstr(text, "Integer, 1..65535."));
    assert_non_null(strstr(text, "One of:\n      full, normal.\n"));
    assert_non_null(strstr(text, "10.1.2.3/8 is refused, not masked"));
    /* no line wider than 100 columns except a long default */
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 100 && !strstr(p, "kumomta.event,")) fail_msg("long help line: %.*s", (int)n, p);
        p += n + (e ? 1 : 0);
    }
    free(text);
}

static void test_node_tls_reject(void **state)
{
    loaded l;
    setenv("NODE_TLS_REJECT_UNAUTHORIZED", "0", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.tls_insecure, 1);
    assert_string_equal(l.cfg.node_tls_reject, "0");
    hk_config_free(&l.cfg);
    setenv("NODE_TLS_REJECT_UNAUTHORIZED", "1", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.tls_insecure, 0);
    hk_config_free(&l.cfg);
    /* HOOKD_TLS_INSECURE alone also works, and "1" does not undo it */
    setenv("HOOKD_TLS_INSECURE", "yes", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.tls_insecure, 1);
    hk_config_free(&l.cfg);
    unsetenv("HOOKD_TLS_INSECURE");
    setenv("NODE_TLS_REJECT_UNAUTHORIZED", "", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.tls_insecure, 0);
    hk_config_free(&l.cfg);
}

static void test_encryption_key(void **state)
{
    loaded l;
    setenv("WEBHOOK_ENCRYPTION_KEY", KEY64, 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.has_enc_key, 1);
    const uint8_t want[32] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                              0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                              0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    assert_memory_equal(l.cfg.enc_key, want, 32);
    assert_string_equal(l.cfg.encryption_key, KEY64);
    hk_config_free(&l.cfg);
    /* 63 and 65 characters, a non-hex character */
    char buf[80];
    snprintf(buf, sizeof buf, "%.63s", KEY64);
    setenv("WEBHOOK_ENCRYPTION_KEY", buf, 1);
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    assert_non_null(strstr(l.err, "WEBHOOK_ENCRYPTION_KEY (--webhook-encryption-key)"));
    hk_config_free(&l.cfg);
    snprintf(buf, sizeof buf, "%s0", KEY64);
    setenv("WEBHOOK_ENCRYPTION_KEY", buf, 1);
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    hk_config_free(&l.cfg);
    snprintf(buf, sizeof buf, "g%.63s", KEY64 + 1);
    setenv("WEBHOOK_ENCRYPTION_KEY", buf, 1);
    assert_int_equal(load(&l, NULL), HK_EINVAL);
    hk_config_free(&l.cfg);
    /* empty: no key */
    setenv("WEBHOOK_ENCRYPTION_KEY", "", 1);
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_int_equal(l.cfg.has_enc_key, 0);
    hk_config_free(&l.cfg);
}

static void test_string_checks_pass(void **state)
{
    char ca[320];
    snprintf(ca, sizeof ca, "%s/ca.pem", tmpdir);
    FILE *f = fopen(ca, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\n", f);
    fclose(f);
    setenv("HOOKD_CA_FILE", ca, 1);
    setenv("HOOKD_SWAGGER_UI_DIR", tmpdir, 1);
    setenv("HOOKD_BOOTSTRAP_KEY", "file_key_0123456789", 1);
    setenv("HOOKD_BOOTSTRAP_ORG", "org.a:b-c_d", 1);
    setenv("HOOKD_NODE_ID", "", 1);
    setenv("HOOKD_SQLITE_SYNC", "NORMAL", 1);
    setenv("HOOKD_LOG_FORMAT", "JSON", 1);
    setenv("HOOKD_NATS_SUBJECTS", "a.b, c.* ,d", 1);
    setenv("HOOKD_NATS_STREAM", "EVENTS_1", 1);
    setenv("HOOKD_USER_AGENT", "my agent/1.0 (+https://x)", 1);
    setenv("HOOKD_RETRY_SCHEDULE", "300ms, 1s,2m", 1);
    setenv("HOOKD_ALLOW_NETWORKS", "127.0.0.0/8, ::1/128", 1);
    loaded l;
    assert_int_equal(load(&l, NULL), HK_OK);
    assert_string_equal(l.cfg.ca_file, ca);
    assert_string_equal(l.cfg.bootstrap_key, "file_key_0123456789");
    assert_string_equal(l.cfg.bootstrap_org, "org.a:b-c_d");
    assert_string_equal(l.cfg.sqlite_sync, "normal"); /* enum values stored as listed */
    assert_string_equal(l.cfg.log_format, "json");
    assert_string_equal(l.cfg.user_agent, "my agent/1.0 (+https://x)");
    assert_int_equal(l.cfg.retry_schedule_len, 3);
    assert_int_equal(l.cfg.retry_schedule[0], 300);
    assert_int_equal(l.cfg.retry_schedule[1], 1000);
    assert_int_equal(l.cfg.retry_schedule[2], 120000);
    assert_int_equal(l.cfg.allow_networks_len, 2);
    assert_int_equal(l.cfg.allow_networks[0].prefix, 104);
    assert_int_equal(l.cfg.allow_networks[1].prefix, 128);
    hk_config_free(&l.cfg);
    unlink(ca);
}

/* ---- CIDR lists ----------------------------------------------------------------------------- */

static void test_cidr(void **state)
{
    hk_cidr c[8];
    char err[256];
    uint8_t a[16];

    assert_int_equal(hk_cidr_list_parse("", c, 8, err, sizeof err), 0);
    assert_int_equal(hk_cidr_list_parse("  ", c, 8, err, sizeof err), 0);

    assert_int_equal(hk_cidr_list_parse("10.0.0.0/8, 192.168.1.5 ,::1/128,fd00::/8,2001:db8::1,"
                                        "0.0.0.0/0,::/0,::ffff:10.1.0.0/112",
                                        c, 8, err, sizeof err),
                     8);
    inet_pton(AF_INET6, "::ffff:10.0.0.0", a);
    assert_memory_equal(c[0].addr, a, 16);
    assert_int_equal(c[0].prefix, 104);
    inet_pton(AF_INET6, "::ffff:192.168.1.5", a);
    assert_memory_equal(c[1].addr, a, 16);
    assert_int_equal(c[1].prefix, 128);
    inet_pton(AF_INET6, "::1", a);
    assert_memory_equal(c[2].addr, a, 16);
    assert_int_equal(c[2].prefix, 128);
    inet_pton(AF_INET6, "fd00::", a);
    assert_memory_equal(c[3].addr, a, 16);
    assert_int_equal(c[3].prefix, 8);
    inet_pton(AF_INET6, "2001:db8::1", a);
    assert_memory_equal(c[4].addr, a, 16);
    assert_int_equal(c[4].prefix, 128);
    inet_pton(AF_INET6, "::ffff:0.0.0.0", a);
    assert_memory_equal(c[5].addr, a, 16);
    assert_int_equal(c[5].prefix, 96);
    memset(a, 0, 16);
    assert_memory_equal(c[6].addr, a, 16);
    assert_int_equal(c[6].prefix, 0);
    inet_pton(AF_INET6, "::ffff:10.1.0.0", a);
    assert_memory_equal(c[7].addr, a, 16);
    assert_int_equal(c[7].prefix, 112);

    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"10.0.0.0/33", "bad network \"10.0.0.0/33\": prefix must be 0..32"},
        {"::/129", "bad network \"::/129\": prefix must be 0..128"},
        {"10.0.0.1/8", "bad network \"10.0.0.1/8\": host bits are set"},
        {"fd00::1/8", "bad network \"fd00::1/8\": host bits are set"},
        {"10.0.0.0/", "prefix must be 0..32"},
        {"10.0.0.0/08", "prefix must be 0..32"},
        {"10.0.0.0/-1", "prefix must be 0..32"},
        {"10.0.0.0/8/8", "prefix must be 0..32"},
        {"10.0.0.0/ 8", "prefix must be 0..32"},
        {"10.0.0", "bad network \"10.0.0\": not an IPv4 or IPv6 address"},
        {"010.0.0.0", "not an IPv4 or IPv6 address"},
        {"10.0.0.256", "not an IPv4 or IPv6 address"},
        {"fe80::1%eth0", "not an IPv4 or IPv6 address"},
        {"example.com", "not an IPv4 or IPv6 address"},
        {"/8", "not an IPv4 or IPv6 address"},
        {"1:2:3:4:5:6:7:8:9", "not an IPv4 or IPv6 address"},
        {"10.0.0.0/8,", "bad network \"\": empty item"},
        {"10.0.0.0/8,,::1", "empty item"},
        {",10.0.0.0/8", "empty item"},
        {"10.0.0.0/8, 127.0.0.1 2", "bad network \"127.0.0.1 2\""},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "not an IPv4 or IPv6 address"},
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(hk_cidr_list_parse(bad[i].in, c, 8, err, sizeof err), HK_EINVAL);
        if (!strstr(err, bad[i].msg)) fail_msg("%s: got \"%s\"", bad[i].in, err);
    }
    /* too many */
    assert_int_equal(hk_cidr_list_parse("1.0.0.0/8,2.0.0.0/8,3.0.0.0/8", c, 2, err, sizeof err),
                     HK_EINVAL);
    assert_string_equal(err, "at most 2 networks may be listed");
}

/* ---- .env parser ---------------------------------------------------------------------------- */

typedef struct kv_list {
    char out[2048];
    size_t len;
} kv_list;

static void collect(const char *name, const char *value, void *arg)
{
    kv_list *k = arg;
    int n = snprintf(k->out + k->len, sizeof k->out - k->len, "[%s]=[%s]\n", name, value);
    if (n > 0) k->len += (size_t)n;
}

static void test_dotenv_parse(void **state)
{
    const char *text = "\xEF\xBB\xBF# comment\n"
                       "\n"
                       "   \t\n"
                       "A=1\n"
                       "export B=two words  \n"
                       "  C = spaced\r\n"
                       "D='single #not comment \\n literal'\n"
                       "E=\"dq \\\"x\\\" \\\\ \\n end\\q\" # comment\n"
                       "F=\n"
                       "G=a#b\n"
                       "H=a #comment\n"
                       "I=''\n"
                       "export=notprefix\n"
                       "_J9=\"\"\n"
                       "K=x=y\n"
                       "L=last";
    kv_list k = {{0}, 0};
    char err[128];
    assert_int_equal(hk_dotenv_parse(text, strlen(text), collect, &k, err, sizeof err), HK_OK);
    assert_string_equal(k.out, "[A]=[1]\n"
                               "[B]=[two words]\n"
                               "[C]=[spaced]\n"
                               "[D]=[single #not comment \\n literal]\n"
                               "[E]=[dq \"x\" \\ \n end\\q]\n"
                               "[F]=[]\n"
                               "[G]=[a#b]\n"
                               "[H]=[a]\n"
                               "[I]=[]\n"
                               "[export]=[notprefix]\n"
                               "[_J9]=[]\n"
                               "[K]=[x=y]\n"
                               "[L]=[last]\n");

    static const struct {
        const char *in;
        const char *err;
    } bad[] = {
        {"A=1\nnot an assignment\n", "line 2: expected NAME=value"},
        {"1A=x", "line 1: expected NAME=value"},
        {"=x", "line 1: expected NAME=value"},
        {"A-B=x", "line 1: expected NAME=value"},
        {"A='open\n", "line 1: unterminated single quote"},
        {"\n\nA=\"open\\\"\n", "line 3: unterminated double quote"},
        {"A=\"x\\", "line 1: unterminated double quote"},
        {"A='x' y", "line 1: unexpected text after the closing quote"},
        {"A=\"x\"y", "line 1: unexpected text after the closing quote"},
        {"export A", "line 1: expected NAME=value"},
        {"export", "line 1: expected NAME=value"},
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        k.len = 0;
        k.out[0] = '\0';
        assert_int_equal(
            hk_dotenv_parse(bad[i].in, strlen(bad[i].in), collect, &k, err, sizeof err), HK_EINVAL);
        if (!strstr(err, bad[i].err)) fail_msg("%s: got \"%s\"", bad[i].in, err);
    }
    /* a NUL byte inside a line is refused; the length given is respected */
    const char nul[] = "A=x\0y\nB=2";
    assert_int_equal(hk_dotenv_parse(nul, sizeof nul - 1, collect, &k, err, sizeof err), HK_EINVAL);
    assert_non_null(strstr(err, "line 1: contains a NUL byte"));
    k.len = 0;
    assert_int_equal(hk_dotenv_parse("A=1\nB=2", 3, collect, &k, err, sizeof err), HK_OK);
    assert_string_equal(k.out, "[A]=[1]\n");
    assert_int_equal(hk_dotenv_parse(NULL, 0, collect, &k, err, sizeof err), HK_OK);
    assert_int_equal(hk_dotenv_parse("", 0, collect, &k, err, sizeof err), HK_OK);
}

static void ignore(const char *name, const char *value, void *arg)
{
    (void)name;
    (void)value;
    ++*(int *)arg;
}

/* Random and mutated inputs: never crashes (ASan/UBSan watch), always 0 or HK_EINVAL. */
static void test_dotenv_random(void **state)
{
    static const char alphabet[] = "AB_=#'\"\\ \t\r\nexport0x\xff\x00";
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char err[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(seed % 64);
        char *buf = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            buf[i] = alphabet[seed % (sizeof alphabet - 1)];
        }
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        int calls = 0;
        int rc = hk_dotenv_parse(buf, n, ignore, &calls, err, round % 7 ? sizeof err : 0);
        assert_true(rc == HK_OK || rc == HK_EINVAL);
        free(buf);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_precedence),
        T(test_dotenv_default_path_and_missing),
        T(test_bool_forms),
        T(test_errors_name_the_option),
        T(test_secrets_never_echoed),
        T(test_flag_needs_value),
        T(test_lease_cross_check),
        T(test_org_max_inflight),
        T(test_rest_and_double_dash),
        T(test_help),
        T(test_help_table),
        T(test_node_tls_reject),
        T(test_encryption_key),
        T(test_string_checks_pass),
        T(test_cidr),
        T(test_dotenv_parse),
        T(test_dotenv_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
