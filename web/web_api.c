/* web_api: the answers of the JSON API (see web.h and README "Web page and API"). Each function
 * runs on a server thread (web_api_classify on a classification thread) and opens what it needs
 * for itself: a State handle per request (SQLite handles belong to one thread; opening one is
 * well under a millisecond), the shared model by reference. JSON goes out through the same
 * string writer as `genred classify --json` (common_put_json_string: never invalid UTF-8),
 * comes in through jansson. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline.h"
#include "plot.h"
#include "state.h"
#include "tagger.h"
#include "web_internal.h"

static enum MHD_Result reply_out(struct MHD_Connection *c, unsigned status, WebOut *o)
{
    size_t len;
    char *body = web_out_end(o, &len);
    enum MHD_Result rc = web_reply(c, status, "application/json", body, len);
    free(body);
    return rc;
}

static void json_str_or_null(FILE *f, const char *s)
{
    if (s)
        common_put_json_string(f, s);
    else
        fputs("null", f);
}

/* Opens the state database for one request; NULL after answering 404 (none yet) or 500. */
static State *open_state(Web *w, WebRequest *r, enum MHD_Result *ret)
{
    ErrMsg e = {{0}};
    State *s = state_open(w->state_path, false, &e);
    if (!s) *ret = web_error(r->conn, MHD_HTTP_NOT_FOUND, "no library: %s: %s", w->state_path, e.msg);
    return s;
}

/* ---- GET /api/info ---- */

enum MHD_Result web_api_info(Web *w, WebRequest *r)
{
    ErrMsg e = {{0}};
    WebModel *m = web_model_acquire(w, &e);
    if (!m) return web_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", e.msg);
    const NnInfo *in = nn_model_info(m->m);
    WebOut o;
    FILE *f = web_out_begin(&o);
    fputs("{\"model\":{\"id\":", f);
    common_put_json_string(f, in->id);
    fputs(",\"arch\":", f);
    common_put_json_string(f, in->arch);
    fputs(",\"labels\":[", f);
    for (int k = 0; k < in->n_labels; k++) {
        if (k) fputc(',', f);
        common_put_json_string(f, in->labels[k]);
    }
    fputs("],\"display_names\":[", f);
    for (int k = 0; k < in->n_labels; k++) {
        if (k) fputc(',', f);
        common_put_json_string(f, in->display_names[k]);
    }
    fprintf(f,
            "],\"sample_rate\":%d,\"n_fft\":%d,\"hop_length\":%d,\"n_mels\":%d,"
            "\"window_seconds\":%g,\"windows\":%d,\"device\":",
            in->sample_rate, in->n_fft, in->hop_length, in->n_mels, in->window_seconds,
            in->windows);
    common_put_json_string(f, nn_model_device_name(m->m));
    web_model_release(w, m);
    struct stat st;
    fprintf(f, "},\"max_upload_mb\":%zu,\"max_jobs\":%d,\"library\":%s}\n", w->max_upload >> 20,
            w->max_jobs, stat(w->state_path, &st) == 0 ? "true" : "false");
    return reply_out(r->conn, MHD_HTTP_OK, &o);
}

/* ---- GET /api/stats ---- */

typedef struct GenreOut {
    FILE *f;
    int n;
} GenreOut;

static int genre_row(const char *genre, int64_t n, double mean, void *ud)
{
    GenreOut *g = ud;
    fputs(g->n++ ? ",{\"genre\":" : "{\"genre\":", g->f);
    common_put_json_string(g->f, genre);
    fprintf(g->f, ",\"count\":%lld,\"mean_confidence\":%.6f}", (long long)n, mean);
    return 0;
}

enum MHD_Result web_api_stats(Web *w, WebRequest *r)
{
    enum MHD_Result ret = MHD_NO;
    State *s = open_state(w, r, &ret);
    if (!s) return ret;
    ErrMsg e = {{0}};
    StateCounts n;
    WebOut o;
    FILE *f = web_out_begin(&o);
    if (state_counts(s, &n, &e) != 0) goto fail;
    fprintf(f, "{\"total\":%lld,\"ok\":%lld,\"errors\":%lld,\"untagged\":%lld,\"genres\":[",
            (long long)n.total, (long long)n.ok, (long long)n.error, (long long)n.excluded);
    GenreOut g = {.f = f};
    if (state_genre_counts(s, genre_row, &g, &e) < 0) goto fail;
    fputs("]}\n", f);
    state_close(s);
    return reply_out(r->conn, MHD_HTTP_OK, &o);
fail:
    state_close(s);
    size_t len;
    free(web_out_end(&o, &len));
    return web_error(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "state database: %s", e.msg);
}

/* ---- tracks ---- */

/* "rock:0.812,metal:0.104,..." as {"rock":0.812,...} (the labels as stored). */
static void probs_json(FILE *f, const char *probs)
{
    fputc('{', f);
    int first = 1;
    for (const char *p = probs; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', n);
        if (colon) {
            char label[128];
            snprintf(label, sizeof label, "%.*s", (int)(colon - p), p);
            char *end;
            double v = strtod(colon + 1, &end);
            if (end != colon + 1 && isfinite(v)) {
                if (!first) fputc(',', f);
                first = 0;
                common_put_json_string(f, label);
                fprintf(f, ":%.3f", v);
            }
        }
        p += n + (comma ? 1 : 0);
    }
    fputc('}', f);
}

static void track_json(FILE *f, const StateRow *t, int detail)
{
    fprintf(f, "{\"id\":%lld,\"path\":", (long long)t->id);
    common_put_json_string(f, t->path);
    fputs(",\"artist\":", f);
    json_str_or_null(f, t->artist);
    fputs(",\"genre\":", f);
    json_str_or_null(f, t->corrected ? t->corrected : t->genre);
    fputs(",\"model_genre\":", f);
    json_str_or_null(f, t->genre);
    fprintf(f, ",\"corrected\":%s,\"confidence\":", t->corrected ? "true" : "false");
    if (t->genre)
        fprintf(f, "%.6f", t->confidence);
    else
        fputs("null", f);
    fprintf(f, ",\"status\":\"%s\",\"error\":",
            t->excluded ? "untagged" : t->status == STATE_OK ? "ok" : "error");
    json_str_or_null(f, t->status == STATE_ERROR && !t->excluded ? t->error : NULL);
    fputs(",\"model\":", f);
    json_str_or_null(f, t->model);
    fprintf(f, ",\"time\":%.3f", t->time);
    if (detail) {
        fputs(",\"previous_genre\":", f);
        json_str_or_null(f, t->previous_known ? (t->previous_genre ? t->previous_genre : "") : NULL);
        fprintf(f, ",\"runs\":%lld,\"probabilities\":", (long long)t->runs);
        if (t->probs)
            probs_json(f, t->probs);
        else
            fputs("null", f);
    }
    fputc('}', f);
}

typedef struct TrackOut {
    FILE *f;
    int n;
    int sort;
    int64_t last_id;
    double last_key;
} TrackOut;

static int track_row(const StateRow *t, void *ud)
{
    TrackOut *o = ud;
    if (o->n++) fputc(',', o->f);
    track_json(o->f, t, 0);
    o->last_id = t->id;
    o->last_key = o->sort == STATE_SORT_RECENT ? t->time : t->confidence;
    return 0;
}

static const char *arg(WebRequest *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

static int pick(const char *v, const char *const *names, int n, int def)
{
    if (!v) return def;
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) return i;
    return -1;
}

/* GET /api/tracks?filter=&sort=&genre=&q=&limit=&after=&total=1 */
enum MHD_Result web_api_tracks(Web *w, WebRequest *r)
{
    static const char *const filters[] = {"all", "ok", "error", "untagged", "corrected"};
    static const char *const sorts[] = {"confidence", "recent", "path"};
    StateQuery q = {.genre = arg(r, "genre"), .search = arg(r, "q"), .limit = 50};
    q.filter = pick(arg(r, "filter"), filters, 5, STATE_FILTER_OK);
    /* errors and untagged files have no confidence: newest first unless asked */
    q.sort = pick(arg(r, "sort"), sorts, 3,
                  q.filter == STATE_FILTER_ERROR || q.filter == STATE_FILTER_UNTAGGED
                      ? STATE_SORT_RECENT
                      : STATE_SORT_CONFIDENCE);
    if (q.filter < 0) return web_error(r->conn, MHD_HTTP_BAD_REQUEST, "filter: all, ok, error, untagged or corrected");
    if (q.sort < 0) return web_error(r->conn, MHD_HTTP_BAD_REQUEST, "sort: confidence, recent or path");
    const char *lim = arg(r, "limit");
    if (lim) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || v < 1 || v > 500)
            return web_error(r->conn, MHD_HTTP_BAD_REQUEST, "limit: a whole number from 1 to 500");
        q.limit = (int)v;
    }
    const char *after = arg(r, "after");
    if (after) {
        /* the "next" of the previous page: KEY:ID */
        const char *colon = strchr(after, ':');
        char *end = NULL;
        long long id = colon ? strtoll(colon + 1, &end, 10) : 0;
        double key = 0;
        if (colon && colon > after) {
            char *kend;
            key = strtod(after, &kend);
            if (kend != colon) colon = NULL;
        }
        if (!colon || !end || *end || id < 1 || !isfinite(key))
            return web_error(r->conn, MHD_HTTP_BAD_REQUEST, "after: the 'next' of the previous page");
        q.after_id = id;
        q.after_key = key;
    }
    if (q.search && strlen(q.search) > 200)
        return web_error(r->conn, MHD_HTTP_BAD_REQUEST, "q: at most 200 bytes");
    enum MHD_Result ret = MHD_NO;
    State *s = open_state(w, r, &ret);
    if (!s) return ret;
    WebOut o;
    FILE *f = web_out_begin(&o);
    fputs("{\"tracks\":[", f);
    TrackOut to = {.f = f, .sort = q.sort};
    int64_t total = -1;
    const char *want_total = arg(r, "total");
    ErrMsg e = {{0}};
    int n = state_query(s, &q, track_row, &to, want_total && strcmp(want_total, "0") ? &total : NULL,
                        &e);
    state_close(s);
    if (n < 0) {
        size_t len;
        free(web_out_end(&o, &len));
        return web_error(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "state database: %s", e.msg);
    }
    fputs("],\"next\":", f);
    if (n == q.limit)
        fprintf(f, "\"%.17g:%lld\"", q.sort == STATE_SORT_PATH ? 0.0 : to.last_key,
                (long long)to.last_id);
    else
        fputs("null", f);
    if (total >= 0) fprintf(f, ",\"total\":%lld", (long long)total);
    fputs("}\n", f);
    return reply_out(r->conn, MHD_HTTP_OK, &o);
}

/* GET /api/tracks/ID */
enum MHD_Result web_api_track(Web *w, WebRequest *r)
{
    enum MHD_Result ret = MHD_NO;
    State *s = open_state(w, r, &ret);
    if (!s) return ret;
    StateRow t;
    ErrMsg e = {{0}};
    int found = state_lookup_id(s, r->id, &t, &e);
    state_close(s);
    if (found < 0) return web_error(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "state database: %s", e.msg);
    if (!found) return web_error(r->conn, MHD_HTTP_NOT_FOUND, "no track with id %lld", (long long)r->id);
    WebOut o;
    FILE *f = web_out_begin(&o);
    track_json(f, &t, 1);
    fputc('\n', f);
    state_row_clear(&t);
    return reply_out(r->conn, MHD_HTTP_OK, &o);
}

/* ---- POST /api/tracks/ID/genre {"genre": "Jazz"} ---- */

/* A genre a person typed: trimmed, 1..200 bytes, no control characters (jansson has checked
 * the UTF-8). */
static int clean_genre(const char *in, char *out, size_t n)
{
    while (*in == ' ' || *in == '\t') in++;
    size_t len = strlen(in);
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\t')) len--;
    if (len == 0 || len > 200 || len >= n) return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) return -1;
    memcpy(out, in, len);
    out[len] = '\0';
    return 0;
}

enum MHD_Result web_api_correct(Web *w, WebRequest *r)
{
    struct MHD_Connection *c = r->conn;
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES, &je);
    json_t *g = j && json_is_object(j) ? json_object_get(j, "genre") : NULL;
    char genre[256];
    if (!g || !json_is_string(g) || clean_genre(json_string_value(g), genre, sizeof genre) != 0 ||
        strlen(json_string_value(g)) != json_string_length(g)) {
        json_decref(j);
        return web_error(c, MHD_HTTP_BAD_REQUEST,
                         "want a JSON object {\"genre\": \"...\"}: 1 to 200 characters, no "
                         "control characters");
    }
    json_decref(j);
    enum MHD_Result ret = MHD_NO;
    State *s = open_state(w, r, &ret);
    if (!s) return ret;
    StateRow t;
    ErrMsg e = {{0}};
    int found = state_lookup_id(s, r->id, &t, &e);
    if (found <= 0) {
        state_close(s);
        return found < 0 ? web_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "state database: %s", e.msg)
                         : web_error(c, MHD_HTTP_NOT_FOUND, "no track with id %lld", (long long)r->id);
    }
    /* The path is the database's, never the request's. */
    TaggerInfo before;
    if (tagger_read(t.path, &before, &e) != 0 || tagger_set_hand_genre(t.path, genre, &e) != 0) {
        ret = web_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "%s: %s", t.path, e.msg);
        state_row_clear(&t);
        state_close(s);
        return ret;
    }
    /* Recorded with the file as the write left it, so the daemon finds it done. */
    struct stat st;
    char fp[STATE_FINGERPRINT_SIZE];
    int have = stat(t.path, &st) == 0 && state_fingerprint(t.path, fp, &e) == 0;
    const char *handset = before.confidence[0] ? NULL : before.genre;
    int rec = state_record_correction(
        s, t.id, genre, have ? st.st_size : -1,
        have ? (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec : -1,
        have ? fp : NULL, handset, &e);
    if (rec <= 0) {
        /* The file has the genre; a state that cannot say so is worth an error, not silence. */
        log_error("web: %s: corrected to %s, but the state database: %s", t.path, genre, e.msg);
        ret = web_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "the file now says %s, but the state database could not record it: %s",
                        genre, rec < 0 ? e.msg : "the track is gone");
        state_row_clear(&t);
        state_close(s);
        return ret;
    }
    log_info("web: corrected %s: %s -> %s", t.path, before.genre, genre);
    /* GENRED_TOP: the model's three best, as stored (sorted, most probable first). */
    char top[256] = "";
    if (t.probs) {
        snprintf(top, sizeof top, "%s", t.probs);
        char *p = top;
        for (int k = 0; k < 3 && p; k++) p = strchr(p + (k ? 1 : 0), ',');
        if (p) *p = '\0';
    }
    HooksResult hr = {.path = t.path,
                      .event = HOOKS_CORRECTED,
                      .genre = genre,
                      .top = top,
                      .previous_genre = before.genre,
                      .model = t.model};
    web_hooks_submit(w, &hr);
    state_row_clear(&t);
    found = state_lookup_id(s, r->id, &t, &e);
    state_close(s);
    WebOut o;
    FILE *f = web_out_begin(&o);
    if (found == 1) {
        track_json(f, &t, 1);
        state_row_clear(&t);
    } else {
        fputs("{}", f);
    }
    fputc('\n', f);
    return reply_out(c, MHD_HTTP_OK, &o);
}

/* ---- POST /api/classify (on a classification thread) ---- */

typedef struct ClassifyCtx {
    Web *w;
    WebRequest *r;
    const NnInfo *info;
} ClassifyCtx;

static int on_result(const PipelineResult *res, void *user)
{
    ClassifyCtx *x = user;
    WebRequest *r = x->r;
    WebOut o;
    FILE *f = web_out_begin(&o);
    if (!res->ok) {
        /* undecodable, no audio stream, too long to decode whole, ... */
        fputs("{\"error\":", f);
        common_put_json_string(f, res->err.msg);
        fputs("}\n", f);
        r->status = MHD_HTTP_UNPROCESSABLE_CONTENT;
    } else {
        pipeline_result_json(f, res, x->info);
        fputc('\n', f);
        r->status = MHD_HTTP_OK;
        if (r->want_mel && res->mel) {
            unsigned char *png = NULL;
            size_t len = 0;
            ErrMsg e = {{0}};
            if (plot_mel_png_mem(&png, &len, res->mel, res->n_windows, res->n_mels,
                                 res->mel_frames, x->info->sample_rate, x->info->hop_length, NULL,
                                 &e) == 0)
                web_mel_put(x->w, png, len, r->answer_mel);
            else
                log_warn("web: mel picture: %s", e.msg);
        }
        log_info("web: classified %s (%zu bytes): %s %.3f", res->path, r->len,
                 x->info->display_names[res->top], res->confidence);
    }
    r->answer = web_out_end(&o, &r->answer_len);
    return 0;
}

void web_api_classify(Web *w, WebRequest *r)
{
    ErrMsg e = {{0}};
    double t0 = common_now();
    WebModel *m = web_model_acquire(w, &e);
    if (!m) {
        r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
    } else {
        ClassifyCtx x = {.w = w, .r = r, .info = nn_model_info(m->m)};
        PipelineBuffer b = {.data = r->body, .len = r->len, .name = r->name};
        PipelineOptions po = {.jobs = 1,
                              .batch = 1,
                              .ordered = 1,
                              .keep_mel = r->want_mel,
                              .max_whole_seconds = WEB_MAX_WHOLE_SECONDS};
        if (pipeline_classify_buffers(m->m, &b, 1, &po, on_result, &x, &e) < 0)
            r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        web_model_release(w, m);
    }
    r->t_classify = common_now() - t0;
    if (!r->answer) {
        WebOut o;
        FILE *f = web_out_begin(&o);
        fputs("{\"error\":", f);
        common_put_json_string(f, e.msg[0] ? e.msg : "classification failed");
        fputs("}\n", f);
        r->answer = web_out_end(&o, &r->answer_len);
        if (!r->status) r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}
