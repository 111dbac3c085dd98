/*
 * ui.c: the dashboard (SPEC §7 "Dashboard", issue 18): GET /api/webhook/ui/ serves index.html
 * and GET /api/webhook/ui/<file>, /api/webhook/ui/vendor/<file> the files of the allow-list
 * `files`, nothing else (a name is looked up, never joined to a path: no traversal). The
 * dashboard's own files (HTML, JS modules, CSS: dashboard/ in the repository) come from
 * HOOKD_UI_DIR if set, else the first of <dir of the binary>/../dashboard (a build in the source
 * tree), <dir of the binary>/../share/hookd/dashboard (installed) and ./dashboard that holds
 * index.html. The libraries (npm packages preact, htm, uplot) come from <that dir>/vendor/ (the
 * install rules copy them there), else from <that dir>/../node_modules/<package>/ (the source
 * tree). A file is read once and kept in memory, with an ETag (a hash of its bytes): every
 * answer is `Cache-Control: no-cache`, so a browser revalidates and gets 304 while the file is
 * unchanged, and an upgrade is seen at once.
 *
 * Every answer carries a strict Content-Security-Policy: scripts and styles from this origin only
 * (no inline script, no eval, no inline style attribute), fetch to this origin only, and
 * frame-ancestors from HOOKD_PORTAL_ORIGINS ('none' when empty): only the operator's site may
 * embed the portal. GET /api/webhook/v1/whoami tells the dashboard what its credential is (an
 * organization's key or a portal session, its scope, its webhooks) so that it shows only what
 * the credential may do; the API refuses the rest anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/crypto.h"

#define UI_PREFIX      "/api/webhook/ui"
#define FILE_MAX       (4 * 1024 * 1024)
#define CTYPE_JS       "text/javascript; charset=utf-8"
#define CTYPE_CSS      "text/css; charset=utf-8"
#define CTYPE_HTML     "text/html; charset=utf-8"
#define CSP_MAX        2048
#define UI_HEADERS_MAX (CSP_MAX + 512)

typedef struct ui_file {
    const char *name; /* as in the URL after /api/webhook/ui/ */
    const char *pkg;  /* npm package (a library), or NULL: the dashboard's own file */
    const char *path; /* inside the package, or inside the dashboard's directory */
    const char *ctype;
} ui_file;

static const ui_file files[] = {
    {"index.html", NULL, "index.html", CTYPE_HTML},
    {"app.js", NULL, "app.js", CTYPE_JS},
    {"api.js", NULL, "api.js", CTYPE_JS},
    {"views.js", NULL, "views.js", CTYPE_JS},
    {"charts.js", NULL, "charts.js", CTYPE_JS},
    {"style.css", NULL, "style.css", CTYPE_CSS},
    {"vendor/preact.mjs", "preact", "dist/preact.mjs", CTYPE_JS},
    {"vendor/htm.mjs", "htm", "dist/htm.mjs", CTYPE_JS},
    {"vendor/uplot.js", "uplot", "dist/uPlot.iife.min.js", CTYPE_JS},
    {"vendor/uplot.css", "uplot", "dist/uPlot.min.css", CTYPE_CSS},
};

static struct {
    char *data;
    size_t len;
    char etag[24];
} cache[HK_ARRAY_LEN(files)];

static int has_index(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/index.html", dir);
    return n > 0 && (size_t)n < sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of the dashboard's own files, or NULL. Once found it is kept. */
static const char *ui_dir(const hk_config *cfg)
{
    static char found[PATH_MAX];
    if (found[0]) return found;
    if (cfg->ui_dir && cfg->ui_dir[0]) {
        if (!has_index(cfg->ui_dir) || !realpath(cfg->ui_dir, found)) found[0] = '\0';
        return found[0] ? found : NULL;
    }
    char exe[PATH_MAX], cand[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            static const char *const rel[] = {"../dashboard", "../share/hookd/dashboard"};
            for (size_t i = 0; i < HK_ARRAY_LEN(rel); i++) {
                int m = snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]);
                if (m > 0 && (size_t)m < sizeof cand && has_index(cand) && realpath(cand, found))
                    return found;
            }
        }
    }
    if (has_index("dashboard") && realpath("dashboard", found)) return found;
    found[0] = '\0';
    return NULL;
}

/* Reads a regular file of at most FILE_MAX bytes whole; NULL on any failure. */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *data = hk_malloc(size + 1);
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        free(data);
        return NULL;
    }
    *len = size;
    return data;
}

/* Loads files[i] into cache[i] (once); 0 when it is there. */
static int load(const hk_config *cfg, size_t i)
{
    if (cache[i].data) return 0;
    const char *dir = ui_dir(cfg);
    if (!dir) return -1;
    char path[PATH_MAX];
    int n;
    if (!files[i].pkg) {
        n = snprintf(path, sizeof path, "%s/%s", dir, files[i].path);
        if (n > 0 && (size_t)n < sizeof path) cache[i].data = slurp(path, &cache[i].len);
    } else {
        /* installed: <dir>/vendor/<name after vendor/>; source tree: the npm package */
        n = snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (n > 0 && (size_t)n < sizeof path) cache[i].data = slurp(path, &cache[i].len);
        if (!cache[i].data) {
            n = snprintf(path, sizeof path, "%s/../node_modules/%s/%s", dir, files[i].pkg,
                         files[i].path);
            if (n > 0 && (size_t)n < sizeof path) cache[i].data = slurp(path, &cache[i].len);
        }
    }
    if (!cache[i].data) return -1;
    uint8_t h[32];
    hk_sha256(cache[i].data, cache[i].len, h);
    snprintf(cache[i].etag, sizeof cache[i].etag, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
    return 0;
}

/* The headers of every dashboard answer: the CSP (frame-ancestors from HOOKD_PORTAL_ORIGINS,
 * whose words config.c checked), built once. */
static const char *csp_headers(const hk_config *cfg)
{
    static char hdr[UI_HEADERS_MAX];
    if (hdr[0]) return hdr;
    char anc[CSP_MAX] = "";
    size_t al = 0;
    const char *p = cfg->portal_origins ? cfg->portal_origins : "";
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != ',') p++;
        size_t len = (size_t)(p - w);
        if (len && al + len + 2 < sizeof anc) {
            memcpy(anc + al, " ", 1);
            memcpy(anc + al + 1, w, len);
            al += len + 1;
            anc[al] = '\0';
        }
    }
    snprintf(hdr, sizeof hdr,
             "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
             "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
             "frame-ancestors%s\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "Cache-Control: no-cache\r\n",
             al ? anc : " 'none'");
    return hdr;
}

/* Answers files[i], or 304 when the client has it (If-None-Match). */
static void serve(hk_call *c, size_t i)
{
    const hk_config *cfg = c->api->cfg;
    if (load(cfg, i) != 0) {
        hk_call_error(c, 404, "not_found", "the dashboard's files are not installed",
                      "hookd did not find the dashboard (index.html) or the npm package it uses.",
                      "Run scripts/setup.sh in the source tree, install hookd with its share/ "
                      "directory, or set HOOKD_UI_DIR to the directory holding index.html.");
        return;
    }
    char extra[UI_HEADERS_MAX + 64];
    snprintf(extra, sizeof extra, "%sETag: %s\r\n", csp_headers(cfg), cache[i].etag);
    const char *inm = hk_http_header_get(c->http, "if-none-match");
    if (inm && strstr(inm, cache[i].etag)) {
        hk_call_raw_static(c, 304, NULL, extra, "", 0);
        return;
    }
    hk_call_raw_static(c, 200, files[i].ctype, extra, cache[i].data, cache[i].len);
}

static void serve_name(hk_call *c, const char *name)
{
    for (size_t i = 0; i < HK_ARRAY_LEN(files); i++)
        if (strcmp(files[i].name, name) == 0) {
            serve(c, i);
            return;
        }
    hk_call_error(c, 404, "not_found", "no such file",
                  "Only the dashboard's own files are served under " UI_PREFIX "/.",
                  "Open " UI_PREFIX "/ for the dashboard.");
}

void hk_h_ui_index(hk_call *c)
{
    serve(c, 0);
}

void hk_h_ui_file(hk_call *c)
{
    serve_name(c, c->params[0]);
}

void hk_h_ui_vendor(hk_call *c)
{
    char name[HK_PARAM_MAX + 8];
    snprintf(name, sizeof name, "vendor/%s", c->params[0]);
    serve_name(c, name);
}

void hk_h_whoami(hk_call *c)
{
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "organizationId", c->org);
    hk_jw_kstr(&w, "kind", c->admin ? "admin" : c->session ? "session" : "key");
    hk_jw_kstr(&w, "scope", hk_scope_name(c->scope));
    hk_jw_key(&w, "webhookIds");
    if (c->webhook_ids) {
        hk_jw_arr_open(&w);
        const char *p = c->webhook_ids;
        while (*p) {
            while (*p == ' ') p++;
            const char *s = p;
            while (*p && *p != ' ') p++;
            if (p > s) {
                char id[HK_PARAM_MAX];
                size_t n = (size_t)(p - s) < sizeof id - 1 ? (size_t)(p - s) : sizeof id - 1;
                memcpy(id, s, n);
                id[n] = '\0';
                hk_jw_str(&w, id);
            }
        }
        hk_jw_arr_close(&w);
    } else {
        hk_jw_null(&w);
    }
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}
