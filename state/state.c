/* state: see state.h.
 * Statements are prepared per call: the daemon records a few results per second at most, and
 * a handle without cached statements has nothing to invalidate after a schema migration.
 * Paths are bound and read as BLOBs (length-delimited), never as text, so no encoding step can
 * touch a file name's bytes. Rows "below" a directory are found with a range on the primary
 * key: every blob with prefix "dir/" sorts in ["dir/", "dir0") since '0' follows '/'. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct State {
    sqlite3 *db;
};

/* The v2 table; v3 adds `untagged` (schema_v3_delta) to it, for new and old files alike. The
 * column is not called "excluded": that name is the upsert's row in ON CONFLICT clauses. */
static const char schema_v2[] =
    "CREATE TABLE tracks ("
    " path BLOB PRIMARY KEY NOT NULL,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL,"
    " fingerprint TEXT NOT NULL DEFAULT '',"
    " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
    " genre TEXT,"
    " confidence REAL,"
    " probs TEXT,"
    " model TEXT NOT NULL DEFAULT '',"
    " previous_genre TEXT,"
    " previous_known INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " time REAL NOT NULL,"
    " runs INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX tracks_time ON tracks(time);";

static const char schema_v3_delta[] =
    "ALTER TABLE tracks ADD COLUMN untagged INTEGER NOT NULL DEFAULT 0 CHECK (untagged IN (0, 1));";

/* v4: the tagger's undo record of the genre items the file had before genred's first write. */
static const char schema_v4_delta[] = "ALTER TABLE tracks ADD COLUMN previous_undo TEXT;";

/* v5: an id that is never reused (the web page addresses tracks by it, so a deleted row's id
 * must not come to mean another file), the artist and the genre set from the web page; the
 * indexes behind the library view (least sure first, per genre). A v4 table is copied over with
 * its rowids as ids. "shown genre" = coalesce(corrected, genre) everywhere. */
#define TRACKS_V5_COLUMNS                                                                          \
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"                                                      \
    " path BLOB UNIQUE NOT NULL,"                                                                 \
    " size INTEGER NOT NULL,"                                                                     \
    " mtime_ns INTEGER NOT NULL,"                                                                 \
    " fingerprint TEXT NOT NULL DEFAULT '',"                                                      \
    " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"                                \
    " genre TEXT,"                                                                                \
    " confidence REAL,"                                                                           \
    " probs TEXT,"                                                                                \
    " model TEXT NOT NULL DEFAULT '',"                                                            \
    " previous_genre TEXT,"                                                                       \
    " previous_known INTEGER NOT NULL DEFAULT 0,"                                                 \
    " error TEXT,"                                                                                \
    " time REAL NOT NULL,"                                                                        \
    " runs INTEGER NOT NULL DEFAULT 1,"                                                           \
    " untagged INTEGER NOT NULL DEFAULT 0 CHECK (untagged IN (0, 1)),"                            \
    " previous_undo TEXT,"                                                                        \
    " artist TEXT,"                                                                               \
    " corrected TEXT"
/* Each list of the library view walks one index in its order and stops after a page; the
 * partial ones hold the rows with a result (most of them), the errors or the untagged (few). */
#define OK_ROWS " WHERE status = 0 AND untagged = 0;"
#define V5_INDEXES                                                                                 \
    "CREATE INDEX tracks_time ON tracks(time);"                                                   \
    "CREATE INDEX tracks_confidence ON tracks(confidence);"                                       \
    "CREATE INDEX tracks_genre ON tracks(coalesce(corrected, genre), confidence);"              \
    "CREATE INDEX tracks_ok_confidence ON tracks(confidence)" OK_ROWS                             \
    "CREATE INDEX tracks_ok_genre ON tracks(coalesce(corrected, genre), confidence)" OK_ROWS      \
    "CREATE INDEX tracks_error_time ON tracks(time) WHERE status = 1 AND untagged = 0;"         \
    "CREATE INDEX tracks_untagged_time ON tracks(time) WHERE untagged = 1;"
static const char schema_v5[] = "CREATE TABLE tracks (" TRACKS_V5_COLUMNS ");" V5_INDEXES;
static const char schema_v5_from_v4[] =
    "CREATE TABLE tracks_v5 (" TRACKS_V5_COLUMNS ");"
    "INSERT INTO tracks_v5 (id, path, size, mtime_ns, fingerprint, status, genre, confidence,"
    " probs, model, previous_genre, previous_known, error, time, runs, untagged, previous_undo)"
    " SELECT rowid, path, size, mtime_ns, fingerprint, status, genre, confidence, probs, model,"
    " previous_genre, previous_known, error, time, runs, untagged, previous_undo FROM tracks;"
    "DROP TABLE tracks;"
    "ALTER TABLE tracks_v5 RENAME TO tracks;" V5_INDEXES;

#define ROW_COLUMNS                                                                                \
    "path, size, mtime_ns, fingerprint, status, genre, confidence, probs, model, "                \
    "previous_genre, previous_known, error, time, runs, untagged, previous_undo, id, artist, "    \
    "corrected"

static int db_err(State *s, ErrMsg *e, const char *what)
{
    return err_set(e, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(State *s, const char *sql, ErrMsg *e)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, "%s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *prepare(State *s, const char *sql, ErrMsg *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_err(s, e, "prepare");
        return NULL;
    }
    return st;
}

static void bind_path(sqlite3_stmt *st, int i, const char *path)
{
    sqlite3_bind_blob(st, i, path, (int)strlen(path), SQLITE_TRANSIENT);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* "dir/" and "dir0": the key range holding everything below dir. */
static void bind_below(sqlite3_stmt *st, int i, const char *dir)
{
    size_t n = strlen(dir);
    char *lo = xmalloc(n + 1);
    memcpy(lo, dir, n);
    lo[n] = '/';
    sqlite3_bind_blob(st, i, lo, (int)n + 1, SQLITE_TRANSIENT);
    lo[n] = '0';
    sqlite3_bind_blob(st, i + 1, lo, (int)n + 1, SQLITE_TRANSIENT);
    free(lo);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *column_dup(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    char *out = xmalloc((size_t)n + 1);
    if (n) memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return out;
}

static void read_row(sqlite3_stmt *st, StateRow *r)
{
    memset(r, 0, sizeof *r);
    r->path = column_dup(st, 0);
    r->size = sqlite3_column_int64(st, 1);
    r->mtime_ns = sqlite3_column_int64(st, 2);
    const char *fp = (const char *)sqlite3_column_text(st, 3);
    snprintf(r->fingerprint, sizeof r->fingerprint, "%s", fp ? fp : "");
    r->status = sqlite3_column_int(st, 4) ? STATE_ERROR : STATE_OK;
    r->genre = column_dup(st, 5);
    r->confidence = sqlite3_column_double(st, 6);
    r->probs = column_dup(st, 7);
    r->model = column_dup(st, 8);
    r->previous_genre = column_dup(st, 9);
    r->previous_known = sqlite3_column_int(st, 10) != 0;
    r->error = column_dup(st, 11);
    r->time = sqlite3_column_double(st, 12);
    r->runs = sqlite3_column_int64(st, 13);
    r->excluded = sqlite3_column_int(st, 14) != 0;
    r->previous_undo = column_dup(st, 15);
    r->id = sqlite3_column_int64(st, 16);
    r->artist = column_dup(st, 17);
    r->corrected = column_dup(st, 18);
}

void state_row_clear(StateRow *r)
{
    free(r->path);
    free(r->genre);
    free(r->probs);
    free(r->model);
    free(r->previous_genre);
    free(r->previous_undo);
    free(r->error);
    free(r->artist);
    free(r->corrected);
    memset(r, 0, sizeof *r);
}

int state_schema_version(State *s)
{
    sqlite3_stmt *st = prepare(s, "PRAGMA user_version", NULL);
    if (!st) return -1;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

int state_migrate(State *s, ErrMsg *e)
{
    int v = state_schema_version(s);
    if (v == STATE_SCHEMA_VERSION) return 0;
    /* IMMEDIATE: of two processes opening an old file at once, one migrates, the other waits
     * and then finds the new version. */
    if (exec(s, "BEGIN IMMEDIATE", e) != 0) return -1;
    v = state_schema_version(s);
    if (v < 0 || v > STATE_SCHEMA_VERSION) {
        exec(s, "ROLLBACK", NULL);
        return err_set(e, "database schema version %d is newer than this genred (%d)", v,
                       STATE_SCHEMA_VERSION);
    }
    if (v == 0) {
        if (exec(s, schema_v5, e) != 0) goto fail;
    } else if (v == 1) {
        /* v1: path TEXT, mtime in seconds, no fingerprint, probs, previous genre or status.
         * An empty fingerprint never matches, so changed-looking files get checked again. */
        if (exec(s,
                 "ALTER TABLE tracks RENAME TO tracks_v1;", e) != 0 ||
            exec(s, schema_v2, e) != 0 ||
            exec(s,
                 "INSERT INTO tracks (path, size, mtime_ns, fingerprint, status, genre,"
                 " confidence, model, previous_known, time, runs)"
                 " SELECT CAST(path AS BLOB), size, mtime * 1000000000, '', 0, genre,"
                 " confidence, COALESCE(model, ''), 0, COALESCE(time, 0), 1 FROM tracks_v1;"
                 "DROP TABLE tracks_v1;",
                 e) != 0)
            goto fail;
    }
    /* v2 -> v3 (and on from the v2 table just made): nothing was excluded before. */
    if (v >= 1 && v < 3 && exec(s, schema_v3_delta, e) != 0) goto fail;
    /* v3 -> v4: no undo records before (untag falls back to the previous genre's text). */
    if (v >= 1 && v < 4 && exec(s, schema_v4_delta, e) != 0) goto fail;
    /* v4 -> v5: the table copied with its rowids as ids, the library view's indexes. */
    if (v >= 1 && exec(s, schema_v5_from_v4, e) != 0) goto fail;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STATE_SCHEMA_VERSION);
    if (exec(s, sql, e) != 0 || exec(s, "COMMIT", e) != 0) goto fail;
    if (v != 0) log_info("state database migrated from schema %d to %d", v, STATE_SCHEMA_VERSION);
    return 0;
fail:
    exec(s, "ROLLBACK", NULL);
    return -1;
}

static int mkdir_parents(const char *path, ErrMsg *e)
{
    char *p = xstrdup(path);
    for (char *q = p + 1; *q; q++) {
        if (*q != '/') continue;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            err_set(e, "cannot create %s: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *q = '/';
    }
    free(p);
    return 0;
}

State *state_open(const char *path, bool create, ErrMsg *e)
{
    if (create && mkdir_parents(path, e) != 0) return NULL;
    struct stat sb;
    if (!create && stat(path, &sb) != 0 && errno == ENOENT) {
        /* SQLite would say only "unable to open database file" */
        err_set(e, "no state database yet (genred watch creates it)");
        return NULL;
    }
    State *s = xcalloc(1, sizeof *s);
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        err_set(e, "%s", s->db ? sqlite3_errmsg(s->db) : "cannot open");
        state_close(s);
        return NULL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* A reader (genred status) or a second writer waits instead of failing with SQLITE_BUSY. */
    sqlite3_busy_timeout(s->db, 10000);
    sqlite3_stmt *st = prepare(s, "PRAGMA journal_mode = WAL", e);
    if (!st) goto fail;
    const char *mode = sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        err_set(e, "cannot switch to WAL mode: %s", sqlite3_errmsg(s->db));
        goto fail;
    }
    /* NORMAL in WAL mode: a killed process loses nothing committed; only a power cut may lose
     * the last commits, which then just get done again. */
    if (exec(s, "PRAGMA synchronous = NORMAL", e) != 0) goto fail;
    if (state_migrate(s, e) != 0) goto fail;
    return s;
fail:
    state_close(s);
    return NULL;
}

void state_close(State *s)
{
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

int state_fingerprint(const char *path, char out[STATE_FINGERPRINT_SIZE], ErrMsg *e)
{
    enum { PART = 64 * 1024 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set(e, "%s", strerror(errno));
    }
    uint8_t *buf = xmalloc(PART);
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint8_t sz[8];
    for (int i = 0; i < 8; i++) sz[i] = (uint8_t)((uint64_t)st.st_size >> (8 * i));
    sha256_update(&ctx, sizeof sz, sz);
    off_t size = st.st_size;
    off_t starts[2] = {0, size > 2 * PART ? size - PART : PART};
    int rc = 0;
    for (int part = 0; part < 2 && rc == 0; part++) {
        off_t at = starts[part];
        off_t end = at + PART < size ? at + PART : size;
        while (at < end) {
            ssize_t r = pread(fd, buf, (size_t)(end - at), at);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                rc = err_set(e, "read failed: %s", r < 0 ? strerror(errno) : "file shrank");
                break;
            }
            sha256_update(&ctx, (size_t)r, buf);
            at += r;
        }
    }
    free(buf);
    close(fd);
    if (rc != 0) return rc;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    return 0;
}

int state_lookup(State *s, const char *path, StateRow *row, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(s, "SELECT " ROW_COLUMNS " FROM tracks WHERE path = ?1", e);
    if (!st) return -1;
    bind_path(st, 1, path);
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW) {
        read_row(st, row);
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        ret = db_err(s, e, "lookup");
    }
    sqlite3_finalize(st);
    return ret;
}

int state_needs_work(State *s, const char *path, int64_t size, int64_t mtime_ns,
                     const char *fingerprint, const char *model, ErrMsg *e)
{
    StateRow r;
    int found = state_lookup(s, path, &r, e);
    if (found <= 0) return found < 0 ? -1 : 1;
    if (r.excluded) {
        int same = r.size < 0 ||
                   (r.size == size &&
                    (r.mtime_ns == mtime_ns ||
                     (fingerprint && r.fingerprint[0] && strcmp(r.fingerprint, fingerprint) == 0)));
        state_row_clear(&r);
        return !same;
    }
    int done = strcmp(r.model ? r.model : "", model ? model : "") == 0 && r.size == size &&
               (r.mtime_ns == mtime_ns ||
                (fingerprint && r.fingerprint[0] && strcmp(r.fingerprint, fingerprint) == 0));
    state_row_clear(&r);
    return !done;
}

/* One statement per write, inside BEGIN IMMEDIATE .. COMMIT so that later multi-statement
 * writes keep the all-or-nothing property the crash test checks. */
static int write_one(State *s, sqlite3_stmt *st, ErrMsg *e)
{
    if (exec(s, "BEGIN IMMEDIATE", e) != 0) {
        sqlite3_finalize(st);
        return -1;
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_err(s, e, "write");
        exec(s, "ROLLBACK", NULL);
        return -1;
    }
    if (exec(s, "COMMIT", e) != 0) {
        exec(s, "ROLLBACK", NULL);
        return -1;
    }
    return 0;
}

int state_record_result(State *s, const StateResult *r, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(
        s,
        "INSERT INTO tracks (path, size, mtime_ns, fingerprint, status, genre, confidence, probs,"
        " model, previous_genre, previous_known, error, time, runs, previous_undo, artist)"
        " VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11, 1, ?12, NULLIF(?13, ''))"
        " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
        " fingerprint = excluded.fingerprint, status = 0, genre = excluded.genre,"
        " confidence = excluded.confidence, probs = excluded.probs, model = excluded.model,"
        /* A hand-set genre that is still the one the web page wrote (corrected) is genred's
         * doing, not the user's: the genre from before genred (and its undo record) stays what
         * untag restores. */
        " previous_genre = CASE WHEN excluded.previous_known AND excluded.previous_genre IS NOT"
        "   tracks.corrected THEN excluded.previous_genre ELSE tracks.previous_genre END,"
        " previous_undo = CASE WHEN excluded.previous_known AND excluded.previous_genre IS NOT"
        "   tracks.corrected THEN excluded.previous_undo ELSE tracks.previous_undo END,"
        " previous_known = CASE WHEN excluded.previous_genre IS tracks.corrected"
        "   THEN tracks.previous_known ELSE (excluded.previous_known OR tracks.previous_known) END,"
        " corrected = CASE WHEN excluded.previous_known AND excluded.previous_genre IS"
        "   tracks.corrected THEN tracks.corrected END,"
        " artist = CASE WHEN ?13 IS NULL THEN tracks.artist ELSE excluded.artist END,"
        " error = NULL, time = excluded.time, runs = tracks.runs + 1, untagged = 0",
        e);
    if (!st) return -1;
    bind_path(st, 1, r->path);
    sqlite3_bind_int64(st, 2, r->size);
    sqlite3_bind_int64(st, 3, r->mtime_ns);
    sqlite3_bind_text(st, 4, r->fingerprint ? r->fingerprint : "", -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 5, r->genre);
    sqlite3_bind_double(st, 6, r->confidence);
    bind_text_or_null(st, 7, r->probs);
    sqlite3_bind_text(st, 8, r->model ? r->model : "", -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 9, r->previous_known ? r->previous_genre : NULL);
    sqlite3_bind_int(st, 10, r->previous_known);
    sqlite3_bind_double(st, 11, wall_now());
    bind_text_or_null(st, 12, r->previous_known ? r->previous_undo : NULL);
    bind_text_or_null(st, 13, r->artist);
    return write_one(s, st, e);
}

int state_record_error(State *s, const char *path, int64_t size, int64_t mtime_ns,
                       const char *fingerprint, const char *model, const char *error, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(
        s,
        "INSERT INTO tracks (path, size, mtime_ns, fingerprint, status, model, error, time, runs)"
        " VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, 1)"
        " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
        " fingerprint = excluded.fingerprint, status = 1, model = excluded.model,"
        " error = excluded.error, time = excluded.time, runs = tracks.runs + 1, untagged = 0",
        e);
    if (!st) return -1;
    bind_path(st, 1, path);
    sqlite3_bind_int64(st, 2, size);
    sqlite3_bind_int64(st, 3, mtime_ns);
    sqlite3_bind_text(st, 4, fingerprint ? fingerprint : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, model ? model : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, error ? error : "unknown error", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 7, wall_now());
    return write_one(s, st, e);
}

int state_exclude(State *s, const char *path, int64_t size, int64_t mtime_ns,
                  const char *fingerprint, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(
        s,
        "INSERT INTO tracks (path, size, mtime_ns, fingerprint, status, time, runs, untagged)"
        " VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, 1)"
        " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
        " fingerprint = excluded.fingerprint, status = 0, genre = NULL, confidence = NULL,"
        " probs = NULL, error = NULL, time = excluded.time, untagged = 1, corrected = NULL",
        e);
    if (!st) return -1;
    bind_path(st, 1, path);
    sqlite3_bind_int64(st, 2, size);
    sqlite3_bind_int64(st, 3, mtime_ns);
    sqlite3_bind_text(st, 4, fingerprint ? fingerprint : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 5, wall_now());
    return write_one(s, st, e);
}

int state_forget(State *s, const char *path, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(
        s, "DELETE FROM tracks WHERE path = ?1 OR (path >= ?2 AND path < ?3)", e);
    if (!st) return -1;
    bind_path(st, 1, path);
    bind_below(st, 2, path);
    if (write_one(s, st, e) != 0) return -1;
    return sqlite3_changes(s->db);
}

static int step_done(State *s, sqlite3_stmt *st, ErrMsg *e)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(s, e, "write");
}

int state_rename(State *s, const char *old_path, const char *new_path, ErrMsg *e)
{
    if (strcmp(old_path, new_path) == 0) return 0;
    if (exec(s, "BEGIN IMMEDIATE", e) != 0) return -1;
    int moved = 0;
    sqlite3_stmt *st =
        prepare(s, "DELETE FROM tracks WHERE path = ?1 OR (path >= ?2 AND path < ?3)", e);
    if (!st) goto fail;
    bind_path(st, 1, new_path);
    bind_below(st, 2, new_path);
    if (step_done(s, st, e) != 0) goto fail;

    /* Collect first, then update: updating keys while iterating over that key range would
     * revisit moved rows. */
    st = prepare(s, "SELECT path FROM tracks WHERE path = ?1 OR (path >= ?2 AND path < ?3)", e);
    if (!st) goto fail;
    bind_path(st, 1, old_path);
    bind_below(st, 2, old_path);
    char **paths = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) paths = xrealloc(paths, (cap = cap ? 2 * cap : 16) * sizeof *paths);
        paths[n++] = column_dup(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_err(s, e, "rename");
        for (size_t i = 0; i < n; i++) free(paths[i]);
        free(paths);
        goto fail;
    }
    size_t old_len = strlen(old_path), new_len = strlen(new_path);
    int ok = 0;
    for (size_t i = 0; i < n && ok == 0; i++) {
        size_t tail = strlen(paths[i]) - old_len;
        char *np = xmalloc(new_len + tail + 1);
        memcpy(np, new_path, new_len);
        memcpy(np + new_len, paths[i] + old_len, tail + 1);
        st = prepare(s, "UPDATE tracks SET path = ?1 WHERE path = ?2", e);
        if (!st) {
            ok = -1;
        } else {
            bind_path(st, 1, np);
            bind_path(st, 2, paths[i]);
            ok = step_done(s, st, e);
            moved++;
        }
        free(np);
    }
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
    if (ok != 0 || exec(s, "COMMIT", e) != 0) goto fail;
    return moved;
fail:
    exec(s, "ROLLBACK", NULL);
    return -1;
}

int state_counts(State *s, StateCounts *c, ErrMsg *e)
{
    /* Each count from an index (the library view's partial ones), not a scan of the rows:
     * 6 ms instead of 41 at 100,000 tracks. */
    sqlite3_stmt *st = prepare(s,
                               "SELECT (SELECT count(*) FROM tracks),"
                               " (SELECT count(*) FROM tracks WHERE status = 0 AND untagged = 0),"
                               " (SELECT count(*) FROM tracks WHERE status = 1 AND untagged = 0),"
                               " (SELECT count(*) FROM tracks WHERE untagged = 1)",
                               e);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        c->total = sqlite3_column_int64(st, 0);
        c->ok = sqlite3_column_int64(st, 1);
        c->error = sqlite3_column_int64(st, 2);
        c->excluded = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_err(s, e, "counts");
}

int state_list(State *s, enum StateList which, int limit,
               int (*fn)(const StateRow *row, void *ud), void *ud, ErrMsg *e)
{
    static const char *const sql[] = {
        "SELECT " ROW_COLUMNS " FROM tracks ORDER BY time DESC LIMIT ?1",
        "SELECT " ROW_COLUMNS " FROM tracks WHERE status = 1 AND NOT untagged"
        " ORDER BY time DESC LIMIT ?1",
        "SELECT " ROW_COLUMNS " FROM tracks ORDER BY path LIMIT ?1",
        "SELECT " ROW_COLUMNS " FROM tracks WHERE untagged ORDER BY time DESC LIMIT ?1",
    };
    if ((unsigned)which > STATE_LIST_EXCLUDED) return err_set(e, "unknown list");
    sqlite3_stmt *st = prepare(s, sql[which], e);
    if (!st) return -1;
    sqlite3_bind_int(st, 1, limit > 0 ? limit : -1);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        StateRow r;
        read_row(st, &r);
        n++;
        int stop = fn(&r, ud);
        state_row_clear(&r);
        if (stop) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : db_err(s, e, "list");
}

int state_integrity_check(State *s, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(s, "PRAGMA integrity_check", e);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    const char *r = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ret = r && strcmp(r, "ok") == 0 ? 0 : err_set(e, "integrity check: %s", r ? r : sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return ret;
}

int state_paths_with_model(State *s, const char *model, char ***paths, size_t *n, ErrMsg *e)
{
    *paths = NULL;
    *n = 0;
    sqlite3_stmt *st = prepare(
        s, "SELECT path FROM tracks WHERE status = 0 AND NOT untagged AND model = ?1 ORDER BY path",
        e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) *paths = xrealloc(*paths, (cap = cap ? 2 * cap : 16) * sizeof **paths);
        (*paths)[(*n)++] = column_dup(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < *n; i++) free((*paths)[i]);
        free(*paths);
        *paths = NULL;
        *n = 0;
        return db_err(s, e, "query");
    }
    return 0;
}

int state_lookup_id(State *s, int64_t id, StateRow *row, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(s, "SELECT " ROW_COLUMNS " FROM tracks WHERE id = ?1", e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        read_row(st, row);
        ret = 1;
    } else {
        ret = rc == SQLITE_DONE ? 0 : db_err(s, e, "lookup");
    }
    sqlite3_finalize(st);
    return ret;
}

int state_record_correction(State *s, int64_t id, const char *genre, int64_t size,
                            int64_t mtime_ns, const char *fingerprint, const char *before_handset,
                            ErrMsg *e)
{
    sqlite3_stmt *st = prepare(
        s,
        "UPDATE tracks SET corrected = ?2, size = ?3, mtime_ns = ?4, fingerprint = ?5, time = ?6,"
        " previous_genre = CASE WHEN previous_known OR ?7 IS NULL THEN previous_genre ELSE ?7 END,"
        " previous_known = (previous_known OR ?7 IS NOT NULL) WHERE id = ?1",
        e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, genre, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, size);
    sqlite3_bind_int64(st, 4, mtime_ns);
    sqlite3_bind_text(st, 5, fingerprint ? fingerprint : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 6, wall_now());
    bind_text_or_null(st, 7, before_handset);
    if (write_one(s, st, e) != 0) return -1;
    return sqlite3_changes(s->db) > 0;
}

/* The WHERE clause of a library query (without the paging condition), its parameters bound by
 * bind_where from ?1 (genre) and ?2 (search pattern). */
static void where_clause(const StateQuery *q, char *out, size_t n)
{
    static const char *const filters[] = {
        "1", "status = 0 AND untagged = 0", "status = 1 AND untagged = 0", "untagged = 1",
        "corrected IS NOT NULL"};
    snprintf(out, n, "%s%s%s%s", filters[q->filter],
             q->sort == STATE_SORT_CONFIDENCE ? " AND confidence IS NOT NULL" : "",
             q->genre ? " AND coalesce(corrected, genre) = ?1" : "",
             q->search && *q->search
                 ? " AND (CAST(path AS TEXT) LIKE ?2 ESCAPE '\\' OR artist LIKE ?2 ESCAPE '\\'"
                   " OR coalesce(corrected, genre) LIKE ?2 ESCAPE '\\')"
                 : "");
}

/* %search% with LIKE's own characters escaped. */
static char *like_pattern(const char *search)
{
    size_t n = strlen(search);
    char *p = xmalloc(2 * n + 3), *o = p;
    *o++ = '%';
    for (const char *c = search; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\') *o++ = '\\';
        *o++ = *c;
    }
    *o++ = '%';
    *o = '\0';
    return p;
}

static void bind_where(sqlite3_stmt *st, const StateQuery *q, const char *pattern)
{
    if (q->genre) sqlite3_bind_text(st, 1, q->genre, -1, SQLITE_TRANSIENT);
    if (pattern) sqlite3_bind_text(st, 2, pattern, -1, SQLITE_TRANSIENT);
}

int state_query(State *s, const StateQuery *q, int (*fn)(const StateRow *row, void *ud),
                void *ud, int64_t *total, ErrMsg *e)
{
    if ((unsigned)q->filter > STATE_FILTER_CORRECTED || (unsigned)q->sort > STATE_SORT_PATH ||
        q->limit < 1 || q->limit > 1000)
        return err_set(e, "bad library query");
    char where[512], sql[1024];
    where_clause(q, where, sizeof where);
    char *pattern = q->search && *q->search ? like_pattern(q->search) : NULL;
    /* Keyset paging: (key, id) past the previous page's last row, in the order of an index
     * (confidence and time have one; the id breaks ties). */
    static const char *const after[] = {
        " AND (confidence, id) > (?3, ?4)", " AND (time, id) < (?3, ?4)",
        " AND (path, id) > ((SELECT path FROM tracks WHERE id = ?4), ?4)"};
    /* A substring search reads every row anyway: a plain scan and a top-N sort of the matches
     * (NOT INDEXED keeps the planner from walking an index with a lookup per row, 3 times
     * slower at 100,000 rows when few rows match). */
    static const char *const order[] = {"confidence, id", "time DESC, id DESC", "path, id"};
    snprintf(sql, sizeof sql, "SELECT " ROW_COLUMNS " FROM tracks%s WHERE %s%s ORDER BY %s LIMIT ?5",
             pattern ? " NOT INDEXED" : "", where, q->after_id > 0 ? after[q->sort] : "",
             order[q->sort]);
    sqlite3_stmt *st = prepare(s, sql, e);
    int n = 0, rc = SQLITE_DONE;
    if (!st) {
        free(pattern);
        return -1;
    }
    bind_where(st, q, pattern);
    if (q->after_id > 0) {
        if (q->sort != STATE_SORT_PATH) sqlite3_bind_double(st, 3, q->after_key);
        sqlite3_bind_int64(st, 4, q->after_id);
    }
    sqlite3_bind_int(st, 5, q->limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        StateRow r;
        read_row(st, &r);
        n++;
        int stop = fn(&r, ud);
        state_row_clear(&r);
        if (stop) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(pattern);
        return db_err(s, e, "query");
    }
    if (total) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM tracks WHERE %s", where);
        st = prepare(s, sql, e);
        if (!st) {
            free(pattern);
            return -1;
        }
        bind_where(st, q, pattern);
        rc = sqlite3_step(st);
        *total = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW) n = db_err(s, e, "count");
    }
    free(pattern);
    return n;
}

int state_genre_counts(State *s, int (*fn)(const char *genre, int64_t n, double mean_conf, void *ud),
                       void *ud, ErrMsg *e)
{
    sqlite3_stmt *st = prepare(
        s,
        "SELECT coalesce(corrected, genre) AS g, count(*) AS n, avg(confidence) FROM tracks"
        " WHERE status = 0 AND untagged = 0 AND g IS NOT NULL GROUP BY g ORDER BY n DESC, g",
        e);
    if (!st) return -1;
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if (fn((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
               sqlite3_column_double(st, 2), ud)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : db_err(s, e, "genres");
}
