/* web: see web.h. This file is the server: the listening socket, libmicrohttpd's thread pool,
 * who may ask what (token, Host, Origin, CSRF), routing, request bodies, the classification
 * threads, the model, the mel pictures kept for the page, and the thread that runs the hooks of
 * corrections. web_api.c makes the answers.
 *
 * A request's life (MHD calls handle() again and again with the same WebRequest):
 *   headers:  admit() answers at once anything not allowed (401, 403, 404, 405, 413, 503), so a
 *             refused upload is never read; a POST that is allowed goes on to its body;
 *   body:     appended (raw) or parsed (multipart, MHD's post processor) up to its limit; an
 *             upload that grows past it gets 413 there and then;
 *   classify: a thread of its own (at most web.max_jobs; 503 with Retry-After beyond) while the
 *             connection is suspended; it resumes the connection with the answer made;
 *   answer:   queued, then MHD frees the request (completed()).
 * Invariants: no path from a request reaches the filesystem: routes are matched whole, tracks
 * are named by database id, pictures by a random id. The server's threads never block on a
 * classification. web_stop waits for the classification threads (MHD must not be stopped with
 * suspended connections). */
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nettle/hmac.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web_internal.h"

#define DEFAULT_LISTEN "127.0.0.1:7710"
#define TOKEN_MIN_LEN 16
#define CSRF_TTL_S (7 * 24 * 3600)
#define POOL_THREADS 4
#define MAX_CONNECTIONS 64
#define IDLE_TIMEOUT_S 30
#define RETRY_AFTER_S "2"

/* web/embed.cmake's table of the page's files. */
extern const int web_asset_count;
extern const char *const web_asset_name[];
extern const unsigned char *const web_asset_data[];
extern const size_t web_asset_len[];

/* Not even inline styles: the JS sets sizes through the CSSOM, which CSP allows. */
static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; media-src 'self' blob:; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'";

/* ---- small helpers ---- */

FILE *web_out_begin(WebOut *o)
{
    o->buf = NULL;
    o->len = 0;
    o->f = open_memstream(&o->buf, &o->len);
    if (!o->f) {
        fprintf(stderr, "genred: out of memory for an answer\n");
        abort();
    }
    return o->f;
}

char *web_out_end(WebOut *o, size_t *len)
{
    fclose(o->f);
    *len = o->len;
    return o->buf;
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void random_bytes(uint8_t *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            /* The kernel's generator does not fail for requests this small once seeded. */
            fprintf(stderr, "genred: getrandom: %s\n", strerror(errno));
            abort();
        }
        got += (size_t)r;
    }
}

/* Comparison in time independent of where the strings differ (tokens). */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++) diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

/* ---- answers ---- */

static void common_headers(struct MHD_Response *resp, const char *type)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(resp, "Permissions-Policy", "microphone=(self), camera=()");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result web_reply(struct MHD_Connection *c, unsigned status, const char *type,
                          const void *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    common_headers(resp, type);
    return queue(c, status, resp);
}

static struct MHD_Response *error_response(const char *msg)
{
    WebOut o;
    FILE *f = web_out_begin(&o);
    fputs("{\"error\":", f);
    common_put_json_string(f, msg);
    fputs("}\n", f);
    size_t len;
    char *body = web_out_end(&o, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return NULL;
    }
    common_headers(resp, "application/json");
    return resp;
}

enum MHD_Result web_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct MHD_Response *resp = error_response(msg);
    if (!resp) return MHD_NO;
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"genred\"");
    return queue(c, status, resp);
}

/* ---- CSRF tokens: hex(time, random) + hex(HMAC-SHA256(secret, that)[:16]) ---- */

static void csrf_mac(const Web *w, const char nonce[32], char out[33])
{
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, sizeof w->secret, w->secret);
    hmac_sha256_update(&ctx, 32, (const uint8_t *)nonce);
    uint8_t d[SHA256_DIGEST_SIZE];
    hmac_sha256_digest(&ctx, sizeof d, d);
    hex(out, d, 16);
}

void web_csrf_new(Web *w, char out[65])
{
    uint8_t n[16];
    uint64_t t = (uint64_t)time(NULL);
    for (int i = 0; i < 8; i++) n[i] = (uint8_t)(t >> (56 - 8 * i));
    random_bytes(n + 8, 8);
    hex(out, n, 16);
    csrf_mac(w, out, out + 32);
}

static bool csrf_ok(const Web *w, const char *tok)
{
    if (!tok || strlen(tok) != 64 || strspn(tok, "0123456789abcdef") != 64) return false;
    char mac[33];
    csrf_mac(w, tok, mac);
    if (!same_secret(mac, tok + 32)) return false;
    uint64_t t = 0;
    for (int i = 0; i < 16; i++) {
        char c = tok[i];
        t = t << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    uint64_t now = (uint64_t)time(NULL);
    return t <= now + 60 && now - t <= CSRF_TTL_S;
}

/* ---- who may ask ---- */

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        if (IN6_IS_ADDR_V4MAPPED(a)) return a->s6_addr[12] == 127;
    }
    return false;
}

/* The host part of a Host header ("127.0.0.1:7710", "[::1]:7710", "localhost"). */
static void host_part(const char *host, char *out, size_t n)
{
    const char *end;
    if (host[0] == '[') {
        host++;
        end = strchr(host, ']');
    } else {
        end = strchr(host, ':');
    }
    size_t len = end ? (size_t)(end - host) : strlen(host);
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), host);
}

/* Without a token the server is only for this machine: a Host header naming anything but a
 * loopback address, localhost or the address it listens on is a page of some other site that
 * resolved its own name to 127.0.0.1 (DNS rebinding), and gets nothing. */
static bool host_ok(const Web *w, const char *host)
{
    if (!host) return false;
    char h[256];
    host_part(host, h, sizeof h);
    if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, w->listen_host) == 0) return true;
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, h, &a4.sin_addr) == 1) return is_loopback((struct sockaddr *)&a4);
    if (inet_pton(AF_INET6, h, &a6.sin6_addr) == 1) return is_loopback((struct sockaddr *)&a6);
    return false;
}

/* The token from "Authorization: Bearer T" or the genred_token cookie the page got. */
static const char *request_token(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) return auth + 7;
    return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "genred_token");
}

/* ---- routes ---- */

static bool parse_id(const char *s, size_t n, int64_t *id)
{
    if (n == 0 || n > 18) return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *id = v;
    return v > 0;
}

/* Matches url whole (MHD has already decoded %xx, so "%2e%2e" arrives as ".." and matches
 * nothing). want_post: the route's method. */
static enum WebRoute route(const char *url, WebRequest *r, bool *want_post)
{
    *want_post = false;
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) return ROUTE_PAGE;
    for (int i = 0; i < web_asset_count; i++) {
        if (url[0] == '/' && strcmp(url + 1, web_asset_name[i]) == 0 &&
            strcmp(web_asset_name[i], "index.html") != 0) {
            r->asset = i;
            return ROUTE_ASSET;
        }
    }
    if (strcmp(url, "/api/info") == 0) return ROUTE_INFO;
    if (strcmp(url, "/api/session") == 0) return ROUTE_SESSION;
    if (strcmp(url, "/api/stats") == 0) return ROUTE_STATS;
    if (strcmp(url, "/api/tracks") == 0) return ROUTE_TRACKS;
    if (strcmp(url, "/api/classify") == 0) {
        *want_post = true;
        return ROUTE_CLASSIFY;
    }
    static const char tracks[] = "/api/tracks/", mel[] = "/api/mel/";
    if (strncmp(url, tracks, sizeof tracks - 1) == 0) {
        const char *p = url + sizeof tracks - 1;
        const char *slash = strchr(p, '/');
        if (!slash) return parse_id(p, strlen(p), &r->id) ? ROUTE_TRACK : ROUTE_NONE;
        if (strcmp(slash, "/genre") == 0 && parse_id(p, (size_t)(slash - p), &r->id)) {
            *want_post = true;
            return ROUTE_CORRECT;
        }
        return ROUTE_NONE;
    }
    if (strncmp(url, mel, sizeof mel - 1) == 0) {
        const char *p = url + sizeof mel - 1;
        if (strlen(p) == 32 && strspn(p, "0123456789abcdef") == 32) {
            memcpy(r->mel_id, p, 33);
            return ROUTE_MEL;
        }
    }
    return ROUTE_NONE;
}

/* ---- the page and its files ---- */

static const char *asset_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (dot && strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (dot && strcmp(dot, ".svg") == 0) return "image/svg+xml";
    return "text/html; charset=utf-8";
}

static enum MHD_Result serve_asset(struct MHD_Connection *c, int i)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        web_asset_len[i], (void *)web_asset_data[i], MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    common_headers(resp, asset_type(web_asset_name[i]));
    MHD_del_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return queue(c, MHD_HTTP_OK, resp);
}

/* index.html with this page's CSRF token in place of {{CSRF}}. */
static enum MHD_Result serve_page(Web *w, struct MHD_Connection *c)
{
    int idx = -1;
    for (int i = 0; i < web_asset_count; i++)
        if (strcmp(web_asset_name[i], "index.html") == 0) idx = i;
    if (idx < 0) return web_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no page built in");
    const char *tpl = (const char *)web_asset_data[idx];
    const char *at = strstr(tpl, "{{CSRF}}");
    char tok[65];
    web_csrf_new(w, tok);
    WebOut o;
    FILE *f = web_out_begin(&o);
    if (at) {
        fwrite(tpl, 1, (size_t)(at - tpl), f);
        fputs(tok, f);
        fputs(at + 8, f);
    } else {
        fputs(tpl, f);
    }
    size_t len;
    char *body = web_out_end(&o, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    common_headers(resp, "text/html; charset=utf-8");
    return queue(c, MHD_HTTP_OK, resp);
}

static enum MHD_Result serve_mel(Web *w, WebRequest *r)
{
    struct MHD_Response *resp = NULL;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < WEB_MEL_KEEP; i++)
        if (w->mel[i].id[0] && strcmp(w->mel[i].id, r->mel_id) == 0 &&
            common_now() - w->mel[i].time < WEB_MEL_TTL_S)
            resp = MHD_create_response_from_buffer(w->mel[i].len, w->mel[i].png,
                                                   MHD_RESPMEM_MUST_COPY);
    pthread_mutex_unlock(&w->lock);
    if (!resp) return web_error(r->conn, MHD_HTTP_NOT_FOUND, "no such picture (they are kept %d minutes)",
                                (int)(WEB_MEL_TTL_S / 60));
    common_headers(resp, "image/png");
    return queue(r->conn, MHD_HTTP_OK, resp);
}

void web_mel_put(Web *w, unsigned char *png, size_t len, char id[33])
{
    uint8_t b[16];
    random_bytes(b, sizeof b);
    hex(id, b, sizeof b);
    pthread_mutex_lock(&w->lock);
    int slot = 0;
    for (int i = 1; i < WEB_MEL_KEEP; i++)
        if (w->mel[i].time < w->mel[slot].time) slot = i; /* the oldest (or a free one: 0) */
    free(w->mel[slot].png);
    memcpy(w->mel[slot].id, id, 33);
    w->mel[slot].png = png;
    w->mel[slot].len = len;
    w->mel[slot].time = common_now();
    pthread_mutex_unlock(&w->lock);
}

/* ---- the model ---- */

static void model_unref(WebModel *m)
{
    if (m && --m->refs == 0) {
        nn_model_free(m->m);
        free(m);
    }
}

WebModel *web_model_acquire(Web *w, ErrMsg *e)
{
    struct stat st;
    bool have = stat(w->model_path, &st) == 0;
    pthread_mutex_lock(&w->lock);
    WebModel *cur = w->model;
    bool changed = have && (!cur || cur->dev != st.st_dev || cur->ino != st.st_ino ||
                            cur->size != st.st_size || cur->mtime.tv_sec != st.st_mtim.tv_sec ||
                            cur->mtime.tv_nsec != st.st_mtim.tv_nsec);
    pthread_mutex_unlock(&w->lock);
    if (changed) {
        /* Loaded outside the lock; a file that does not load leaves the running model. */
        ErrMsg why = {{0}};
        NnModel *m = nn_model_load(w->model_path, &why);
        if (m) {
            nn_model_set_device(m, w->device, &why);
            WebModel *nm = xcalloc(1, sizeof *nm);
            *nm = (WebModel){.m = m, .refs = 1, .dev = st.st_dev, .ino = st.st_ino,
                             .size = st.st_size, .mtime = st.st_mtim};
            pthread_mutex_lock(&w->lock);
            WebModel *old = w->model;
            w->model = nm;
            model_unref(old);
            pthread_mutex_unlock(&w->lock);
            if (old) log_info("web: model %s reloaded (id %s)", w->model_path, nn_model_info(m)->id);
        } else if (!cur) {
            err_set(e, "model %s: %s", w->model_path, why.msg);
            return NULL;
        } else {
            log_warn("web: model %s: %s; keeping the loaded one", w->model_path, why.msg);
        }
    }
    pthread_mutex_lock(&w->lock);
    WebModel *m = w->model;
    if (m) m->refs++;
    pthread_mutex_unlock(&w->lock);
    if (!m) err_set(e, "model %s cannot be read", w->model_path);
    return m;
}

void web_model_release(Web *w, WebModel *m)
{
    pthread_mutex_lock(&w->lock);
    model_unref(m);
    pthread_mutex_unlock(&w->lock);
}

/* ---- hooks: one thread owns them ---- */

static void hook_job_free(WebHookJob *j)
{
    free((char *)j->r.path);
    free((char *)j->r.genre);
    free((char *)j->r.top);
    free((char *)j->r.previous_genre);
    free((char *)j->r.model);
    free(j);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void web_hooks_submit(Web *w, const HooksResult *r)
{
    if (!w->hooks_started) return;
    WebHookJob *j = xcalloc(1, sizeof *j);
    j->r = *r;
    j->r.path = dup_or_null(r->path);
    j->r.genre = dup_or_null(r->genre);
    j->r.top = dup_or_null(r->top);
    j->r.previous_genre = dup_or_null(r->previous_genre);
    j->r.model = dup_or_null(r->model);
    pthread_mutex_lock(&w->lock);
    if (w->hq_tail)
        w->hq_tail->next = j;
    else
        w->hq_head = j;
    w->hq_tail = j;
    pthread_mutex_unlock(&w->lock);
    uint64_t one = 1;
    ssize_t n = write(w->hooks_efd, &one, sizeof one);
    (void)n; /* an eventfd counter does not overflow at one write per correction */
}

static void *hooks_main(void *arg)
{
    Web *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        WebHookJob *jobs = w->hq_head;
        w->hq_head = w->hq_tail = NULL;
        bool stop = w->hooks_stop;
        pthread_mutex_unlock(&w->lock);
        while (jobs) {
            WebHookJob *next = jobs->next;
            hooks_submit(w->hooks, &jobs->r);
            hook_job_free(jobs);
            jobs = next;
        }
        hooks_dispatch(w->hooks);
        if (stop) break;
        struct pollfd p[2] = {{.fd = w->hooks_efd, .events = POLLIN},
                              {.fd = hooks_fd(w->hooks), .events = POLLIN}};
        if (poll(p, 2, hooks_timeout_ms(w->hooks)) > 0 && (p[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t n = read(w->hooks_efd, &v, sizeof v);
            (void)n;
        }
    }
    hooks_run_all(w->hooks);
    return NULL;
}

/* ---- requests ---- */

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    Web *w = cls;
    WebRequest *r = *con_cls;
    if (!r) return;
    if (r->counted_receiving) {
        pthread_mutex_lock(&w->lock);
        w->receiving--;
        pthread_mutex_unlock(&w->lock);
    }
    if (r->pp) MHD_destroy_post_processor(r->pp);
    free(r->body);
    free(r->answer);
    free(r);
    *con_cls = NULL;
}

static void body_add(WebRequest *r, const char *data, size_t n)
{
    if (r->too_large) return;
    if (r->len + n > r->limit) {
        r->too_large = true;
        return;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 64 * 1024;
        while (cap < r->len + n) cap *= 2;
        if (cap > r->limit) cap = r->limit;
        r->body = xrealloc(r->body, cap);
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
}

/* multipart/form-data: the file of field "audio" (the first one) is the upload. */
static enum MHD_Result form_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size)
{
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    WebRequest *r = cls;
    if (!key || strcmp(key, "audio") != 0) {
        if (r->audio_seen) r->audio_done = true;
        return MHD_YES;
    }
    if (off == 0 && r->audio_seen) r->audio_done = true; /* a second "audio" part: ignored */
    if (r->audio_done) return MHD_YES;
    if (off == 0 && filename && *filename) snprintf(r->name, sizeof r->name, "%s", filename);
    r->audio_seen = true;
    body_add(r, data, size);
    return r->too_large ? MHD_NO : MHD_YES;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Everything decided from the request line and headers. Returns 1 when it answered (r->phase
 * ANSWERED), 0 to go on. */
static int admit(Web *w, WebRequest *r, const char *url, const char *method,
                 enum MHD_Result *ret)
{
    struct MHD_Connection *c = r->conn;
    r->phase = PHASE_ANSWERED;
    if (!w->token && !host_ok(w, header(c, MHD_HTTP_HEADER_HOST))) {
        *ret = web_error(c, MHD_HTTP_FORBIDDEN,
                         "this server answers only for this machine's own addresses (Host: %s); "
                         "set web.token to serve others",
                         header(c, MHD_HTTP_HEADER_HOST) ? header(c, MHD_HTTP_HEADER_HOST) : "none");
        return 1;
    }
    bool want_post;
    r->route = route(url, r, &want_post);
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (w->token) {
        const char *t = request_token(c);
        if (!t && r->route == ROUTE_PAGE && get)
            t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
        if (!t || !same_secret(t, w->token)) {
            *ret = web_error(c, MHD_HTTP_UNAUTHORIZED,
                             "this genred serve wants its token (web.token): send "
                             "'Authorization: Bearer TOKEN', or open /?token=TOKEN once in a browser");
            return 1;
        }
        if (!request_token(c)) {
            /* the token came in the URL: keep it in a cookie and take it out of the address bar */
            struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            if (!resp) {
                *ret = MHD_NO;
                return 1;
            }
            common_headers(resp, "text/plain");
            char cookie[512];
            snprintf(cookie, sizeof cookie, "genred_token=%s; Path=/; HttpOnly; SameSite=Strict",
                     w->token);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/");
            *ret = queue(c, MHD_HTTP_SEE_OTHER, resp);
            return 1;
        }
    }
    if (r->route == ROUTE_NONE) {
        *ret = web_error(c, MHD_HTTP_NOT_FOUND, "no such page or API route");
        return 1;
    }
    if (want_post ? !post : !get) {
        struct MHD_Response *resp = error_response(want_post ? "use POST" : "use GET");
        if (!resp) {
            *ret = MHD_NO;
            return 1;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, want_post ? "POST" : "GET, HEAD");
        *ret = queue(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
        return 1;
    }
    if (!want_post) {
        r->phase = PHASE_HEADERS;
        return 0;
    }
    /* A POST changes something or costs CPU: only from this site's own page (or an API
     * client that asked for a CSRF token). */
    const char *origin = header(c, "Origin");
    if (origin && strcmp(origin, "null") != 0) {
        const char *host = header(c, MHD_HTTP_HEADER_HOST);
        if (!host || strncmp(origin, "http://", 7) != 0 || strcmp(origin + 7, host) != 0) {
            *ret = web_error(c, MHD_HTTP_FORBIDDEN, "cross-origin request refused (Origin: %s)",
                             origin);
            return 1;
        }
    }
    if (!csrf_ok(w, header(c, "X-CSRF-Token"))) {
        *ret = web_error(c, MHD_HTTP_FORBIDDEN,
                         "missing or stale CSRF token (X-CSRF-Token): reload the page; API "
                         "clients get one from GET /api/session");
        return 1;
    }
    r->limit = r->route == ROUTE_CLASSIFY ? w->max_upload : WEB_MAX_SMALL_BODY;
    /* The size must be known before the body is read, so that a body too large is refused
     * unread (libmicrohttpd cannot answer halfway through one). Browsers and curl send it. */
    const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl) {
        *ret = web_error(c, MHD_HTTP_LENGTH_REQUIRED,
                         "send the body with a Content-Length (chunked uploads are refused)");
        return 1;
    }
    {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || n > r->limit) {
            *ret = r->route == ROUTE_CLASSIFY
                       ? web_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                   "upload too large: at most %zu MB (web.max_upload_mb)",
                                   w->max_upload >> 20)
                       : web_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
            return 1;
        }
    }
    if (r->route == ROUTE_CLASSIFY) {
        /* Uploads in flight hold memory: a few per classification slot, no more. */
        pthread_mutex_lock(&w->lock);
        bool full = w->receiving >= 4 * w->max_jobs;
        if (!full) w->receiving++;
        pthread_mutex_unlock(&w->lock);
        if (full) {
            *ret = web_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "too many uploads at once; try again in a moment");
            return 1;
        }
        r->counted_receiving = true;
        const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
            r->multipart = true;
            r->pp = MHD_create_post_processor(c, 64 * 1024, form_part, r);
            if (!r->pp) {
                *ret = web_error(c, MHD_HTTP_BAD_REQUEST, "malformed multipart/form-data header");
                return 1;
            }
        }
        const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
        snprintf(r->name, sizeof r->name, "%s", name && *name ? name : "upload");
        const char *mel = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mel");
        r->want_mel = mel && strcmp(mel, "0") != 0;
    }
    r->phase = PHASE_BODY;
    return 0;
}

static void *classify_main(void *arg)
{
    WebRequest *r = arg;
    Web *w = r->w;
    if (w->debug_delay_ms > 0) usleep((useconds_t)w->debug_delay_ms * 1000);
    web_api_classify(w, r);
    free(r->body); /* the upload is dropped as soon as it is classified */
    r->body = NULL;
    r->len = r->cap = 0;
    r->phase = PHASE_DONE;
    struct MHD_Connection *c = r->conn;
    pthread_mutex_lock(&w->lock);
    w->running--;
    pthread_mutex_unlock(&w->lock);
    MHD_resume_connection(c); /* from here on r belongs to the server again */
    pthread_mutex_lock(&w->lock);
    if (--w->workers == 0) pthread_cond_broadcast(&w->idle);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* The body is all there: classify it on a thread of its own, or answer. */
static enum MHD_Result body_done(Web *w, WebRequest *r)
{
    struct MHD_Connection *c = r->conn;
    if (r->counted_receiving) {
        pthread_mutex_lock(&w->lock);
        w->receiving--;
        pthread_mutex_unlock(&w->lock);
        r->counted_receiving = false;
    }
    r->phase = PHASE_ANSWERED;
    if (r->route == ROUTE_CORRECT) return web_api_correct(w, r);
    if (r->len == 0)
        return web_error(c, MHD_HTTP_BAD_REQUEST,
                         r->multipart ? "no file in the form field 'audio'"
                                      : "empty upload: send the audio file as the body, or in "
                                        "the multipart/form-data field 'audio'");
    pthread_mutex_lock(&w->lock);
    bool busy = w->running >= w->max_jobs || w->stopping;
    if (!busy) {
        w->running++;
        w->workers++;
    }
    pthread_mutex_unlock(&w->lock);
    if (busy)
        return web_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "busy: %d classifications are running (web.max_jobs); try again in a "
                         "moment",
                         w->max_jobs);
    r->phase = PHASE_RUNNING;
    MHD_suspend_connection(c);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, classify_main, r);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&w->lock);
        w->running--;
        w->workers--;
        pthread_mutex_unlock(&w->lock);
        MHD_resume_connection(c);
        r->phase = PHASE_DONE;
        r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        r->answer = xstrdup("{\"error\":\"cannot start a classification thread\"}\n");
        r->answer_len = strlen(r->answer);
    }
    return MHD_YES;
}

static enum MHD_Result answer_classify(WebRequest *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->answer_len, r->answer, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->answer = NULL;
    common_headers(resp, "application/json");
    if (r->status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
    char timing[128];
    snprintf(timing, sizeof timing, "classify;dur=%.1f, total;dur=%.1f", r->t_classify * 1e3,
             (common_now() - r->t0) * 1e3);
    MHD_add_response_header(resp, "Server-Timing", timing);
    if (r->answer_mel[0]) {
        char loc[64];
        snprintf(loc, sizeof loc, "/api/mel/%s", r->answer_mel);
        MHD_add_response_header(resp, "X-Genred-Mel", loc);
    }
    r->phase = PHASE_ANSWERED;
    return queue(r->conn, r->status, resp);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    (void)version;
    Web *w = cls;
    WebRequest *r = *con_cls;
    if (!r) {
        r = xcalloc(1, sizeof *r);
        r->w = w;
        r->conn = c;
        r->t0 = common_now();
        *con_cls = r;
        enum MHD_Result ret = MHD_YES;
        if (admit(w, r, url, method, &ret)) return ret;
        if (r->phase != PHASE_BODY) r->phase = PHASE_GET;
        return MHD_YES; /* the body, if any, and the answer follow */
    }
    if (r->phase == PHASE_GET) {
        if (*size) { /* a GET with a body: ignored */
            *size = 0;
            return MHD_YES;
        }
        r->phase = PHASE_ANSWERED;
        switch (r->route) {
        case ROUTE_PAGE: return serve_page(w, c);
        case ROUTE_ASSET: return serve_asset(c, r->asset);
        case ROUTE_INFO: return web_api_info(w, r);
        case ROUTE_SESSION: {
            char tok[65], body[96];
            web_csrf_new(w, tok);
            snprintf(body, sizeof body, "{\"csrf\":\"%s\"}\n", tok);
            return web_reply(c, MHD_HTTP_OK, "application/json", body, strlen(body));
        }
        case ROUTE_STATS: return web_api_stats(w, r);
        case ROUTE_TRACKS: return web_api_tracks(w, r);
        case ROUTE_TRACK: return web_api_track(w, r);
        case ROUTE_MEL: return serve_mel(w, r);
        default: return web_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "unrouted request");
        }
    }
    switch (r->phase) {
    case PHASE_BODY:
        if (*size) {
            if (r->pp) {
                if (MHD_post_process(r->pp, data, *size) != MHD_YES && !r->too_large) {
                    *size = 0;
                    r->phase = PHASE_ANSWERED;
                    return web_error(c, MHD_HTTP_BAD_REQUEST, "malformed multipart/form-data body");
                }
            } else {
                body_add(r, data, *size);
            }
            *size = 0;
            if (r->too_large) {
                /* Not reached: the Content-Length was checked and MHD reads no more than it.
                 * MHD could not queue an answer here anyway: close. */
                log_warn("web: a body grew past its limit; closing the connection");
                return MHD_NO;
            }
            return MHD_YES;
        }
        return body_done(w, r);
    case PHASE_DONE: return answer_classify(r);
    default:
        /* Called again after an answer was queued (the client still sends): ignore the rest. */
        *size = 0;
        return MHD_YES;
    }
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* %HH decoding of the path and query arguments, as MHD's own, except that %00 stays as it is:
 * a NUL would cut "/index.html%00.js" to a route it does not name. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *o = s;
    for (const char *p = s; *p;) {
        int a, b;
        if (p[0] == '%' && (a = hex_digit(p[1])) >= 0 && (b = hex_digit(p[2])) >= 0 && (a || b)) {
            *o++ = (char)(a << 4 | b);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return (size_t)(o - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (common_log_level < LOG_DEBUG) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    log_debug("web: microhttpd: %s", line);
}

/* ---- start and stop ---- */

/* "HOST:PORT" or "[V6]:PORT" into a bound, listening socket. */
static int open_listener(Web *w, const char *listen_at, ErrMsg *e)
{
    char host[128], port[16];
    const char *colon;
    if (listen_at[0] == '[') {
        const char *end = strchr(listen_at, ']');
        if (!end || end[1] != ':') return err_set(e, "web.listen '%s': want [ADDRESS]:PORT", listen_at);
        snprintf(host, sizeof host, "%.*s", (int)(end - listen_at - 1), listen_at + 1);
        colon = end + 1;
    } else {
        colon = strrchr(listen_at, ':');
        if (!colon || colon == listen_at || strchr(listen_at, ':') != colon)
            return err_set(e, "web.listen '%s': want HOST:PORT, e.g. 127.0.0.1:7710", listen_at);
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen_at), listen_at);
    }
    snprintf(port, sizeof port, "%s", colon + 1);
    char *end;
    long pn = strtol(port, &end, 10);
    if (!*port || *end || pn < 0 || pn > 65535)
        return err_set(e, "web.listen '%s': the port must be a number from 0 to 65535", listen_at);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0) return err_set(e, "web.listen '%s': %s", listen_at, gai_strerror(g));
    snprintf(w->listen_host, sizeof w->listen_host, "%s", host);
    w->loopback = is_loopback(ai->ai_addr);
    if (!w->loopback && !w->token) {
        freeaddrinfo(ai);
        return err_set(e,
                       "web.listen %s is not a loopback address: set web.token (at least %d "
                       "characters; every request must then carry it) to serve other machines",
                       listen_at, TOKEN_MIN_LEN);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return err_set(e, "cannot listen on %s: %s", listen_at, strerror(err));
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char addr[INET6_ADDRSTRLEN] = "";
    int bound_port;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
        bound_port = ntohs(a->sin6_port);
        snprintf(w->url, sizeof w->url, "http://[%s]:%d/", addr, bound_port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
        bound_port = ntohs(a->sin_port);
        snprintf(w->url, sizeof w->url, "http://%s:%d/", addr, bound_port);
    }
    freeaddrinfo(ai);
    w->listen_fd = fd;
    return 0;
}

static Hooks *make_hooks(const Config *c, ErrMsg *e)
{
    HooksOptions ho = {.dir = c->hooks_dir,
                       .commands = (const char *const *const *)c->hooks_commands.argv,
                       .n_commands = c->hooks_commands.n,
                       .timeout_ms = (int)(c->hooks_timeout_s * 1000.0),
                       .grace_ms = 2000,
                       .max_running = c->hooks_max_running};
    return hooks_new(&ho, e);
}

Web *web_start(const Config *c, const char *model_path, ErrMsg *e)
{
    Web *w = xcalloc(1, sizeof *w);
    w->listen_fd = -1;
    w->hooks_efd = -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->idle, NULL);
    if (c->web_token && *c->web_token) {
        if (strlen(c->web_token) < TOKEN_MIN_LEN) {
            err_set(e, "web.token is too short: at least %d characters", TOKEN_MIN_LEN);
            goto fail;
        }
        if (strpbrk(c->web_token, " \t\r\n;,\"\\")) {
            err_set(e, "web.token: no blanks, quotes, ';', ',' or '\\' (it goes in a cookie)");
            goto fail;
        }
        w->token = xstrdup(c->web_token);
    }
    w->max_upload = (size_t)c->web_max_upload_mb << 20;
    w->max_jobs = c->web_max_jobs;
    w->model_path = xstrdup(model_path);
    w->device = c->device; /* enum ConfigDevice == enum NnDevice */
    w->state_path = xstrdup(c->state_path);
    const char *delay = getenv("GENRED_WEB_DEBUG_DELAY_MS");
    w->debug_delay_ms = delay ? atoi(delay) : 0;
    random_bytes(w->secret, sizeof w->secret);
    /* The model first: a server that cannot classify should not start. */
    WebModel *m = web_model_acquire(w, e);
    if (!m) goto fail;
    web_model_release(w, m);
    if (open_listener(w, c->web_listen && *c->web_listen ? c->web_listen : DEFAULT_LISTEN, e) != 0)
        goto fail;
    if (!(w->hooks = make_hooks(c, e))) goto fail;
    w->hooks_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->hooks_efd < 0 || pthread_create(&w->hooks_thread, NULL, hooks_main, w) != 0) {
        err_set(e, "cannot start the hooks thread");
        goto fail;
    }
    w->hooks_started = true;
    w->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, handle, w, MHD_OPTION_LISTEN_SOCKET, w->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, completed, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, w,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, w, MHD_OPTION_END);
    if (!w->mhd) {
        err_set(e, "cannot start the HTTP server (libmicrohttpd)");
        goto fail;
    }
    log_info("web: serving %s%s", w->url, w->token ? " (web.token required)" : "");
    return w;
fail:
    web_stop(w);
    return NULL;
}

const char *web_url(const Web *w)
{
    return w->url;
}

void web_stop(Web *w)
{
    if (!w) return;
    if (w->mhd) {
        /* No new connections; then the classification threads finish and resume theirs. */
        MHD_socket fd = MHD_quiesce_daemon(w->mhd);
        if (fd != MHD_INVALID_SOCKET) w->listen_fd = fd;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        while (w->workers > 0) pthread_cond_wait(&w->idle, &w->lock);
        pthread_mutex_unlock(&w->lock);
        MHD_stop_daemon(w->mhd);
    }
    if (w->listen_fd >= 0) close(w->listen_fd);
    if (w->hooks_started) {
        pthread_mutex_lock(&w->lock);
        w->hooks_stop = true;
        pthread_mutex_unlock(&w->lock);
        uint64_t one = 1;
        ssize_t n = write(w->hooks_efd, &one, sizeof one);
        (void)n;
        pthread_join(w->hooks_thread, NULL);
    }
    while (w->hq_head) {
        WebHookJob *j = w->hq_head;
        w->hq_head = j->next;
        hook_job_free(j);
    }
    hooks_free(w->hooks);
    if (w->hooks_efd >= 0) close(w->hooks_efd);
    model_unref(w->model);
    for (int i = 0; i < WEB_MEL_KEEP; i++) free(w->mel[i].png);
    pthread_cond_destroy(&w->idle);
    pthread_mutex_destroy(&w->lock);
    free(w->token);
    free(w->model_path);
    free(w->state_path);
    free(w);
}
