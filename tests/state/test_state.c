/* test_state: the state database on real files in a temp dir.
 * Round trips with hostile path bytes, needs_work decisions, the previous-genre rule, errors,
 * forget/rename of directories (prefix edge cases), the fingerprint, migration from an empty
 * file, from v1 and v2 databases written by Python's sqlite3 and refusal of a newer one, the
 * untagged mark (state_exclude: kept for the same content whatever the model, cleared by a
 * new result, counted and listed apart), SIGKILL of
 * a writer mid-transaction (rows all there or not, multi-row renames never half done), and a
 * reader running beside a writer. v4: ids never reused, the artist, corrections from the web
 * page (what untag restores survives later results while the file keeps the corrected genre),
 * and the library view's queries (every filter, sort and search, paged by key, against a brute
 * force over the same rows). Usage: test_state PYTHON */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state.h"

#include "check.h"
static char tmp[256];

static void result(StateResult *r, const char *path, int64_t size, int64_t mtime, const char *fp,
                   const char *genre, const char *model)
{
    *r = (StateResult){.path = path,
                       .size = size,
                       .mtime_ns = mtime,
                       .fingerprint = fp,
                       .genre = genre,
                       .confidence = 0.75,
                       .probs = "rock:0.750,pop:0.250",
                       .model = model};
}

static int record(State *s, const char *path, int64_t size, int64_t mtime, const char *fp,
                  const char *genre, const char *model)
{
    StateResult r;
    result(&r, path, size, mtime, fp, genre, model);
    ErrMsg e;
    int rc = state_record_result(s, &r, &e);
    CHECK(rc == 0, "record %s: %s", path, e.msg);
    return rc;
}

static void test_basics(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/new/dir/state.db", tmp);
    ErrMsg e;
    /* a reader (genred status) before any writer: a reason a user can act on, no file made */
    State *s = state_open(db, false, &e);
    CHECK(!s && strstr(e.msg, "no state database yet"), "open of a missing file: %s",
          s ? "opened" : e.msg);
    if (s) state_close(s);
    struct stat sb;
    CHECK(stat(db, &sb) != 0, "a read-only open created %s", db);
    s = state_open(db, true, &e);
    CHECK(s, "open: %s", e.msg);
    if (!s) return;
    CHECK(state_schema_version(s) == STATE_SCHEMA_VERSION, "version %d", state_schema_version(s));

    const char *weird = "/m\xfc\xff/new\nline/$(x) 'q' \"d\".flac";
    StateResult r;
    result(&r, weird, 1234, 5678000000123LL, "00112233445566778899aabbccddeeff", "Rock", "abc");
    r.previous_genre = "Jazz";
    r.previous_known = true;
    r.previous_undo = "genred-undo-1 xiph 00";
    CHECK(state_record_result(s, &r, &e) == 0, "record: %s", e.msg);
    StateRow row;
    CHECK(state_lookup(s, weird, &row, &e) == 1, "lookup");
    CHECK(strcmp(row.path, weird) == 0, "path bytes changed");
    CHECK(row.size == 1234 && row.mtime_ns == 5678000000123LL, "size/mtime");
    CHECK(strcmp(row.fingerprint, "00112233445566778899aabbccddeeff") == 0, "fp %s", row.fingerprint);
    CHECK(row.status == STATE_OK && strcmp(row.genre, "Rock") == 0 && row.confidence == 0.75,
          "result");
    CHECK(strcmp(row.probs, "rock:0.750,pop:0.250") == 0 && strcmp(row.model, "abc") == 0,
          "probs/model");
    CHECK(row.previous_known && strcmp(row.previous_genre, "Jazz") == 0, "previous");
    CHECK(row.previous_undo && strcmp(row.previous_undo, "genred-undo-1 xiph 00") == 0, "undo");
    CHECK(row.runs == 1 && row.error == NULL && row.time > 1e9, "runs/time");
    state_row_clear(&row);
    char db_wal[600];
    snprintf(db_wal, sizeof db_wal, "%s-wal", db);
    CHECK(access(db_wal, F_OK) == 0, "no WAL file");

    /* needs_work */
    const char *fp = "00112233445566778899aabbccddeeff";
    CHECK(state_needs_work(s, weird, 1234, 5678000000123LL, NULL, "abc", &e) == 0, "same");
    CHECK(state_needs_work(s, weird, 1234, 5678000000123LL, fp, "abc", &e) == 0, "same+fp");
    CHECK(state_needs_work(s, weird, 1234, 1, NULL, "abc", &e) == 1, "touched, no fp");
    CHECK(state_needs_work(s, weird, 1234, 1, fp, "abc", &e) == 0, "touched, same fp");
    CHECK(state_needs_work(s, weird, 1234, 1, "ffff", "abc", &e) == 1, "content changed");
    CHECK(state_needs_work(s, weird, 1235, 5678000000123LL, fp, "abc", &e) == 1, "size changed");
    CHECK(state_needs_work(s, weird, 1234, 5678000000123LL, fp, "def", &e) == 1, "model changed");
    CHECK(state_needs_work(s, "/unknown", 1, 1, NULL, "abc", &e) == 1, "unknown");

    /* The genre from before genred's first write survives later writes. */
    result(&r, weird, 1300, 2, fp, "Metal", "def");
    CHECK(state_record_result(s, &r, &e) == 0, "%s", e.msg);
    state_lookup(s, weird, &row, &e);
    CHECK(row.previous_known && strcmp(row.previous_genre, "Jazz") == 0 && row.runs == 2 &&
              strcmp(row.genre, "Metal") == 0 && row.size == 1300 && row.previous_undo &&
              strcmp(row.previous_undo, "genred-undo-1 xiph 00") == 0,
          "second record: prev %s runs %lld", row.previous_genre, (long long)row.runs);
    state_row_clear(&row);
    r.previous_genre = "Blues"; /* set by hand in between, now overwritten with --force */
    r.previous_known = true;
    r.previous_undo = NULL;
    state_record_result(s, &r, &e);
    state_lookup(s, weird, &row, &e);
    CHECK(strcmp(row.previous_genre, "Blues") == 0 && row.runs == 3 && !row.previous_undo,
          "hand-set previous");
    state_row_clear(&row);

    /* errors keep the last result */
    CHECK(state_record_error(s, weird, 1300, 3, fp, "def", "decode failed: bad frame", &e) == 0,
          "%s", e.msg);
    state_lookup(s, weird, &row, &e);
    CHECK(row.status == STATE_ERROR && strcmp(row.error, "decode failed: bad frame") == 0 &&
              strcmp(row.genre, "Metal") == 0 && row.mtime_ns == 3,
          "error row");
    state_row_clear(&row);
    CHECK(state_needs_work(s, weird, 1300, 3, NULL, "def", &e) == 0, "error is done for same");
    state_record_error(s, "/only/error.mp3", 1, 1, NULL, "def", "unsupported", &e);
    state_lookup(s, "/only/error.mp3", &row, &e);
    CHECK(row.genre == NULL && row.status == STATE_ERROR, "error-only row");
    state_row_clear(&row);
    record(s, "/later.mp3", 1, 1, fp, "Pop", "def");

    StateCounts c;
    CHECK(state_counts(s, &c, &e) == 0 && c.total == 3 && c.ok == 1 && c.error == 2,
          "counts %lld %lld %lld", (long long)c.total, (long long)c.ok, (long long)c.error);
    state_close(s);
}

static int collect(const StateRow *row, void *ud)
{
    char *buf = ud;
    strcat(buf, row->path);
    strcat(buf, "|");
    return 0;
}

static void test_forget_rename_list(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/paths.db", tmp);
    ErrMsg e;
    State *s = state_open(db, true, &e);
    const char *paths[] = {"/lib/a", "/lib/a/x.mp3", "/lib/a/sub/y.mp3", "/lib/ab.mp3",
                           "/lib/a0x.mp3", "/lib/a.mp3", "/lib/d/1.mp3", "/lib/d/2.mp3",
                           "/lib/e/old.mp3", "/lib/e"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        record(s, paths[i], 1, (int64_t)i, "", "Rock", "m");
    CHECK(state_forget(s, "/lib/a", &e) == 3, "forget dir");
    StateRow row;
    CHECK(state_lookup(s, "/lib/ab.mp3", &row, &e) == 1, "sibling ab kept");
    state_row_clear(&row);
    CHECK(state_lookup(s, "/lib/a0x.mp3", &row, &e) == 1, "sibling a0x kept");
    state_row_clear(&row);
    CHECK(state_lookup(s, "/lib/a.mp3", &row, &e) == 1, "sibling a.mp3 kept");
    state_row_clear(&row);
    CHECK(state_lookup(s, "/lib/a/x.mp3", &row, &e) == 0, "child gone");

    CHECK(state_rename(s, "/lib/d", "/lib/e", &e) == 2, "rename dir: %s", e.msg);
    CHECK(state_lookup(s, "/lib/e/1.mp3", &row, &e) == 1 && row.mtime_ns == 6, "moved row");
    state_row_clear(&row);
    CHECK(state_lookup(s, "/lib/e/old.mp3", &row, &e) == 0, "replaced row still there");
    CHECK(state_lookup(s, "/lib/d/1.mp3", &row, &e) == 0, "old row still there");
    CHECK(state_rename(s, "/lib/ab.mp3", "/lib/new name.mp3", &e) == 1, "rename file");
    CHECK(state_rename(s, "/lib/nothing", "/lib/x", &e) == 0, "rename nothing");

    char buf[1024] = "";
    CHECK(state_list(s, STATE_LIST_ALL, 0, collect, buf, &e) == 5, "list all");
    CHECK(strcmp(buf, "/lib/a.mp3|/lib/a0x.mp3|/lib/e/1.mp3|/lib/e/2.mp3|/lib/new name.mp3|") == 0,
          "list order: %s", buf);
    buf[0] = '\0';
    state_record_error(s, "/lib/a.mp3", 1, 1, "", "m", "broken", &e);
    CHECK(state_list(s, STATE_LIST_ERRORS, 0, collect, buf, &e) == 1 &&
              strcmp(buf, "/lib/a.mp3|") == 0,
          "errors: %s", buf);
    buf[0] = '\0';
    CHECK(state_list(s, STATE_LIST_RECENT, 2, collect, buf, &e) == 2 &&
              strncmp(buf, "/lib/a.mp3|", 11) == 0,
          "recent: %s", buf);
    CHECK(state_integrity_check(s, &e) == 0, "%s", e.msg);
    state_close(s);
}

static void write_bytes(const char *path, const unsigned char *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
}

static void test_fingerprint(void)
{
    size_t n = 300 * 1024;
    unsigned char *d = malloc(n + 1);
    srand(7);
    for (size_t i = 0; i < n; i++) d[i] = (unsigned char)rand();
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/fp.bin", tmp);
    snprintf(q, sizeof q, "%s/fp-copy.bin", tmp);
    write_bytes(p, d, n);
    write_bytes(q, d, n);
    char a[STATE_FINGERPRINT_SIZE], b[STATE_FINGERPRINT_SIZE];
    ErrMsg e;
    CHECK(state_fingerprint(p, a, &e) == 0 && strlen(a) == 32, "fp: %s", e.msg);
    state_fingerprint(q, b, &e);
    CHECK(strcmp(a, b) == 0, "copy differs");
    d[10] ^= 1; /* a tag edit at the start */
    write_bytes(q, d, n);
    state_fingerprint(q, b, &e);
    CHECK(strcmp(a, b) != 0, "head change unseen");
    d[10] ^= 1;
    d[n - 5] ^= 1; /* a tag edit at the end (ID3v1, APE) */
    write_bytes(q, d, n);
    state_fingerprint(q, b, &e);
    CHECK(strcmp(a, b) != 0, "tail change unseen");
    d[n - 5] ^= 1;
    write_bytes(q, d, n + 1);
    state_fingerprint(q, b, &e);
    CHECK(strcmp(a, b) != 0, "size change unseen");
    write_bytes(q, d, 100); /* small files are hashed whole */
    state_fingerprint(q, b, &e);
    CHECK(strlen(b) == 32 && strcmp(a, b) != 0, "small file");
    CHECK(state_fingerprint("/nonexistent/x", b, &e) == -1 && strstr(e.msg, "No such file"),
          "missing file: %s", e.msg);
    free(d);
}

static int run_python(const char *python, const char *script, const char *db)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(python, python, "-c", script, db, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_migration(const char *python)
{
    char db[512];
    snprintf(db, sizeof db, "%s/v1.db", tmp);
    const char *v1 =
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "c.execute('CREATE TABLE tracks (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER,"
        " genre TEXT, confidence REAL, model TEXT, time REAL)')\n"
        "c.execute(\"INSERT INTO tracks VALUES ('/old/a b.mp3', 4096, 1700000000, 'Disco', 0.5,"
        " 'oldmodel', 1700000001.5)\")\n"
        "c.execute(\"INSERT INTO tracks VALUES ('/old/\\u00e9.ogg', 1, 2, 'Pop', 0.25, NULL, NULL)\")\n"
        "c.execute('PRAGMA user_version = 1')\n"
        "c.commit()\n";
    int rc = run_python(python, v1, db);
    if (rc != 0) {
        printf("skipping the v1 migration check: %s could not write the v1 database (%d)\n",
               python, rc);
        return;
    }
    ErrMsg e;
    State *s = state_open(db, false, &e);
    CHECK(s, "open v1: %s", e.msg);
    if (!s) return;
    CHECK(state_schema_version(s) == STATE_SCHEMA_VERSION, "not migrated");
    StateRow row;
    CHECK(state_lookup(s, "/old/a b.mp3", &row, &e) == 1, "v1 row lost");
    CHECK(row.size == 4096 && row.mtime_ns == 1700000000LL * 1000000000LL &&
              strcmp(row.genre, "Disco") == 0 && strcmp(row.model, "oldmodel") == 0 &&
              row.time == 1700000001.5 && !row.previous_known && row.fingerprint[0] == '\0',
          "v1 row converted wrongly");
    state_row_clear(&row);
    CHECK(state_lookup(s, "/old/\xc3\xa9.ogg", &row, &e) == 1 && strcmp(row.model, "") == 0,
          "utf-8 v1 path");
    state_row_clear(&row);
    /* An unchanged file from v1 is still done (size/mtime match), so no work is repeated. */
    CHECK(state_needs_work(s, "/old/a b.mp3", 4096, 1700000000LL * 1000000000LL, NULL,
                           "oldmodel", &e) == 0,
          "v1 row not done");
    record(s, "/new.mp3", 1, 1, "", "Rock", "m");
    state_close(s);
    s = state_open(db, false, &e);
    CHECK(s && state_schema_version(s) == STATE_SCHEMA_VERSION, "reopen");
    state_close(s);

    snprintf(db, sizeof db, "%s/future.db", tmp);
    rc = run_python(python,
                    "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n"
                    "c.execute('CREATE TABLE x (y)')\nc.execute('PRAGMA user_version = 99')\n"
                    "c.commit()\n",
                    db);
    s = state_open(db, false, &e);
    CHECK(!s && strstr(e.msg, "newer"), "future schema accepted: %s", s ? "" : e.msg);
    state_close(s);
    CHECK(!state_open("/nonexistent/dir/x.db", false, &e), "opened a missing file");
}

static int count_rows(const StateRow *row, void *ud)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

/* v2 -> v4: a v2 file (as genred 0.1 wrote it) keeps its rows, gains the untagged mark at 0
 * and no undo record. */
static void test_migration_v2(const char *python)
{
    char db[512];
    snprintf(db, sizeof db, "%s/v2.db", tmp);
    const char *v2 =
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "c.executescript(\"CREATE TABLE tracks (path BLOB PRIMARY KEY NOT NULL,"
        " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, fingerprint TEXT NOT NULL DEFAULT '',"
        " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)), genre TEXT, confidence REAL,"
        " probs TEXT, model TEXT NOT NULL DEFAULT '', previous_genre TEXT,"
        " previous_known INTEGER NOT NULL DEFAULT 0, error TEXT, time REAL NOT NULL,"
        " runs INTEGER NOT NULL DEFAULT 1); CREATE INDEX tracks_time ON tracks(time);\")\n"
        "c.execute(\"INSERT INTO tracks VALUES (CAST('/v2/a.mp3' AS BLOB), 10, 20, 'fp', 0,"
        " 'Jazz', 0.5, 'jazz:0.500', 'mod', 'Blues', 1, NULL, 1700000000.0, 2)\")\n"
        "c.execute(\"INSERT INTO tracks VALUES (CAST('/v2/b.mp3' AS BLOB), 1, 2, '', 1,"
        " NULL, NULL, NULL, 'mod', NULL, 0, 'bad file', 1700000001.0, 1)\")\n"
        "c.execute('PRAGMA user_version = 2')\n"
        "c.commit()\n";
    int rc = run_python(python, v2, db);
    if (rc != 0) {
        printf("skipping the v2 migration check: %s could not write the v2 database (%d)\n",
               python, rc);
        return;
    }
    ErrMsg e;
    State *s = state_open(db, false, &e);
    CHECK(s, "open v2: %s", e.msg);
    if (!s) return;
    CHECK(state_schema_version(s) == STATE_SCHEMA_VERSION, "v2 not migrated");
    StateRow row;
    CHECK(state_lookup(s, "/v2/a.mp3", &row, &e) == 1, "v2 row lost");
    CHECK(row.size == 10 && row.mtime_ns == 20 && strcmp(row.genre, "Jazz") == 0 &&
              row.previous_known && strcmp(row.previous_genre, "Blues") == 0 && row.runs == 2 &&
              !row.excluded && !row.previous_undo && row.id == 1 && !row.artist && !row.corrected,
          "v2 row converted wrongly");
    state_row_clear(&row);
    CHECK(state_needs_work(s, "/v2/a.mp3", 10, 20, NULL, "mod", &e) == 0, "v2 row not done");
    StateCounts c;
    CHECK(state_counts(s, &c, &e) == 0 && c.total == 2 && c.ok == 1 && c.error == 1 &&
              c.excluded == 0,
          "v2 counts");
    state_close(s);
}

/* v3 -> v4: a v3 file keeps its rows and untagged marks, and has no undo records. */
static void test_migration_v3(const char *python)
{
    char db[512];
    snprintf(db, sizeof db, "%s/v3.db", tmp);
    const char *v3 =
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "c.executescript(\"CREATE TABLE tracks (path BLOB PRIMARY KEY NOT NULL,"
        " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, fingerprint TEXT NOT NULL DEFAULT '',"
        " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)), genre TEXT, confidence REAL,"
        " probs TEXT, model TEXT NOT NULL DEFAULT '', previous_genre TEXT,"
        " previous_known INTEGER NOT NULL DEFAULT 0, error TEXT, time REAL NOT NULL,"
        " runs INTEGER NOT NULL DEFAULT 1, untagged INTEGER NOT NULL DEFAULT 0"
        " CHECK (untagged IN (0, 1))); CREATE INDEX tracks_time ON tracks(time);\")\n"
        "c.execute(\"INSERT INTO tracks VALUES (CAST('/v3/a.mp3' AS BLOB), 10, 20, 'fp', 0,"
        " NULL, NULL, NULL, 'mod', 'Blues', 1, NULL, 1700000000.0, 2, 1)\")\n"
        "c.execute('PRAGMA user_version = 3')\n"
        "c.commit()\n";
    if (run_python(python, v3, db) != 0) {
        printf("skipping the v3 migration check: %s could not write the v3 database\n", python);
        return;
    }
    ErrMsg e;
    State *s = state_open(db, false, &e);
    CHECK(s, "open v3: %s", e.msg);
    if (!s) return;
    CHECK(state_schema_version(s) == STATE_SCHEMA_VERSION, "v3 not migrated");
    StateRow row;
    CHECK(state_lookup(s, "/v3/a.mp3", &row, &e) == 1, "v3 row lost");
    CHECK(row.excluded && row.previous_known && strcmp(row.previous_genre, "Blues") == 0 &&
              !row.previous_undo,
          "v3 row converted wrongly");
    state_row_clear(&row);
    state_close(s);
}

/* v4 -> v5: a v4 file keeps its rows and undo records; ids are the old rowids. */
static void test_migration_v4(const char *python)
{
    char db[512];
    snprintf(db, sizeof db, "%s/old-v4.db", tmp);
    const char *v4 =
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "c.executescript(\"CREATE TABLE tracks (path BLOB PRIMARY KEY NOT NULL,"
        " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, fingerprint TEXT NOT NULL DEFAULT '',"
        " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)), genre TEXT, confidence REAL,"
        " probs TEXT, model TEXT NOT NULL DEFAULT '', previous_genre TEXT,"
        " previous_known INTEGER NOT NULL DEFAULT 0, error TEXT, time REAL NOT NULL,"
        " runs INTEGER NOT NULL DEFAULT 1, untagged INTEGER NOT NULL DEFAULT 0"
        " CHECK (untagged IN (0, 1)), previous_undo TEXT); CREATE INDEX tracks_time ON tracks(time);\")\n"
        "c.execute(\"INSERT INTO tracks VALUES (CAST('/v4/a.mp3' AS BLOB), 10, 20, 'fp', 0,"
        " 'Rock', 0.5, 'rock:0.500', 'mod', 'Blues', 1, NULL, 1700000000.0, 2, 0, 'undo-record')\")\n"
        "c.execute(\"INSERT INTO tracks VALUES (CAST('/v4/b.mp3' AS BLOB), 1, 2, '', 0,"
        " 'Pop', 0.9, NULL, 'mod', NULL, 0, NULL, 1700000001.0, 1, 0, NULL)\")\n"
        "c.execute(\"DELETE FROM tracks WHERE path = CAST('/v4/a.mp3' AS BLOB)\")\n"
        "c.execute(\"INSERT INTO tracks VALUES (CAST('/v4/a.mp3' AS BLOB), 10, 20, 'fp', 0,"
        " 'Rock', 0.5, 'rock:0.500', 'mod', 'Blues', 1, NULL, 1700000000.0, 2, 0, 'undo-record')\")\n"
        "c.execute('PRAGMA user_version = 4')\n"
        "c.commit()\n";
    if (run_python(python, v4, db) != 0) {
        printf("skipping the v4 migration check: %s could not write the v4 database\n", python);
        return;
    }
    ErrMsg e;
    State *s = state_open(db, false, &e);
    CHECK(s, "open v4: %s", e.msg);
    if (!s) return;
    CHECK(state_schema_version(s) == STATE_SCHEMA_VERSION, "v4 not migrated");
    StateRow row;
    CHECK(state_lookup(s, "/v4/a.mp3", &row, &e) == 1 && row.previous_undo &&
              strcmp(row.previous_undo, "undo-record") == 0 && row.id == 3 &&
              strcmp(row.previous_genre, "Blues") == 0 && row.confidence == 0.5,
          "v4 row converted wrongly (id %lld)", (long long)row.id);
    state_row_clear(&row);
    CHECK(state_lookup_id(s, 2, &row, &e) == 1 && strcmp(row.path, "/v4/b.mp3") == 0,
          "v4 rowid 2 is not id 2");
    state_row_clear(&row);
    /* ids go on after the largest one */
    record(s, "/v4/c.mp3", 1, 1, "", "Pop", "m");
    CHECK(state_lookup(s, "/v4/c.mp3", &row, &e) == 1 && row.id == 4, "new id %lld", (long long)row.id);
    state_row_clear(&row);
    state_close(s);
}

static void test_exclude(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/exclude.db", tmp);
    ErrMsg e;
    State *s = state_open(db, true, &e);
    CHECK(s, "open: %s", e.msg);
    if (!s) return;
    const char *p = "/lib/untag me.mp3";
    StateResult r;
    result(&r, p, 100, 5, "fp100", "Rock", "m1");
    r.previous_genre = "Jazz";
    r.previous_known = true;
    CHECK(state_record_result(s, &r, &e) == 0, "record: %s", e.msg);
    /* Phase one (before the tag write): left alone whatever size/mtime the daemon sees. */
    CHECK(state_exclude(s, p, -1, -1, NULL, &e) == 0, "exclude: %s", e.msg);
    CHECK(state_needs_work(s, p, 90, 6, "fpX", "m1", &e) == 0, "untag in progress: re-queued");
    /* Phase two: the file as untag left it. */
    CHECK(state_exclude(s, p, 90, 7, "fp90", &e) == 0, "exclude: %s", e.msg);
    StateRow row;
    CHECK(state_lookup(s, p, &row, &e) == 1, "lookup");
    CHECK(row.excluded && !row.genre && row.previous_known &&
              strcmp(row.previous_genre, "Jazz") == 0 && row.size == 90,
          "excluded row wrong");
    state_row_clear(&row);
    CHECK(state_needs_work(s, p, 90, 7, "fp90", "m1", &e) == 0, "untagged file re-queued");
    CHECK(state_needs_work(s, p, 90, 7, "fp90", "a-new-model", &e) == 0,
          "untagged file re-queued for a new model");
    CHECK(state_needs_work(s, p, 90, 8, "fp90", "m1", &e) == 0, "a touch re-queued it");
    CHECK(state_needs_work(s, p, 90, 8, "fpNEW", "m1", &e) == 1, "new content not queued");
    CHECK(state_needs_work(s, p, 95, 7, NULL, "m1", &e) == 1, "new size not queued");
    /* Never seen before: untag of a `genred tag`ged file creates the row. */
    CHECK(state_exclude(s, "/lib/other.mp3", 1, 1, "fp1", &e) == 0, "exclude new: %s", e.msg);
    CHECK(state_needs_work(s, "/lib/other.mp3", 1, 1, "fp1", "m1", &e) == 0, "new row");
    StateCounts c;
    CHECK(state_counts(s, &c, &e) == 0 && c.total == 2 && c.ok == 0 && c.excluded == 2,
          "counts %lld %lld %lld", (long long)c.total, (long long)c.ok, (long long)c.excluded);
    int n = 0;
    CHECK(state_list(s, STATE_LIST_EXCLUDED, 0, count_rows, &n, &e) == 2 && n == 2, "list");
    /* Changed content classified again: the mark goes. */
    result(&r, p, 95, 9, "fp95", "Pop", "m1");
    CHECK(state_record_result(s, &r, &e) == 0, "record: %s", e.msg);
    CHECK(state_lookup(s, p, &row, &e) == 1 && !row.excluded && strcmp(row.genre, "Pop") == 0 &&
              strcmp(row.previous_genre, "Jazz") == 0,
          "result did not clear the mark");
    state_row_clear(&row);
    CHECK(state_record_error(s, "/lib/other.mp3", 2, 2, "fp2", "m1", "broken", &e) == 0, "err");
    CHECK(state_counts(s, &c, &e) == 0 && c.ok == 1 && c.error == 1 && c.excluded == 0,
          "counts after");
    state_close(s);
}

/* Child: writes rows crash-N, and renames a 100-row directory back and forth. Never returns. */
static void crash_writer(const char *db, int start)
{
    ErrMsg e;
    State *s = state_open(db, true, &e);
    if (!s) _exit(2);
    for (int i = start;; i++) {
        char path[64], genre[32], probs[64];
        snprintf(path, sizeof path, "/crash/%08d", i);
        snprintf(genre, sizeof genre, "g%d", i);
        snprintf(probs, sizeof probs, "p%d", i);
        StateResult r = {.path = path, .size = i, .mtime_ns = i, .fingerprint = genre,
                         .genre = genre, .confidence = i, .probs = probs, .model = "m"};
        if (state_record_result(s, &r, &e) != 0) _exit(3);
        if (i % 5 == 0) {
            StateRow row;
            int in_a = state_lookup(s, "/dir-a/000", &row, &e);
            if (in_a == 1) state_row_clear(&row);
            if (state_rename(s, in_a == 1 ? "/dir-a" : "/dir-b", in_a == 1 ? "/dir-b" : "/dir-a",
                             &e) != 100)
                _exit(4);
        }
    }
}

static int count_prefix(const StateRow *row, void *ud)
{
    int *n = ud;
    if (strncmp(row->path, "/dir-a/", 7) == 0) n[0]++;
    if (strncmp(row->path, "/dir-b/", 7) == 0) n[1]++;
    if (strncmp(row->path, "/crash/", 7) == 0) {
        int i = atoi(row->path + 7);
        char g[32];
        snprintf(g, sizeof g, "g%d", i);
        if (row->size != i || row->mtime_ns != i || strcmp(row->genre, g) != 0 ||
            strcmp(row->fingerprint, g) != 0 || row->confidence != i || row->probs[0] != 'p' ||
            atoi(row->probs + 1) != i)
            n[3]++;
        if (i + 1 > n[2]) n[2] = i + 1;
        n[4]++;
    }
    return 0;
}

static void test_crash(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/crash.db", tmp);
    ErrMsg e;
    State *s = state_open(db, true, &e);
    for (int i = 0; i < 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "/dir-a/%03d", i);
        record(s, p, 1, 1, "", "Rock", "m");
    }
    state_close(s);
    int next = 0;
    for (int round = 0; round < 4; round++) {
        pid_t pid = fork();
        if (pid == 0) crash_writer(db, next);
        /* Let it get going, then kill it wherever it is. */
        s = state_open(db, false, &e);
        StateCounts c = {0};
        for (int t = 0; t < 3000 && c.total < 100 + next + 30; t++) {
            usleep(10000);
            state_counts(s, &c, &e);
        }
        state_close(s);
        usleep((useconds_t)(rand() % 20000));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st), "writer failed early (status %d)", st);

        s = state_open(db, false, &e);
        CHECK(s, "reopen after kill: %s", e.msg);
        if (!s) return;
        CHECK(state_integrity_check(s, &e) == 0, "%s", e.msg);
        int n[5] = {0};
        state_list(s, STATE_LIST_ALL, 0, count_prefix, n, &e);
        CHECK((n[0] == 100 && n[1] == 0) || (n[0] == 0 && n[1] == 100),
              "a rename was half done: %d in a, %d in b", n[0], n[1]);
        CHECK(n[3] == 0, "%d inconsistent rows", n[3]);
        CHECK(n[4] == n[2] && n[2] > next, "rows 0..%d not contiguous (%d rows)", n[2], n[4]);
        next = n[2];
        state_close(s);
    }
    printf("crash test: %d rows written over 4 killed writers\n", next);
}

static void test_concurrent(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/conc.db", tmp);
    ErrMsg e;
    State *s = state_open(db, true, &e);
    state_close(s);
    const int N = 1500;
    pid_t pid = fork();
    if (pid == 0) {
        State *w = state_open(db, false, &e);
        if (!w) _exit(2);
        for (int i = 0; i < N; i++) {
            char p[32];
            snprintf(p, sizeof p, "/c/%05d", i);
            StateResult r = {.path = p, .size = i, .mtime_ns = i, .genre = "Pop", .model = "m"};
            if (state_record_result(w, &r, &e) != 0) _exit(3);
        }
        state_close(w);
        _exit(0);
    }
    s = state_open(db, false, &e);
    int64_t last = 0;
    int reads = 0, errors = 0, st;
    for (;;) {
        StateCounts c;
        if (state_counts(s, &c, &e) != 0) {
            errors++;
            fprintf(stderr, "reader: %s\n", e.msg);
        }
        CHECK(c.total >= last, "count went back %lld -> %lld", (long long)last, (long long)c.total);
        last = c.total;
        if (c.total > 0) {
            char p[32];
            snprintf(p, sizeof p, "/c/%05d", (int)(c.total - 1));
            StateRow row;
            int f = state_lookup(s, p, &row, &e);
            CHECK(f == 1 && row.size == c.total - 1, "lookup of a committed row");
            if (f == 1) state_row_clear(&row);
        }
        reads++;
        if (waitpid(pid, &st, WNOHANG) == pid) break;
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed: %d", st);
    StateCounts c;
    state_counts(s, &c, &e);
    CHECK(c.total == N && errors == 0, "total %lld, %d reader errors", (long long)c.total, errors);
    printf("concurrent: %d reads while %d rows were written\n", reads, N);
    state_close(s);
}

/* ---- v4: ids, artist, corrections, the library view ---- */

typedef struct Page {
    int64_t ids[2000];
    double keys[2000];
    int n;
} Page;

static int collect_page(const StateRow *row, void *ud)
{
    Page *p = ud;
    if (p->n < 2000) {
        p->ids[p->n] = row->id;
        p->keys[p->n] = row->confidence;
        p->n++;
    }
    return 0;
}

static int collect_time(const StateRow *row, void *ud)
{
    Page *p = ud;
    if (p->n < 2000) {
        p->ids[p->n] = row->id;
        p->keys[p->n] = row->time;
        p->n++;
    }
    return 0;
}

static int add_genre(const char *genre, int64_t n, double mean, void *ud)
{
    char *out = ud;
    size_t len = strlen(out);
    snprintf(out + len, 512 - len, "%s=%lld(%.2f);", genre, (long long)n, mean);
    return 0;
}

static void test_v4(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/v4.db", tmp);
    ErrMsg e;
    State *s = state_open(db, true, &e);
    CHECK(s, "open: %s", e.msg);
    if (!s) return;
    /* ids: never reused, kept through a result and a rename */
    StateResult r;
    result(&r, "/v4/a.mp3", 1, 1, "", "Rock", "m");
    r.artist = "The Band";
    CHECK(state_record_result(s, &r, &e) == 0, "record: %s", e.msg);
    record(s, "/v4/b.mp3", 1, 1, "", "Pop", "m");
    StateRow row;
    CHECK(state_lookup(s, "/v4/b.mp3", &row, &e) == 1 && row.id == 2 && !row.artist, "id 2");
    state_row_clear(&row);
    CHECK(state_forget(s, "/v4/b.mp3", &e) == 1, "forget");
    record(s, "/v4/c.mp3", 1, 1, "", "Pop", "m");
    CHECK(state_lookup(s, "/v4/c.mp3", &row, &e) == 1 && row.id == 3, "deleted id reused: %lld",
          (long long)row.id);
    state_row_clear(&row);
    CHECK(state_lookup_id(s, 2, &row, &e) == 0, "a forgotten id still found");
    CHECK(state_rename(s, "/v4/c.mp3", "/v4/d.mp3", &e) == 1, "rename");
    CHECK(state_lookup_id(s, 3, &row, &e) == 1 && strcmp(row.path, "/v4/d.mp3") == 0,
          "id lost in a rename");
    state_row_clear(&row);
    /* the artist: kept by a result that does not know it (NULL), replaced by one that does */
    result(&r, "/v4/a.mp3", 2, 2, "", "Rock", "m");
    CHECK(state_record_result(s, &r, &e) == 0, "record");
    CHECK(state_lookup_id(s, 1, &row, &e) == 1 && row.artist && strcmp(row.artist, "The Band") == 0,
          "artist lost: %s", row.artist ? row.artist : "NULL");
    state_row_clear(&row);
    r.artist = "";
    CHECK(state_record_result(s, &r, &e) == 0, "record");
    CHECK(state_lookup_id(s, 1, &row, &e) == 1 && !row.artist, "empty artist not cleared");
    state_row_clear(&row);

    /* corrections: the file had hand-set "Blues" before genred; genred tagged it Rock; the
     * page corrects it to Jazz. Untag must still restore Blues, also after later results that
     * find the file still holding Jazz; a genre the user sets afterwards ends the correction. */
    result(&r, "/v4/e.mp3", 10, 10, "", "Rock", "m");
    r.previous_genre = "Blues";
    r.previous_known = true;
    CHECK(state_record_result(s, &r, &e) == 0, "record");
    CHECK(state_lookup(s, "/v4/e.mp3", &row, &e) == 1, "lookup");
    int64_t id = row.id;
    state_row_clear(&row);
    CHECK(state_record_correction(s, id, "Jazz", 11, 11, "fp", NULL, &e) == 1, "correct: %s",
          e.msg);
    CHECK(state_record_correction(s, 9999, "Jazz", 11, 11, "fp", NULL, &e) == 0, "no such id");
    CHECK(state_lookup_id(s, id, &row, &e) == 1 && row.corrected &&
              strcmp(row.corrected, "Jazz") == 0 && strcmp(row.genre, "Rock") == 0 &&
              row.previous_known && strcmp(row.previous_genre, "Blues") == 0 && row.size == 11 &&
              strcmp(row.fingerprint, "fp") == 0,
          "correction recorded wrongly");
    state_row_clear(&row);
    CHECK(state_needs_work(s, "/v4/e.mp3", 11, 11, NULL, "m", &e) == 0,
          "a corrected file needs work");
    /* a new model's result: the file still holds Jazz (hand-set), so nothing changes */
    result(&r, "/v4/e.mp3", 11, 11, "", "Metal", "m2");
    r.previous_genre = "Jazz";
    r.previous_known = true;
    CHECK(state_record_result(s, &r, &e) == 0, "record");
    CHECK(state_lookup_id(s, id, &row, &e) == 1 && row.corrected &&
              strcmp(row.corrected, "Jazz") == 0 && strcmp(row.previous_genre, "Blues") == 0 &&
              strcmp(row.genre, "Metal") == 0,
          "a later result lost the correction: corrected %s previous %s",
          row.corrected ? row.corrected : "NULL", row.previous_genre ? row.previous_genre : "NULL");
    state_row_clear(&row);
    /* the user set Funk by hand since: the correction is over, Funk is theirs */
    r.previous_genre = "Funk";
    CHECK(state_record_result(s, &r, &e) == 0, "record");
    CHECK(state_lookup_id(s, id, &row, &e) == 1 && !row.corrected &&
              strcmp(row.previous_genre, "Funk") == 0,
          "a user's own genre kept the correction");
    state_row_clear(&row);
    /* a file whose genred genre is corrected with no known genre from before: the hand-set
     * genre it had before the write becomes the one to restore, unless genred's own */
    record(s, "/v4/f.mp3", 1, 1, "", "Pop", "m");
    CHECK(state_lookup(s, "/v4/f.mp3", &row, &e) == 1, "lookup");
    id = row.id;
    state_row_clear(&row);
    CHECK(state_record_correction(s, id, "Soul", 2, 2, "", NULL, &e) == 1, "correct");
    CHECK(state_lookup_id(s, id, &row, &e) == 1 && !row.previous_known, "previous invented");
    state_row_clear(&row);
    CHECK(state_record_correction(s, id, "Funk", 3, 3, "", "Soul", &e) == 1, "correct");
    CHECK(state_lookup_id(s, id, &row, &e) == 1 && row.previous_known &&
              strcmp(row.previous_genre, "Soul") == 0 && strcmp(row.corrected, "Funk") == 0,
          "hand-set genre before a correction not kept");
    state_row_clear(&row);
    /* untag ends a correction */
    CHECK(state_exclude(s, "/v4/f.mp3", 3, 3, "", &e) == 0, "exclude");
    CHECK(state_lookup_id(s, id, &row, &e) == 1 && !row.corrected && row.excluded,
          "untag kept the correction");
    state_row_clear(&row);
    state_close(s);

    /* the library view on 1200 rows: every filter/sort/search, paged by key, against a brute
     * force over what the rows were given */
    snprintf(db, sizeof db, "%s/view.db", tmp);
    s = state_open(db, true, &e);
    if (!s) return;
    enum { N = 1200 };
    static const char *const genres[] = {"Rock", "Pop", "Jazz", "Hip-Hop"};
    static struct {
        int64_t id;
        int status;   /* 0 ok, 1 error, 2 untagged */
        double conf;
        const char *genre;
        char path[64];
        int corrected, artist_x;
    } want[N];
    for (int i = 0; i < N; i++) {
        snprintf(want[i].path, sizeof want[i].path, "/lib/%s/%04d%s.flac",
                 i % 7 == 0 ? "Sub_dir%" : "dir", (i * 7919) % N, i % 11 == 0 ? "_live" : "");
        want[i].genre = genres[i % 4];
        /* ties on purpose: 1200 rows, 300 distinct confidences */
        want[i].conf = ((i * 37) % 300) / 300.0;
        want[i].status = i % 13 == 0 ? 1 : i % 17 == 0 ? 2 : 0;
        want[i].artist_x = i % 5 == 0;
        want[i].corrected = want[i].status == 0 && i % 19 == 0;
        result(&r, want[i].path, i, i, "", want[i].genre, "m");
        r.confidence = want[i].conf;
        r.artist = want[i].artist_x ? "Xtc Band" : "Other";
        if (state_record_result(s, &r, &e) != 0) break;
        if (want[i].status == 1)
            state_record_error(s, want[i].path, i, i, "", "m", "broken", &e);
        if (want[i].status == 2) state_exclude(s, want[i].path, i, i, "", &e);
        state_lookup(s, want[i].path, &row, &e);
        want[i].id = row.id;
        state_row_clear(&row);
        if (want[i].corrected) state_record_correction(s, want[i].id, "Soul", i, i, "", NULL, &e);
    }
    char counts[512] = "";
    CHECK(state_genre_counts(s, add_genre, counts, &e) == 5, "genres: %s", counts);
    printf("genre counts: %s\n", counts);
    int n_soul = 0, n_ok = 0;
    for (int i = 0; i < N; i++) {
        n_soul += want[i].corrected;
        n_ok += want[i].status == 0;
    }
    char soul[32];
    snprintf(soul, sizeof soul, ";Soul=%d(", n_soul);
    CHECK(strstr(counts, soul), "corrected genre not counted (%s): %s", soul, counts);
    int sum = 0;
    for (const char *c = counts; (c = strchr(c, '=')); c++) sum += atoi(c + 1);
    CHECK(sum == n_ok, "genre counts add up to %d, %d rows have a result", sum, n_ok);
    struct {
        int filter, sort;
        const char *genre, *search;
    } cases[] = {
        {STATE_FILTER_OK, STATE_SORT_CONFIDENCE, NULL, NULL},
        {STATE_FILTER_ALL, STATE_SORT_CONFIDENCE, "Jazz", NULL},
        {STATE_FILTER_OK, STATE_SORT_CONFIDENCE, "Soul", NULL},
        {STATE_FILTER_ALL, STATE_SORT_PATH, NULL, "xtc"},
        {STATE_FILTER_OK, STATE_SORT_PATH, NULL, "_LIVE"},
        {STATE_FILTER_ALL, STATE_SORT_PATH, NULL, "sub_dir%"},
        {STATE_FILTER_ERROR, STATE_SORT_RECENT, NULL, NULL},
        {STATE_FILTER_UNTAGGED, STATE_SORT_PATH, NULL, NULL},
        {STATE_FILTER_CORRECTED, STATE_SORT_CONFIDENCE, NULL, "soul"},
        {STATE_FILTER_ALL, STATE_SORT_RECENT, "Pop", "dir"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* brute force: which ids match */
        int match = 0;
        for (int i = 0; i < N; i++) {
            const char *shown = want[i].corrected ? "Soul" : want[i].genre;
            int f = cases[c].filter;
            int ok = f == STATE_FILTER_ALL || (f == STATE_FILTER_OK && want[i].status == 0) ||
                     (f == STATE_FILTER_ERROR && want[i].status == 1) ||
                     (f == STATE_FILTER_UNTAGGED && want[i].status == 2) ||
                     (f == STATE_FILTER_CORRECTED && want[i].corrected);
            if (cases[c].sort == STATE_SORT_CONFIDENCE && want[i].status == 2) ok = 0;
            if (cases[c].genre && (want[i].status == 2 || strcmp(shown, cases[c].genre))) ok = 0;
            if (cases[c].search) {
                const char *q = cases[c].search;
                int hit = strcasestr(want[i].path, q) || (want[i].artist_x && strcasestr("Xtc Band", q)) ||
                          (!want[i].artist_x && strcasestr("Other", q)) ||
                          (want[i].status != 2 && strcasestr(shown, q));
                if (!hit) ok = 0;
            }
            match += ok;
        }
        Page all = {.n = 0};
        StateQuery q = {.filter = cases[c].filter, .sort = cases[c].sort, .genre = cases[c].genre,
                        .search = cases[c].search, .limit = 37};
        int64_t total = -1;
        for (int pages = 0; pages < 200; pages++) {
            Page p = {.n = 0};
            int got = state_query(s, &q, cases[c].sort == STATE_SORT_RECENT ? collect_time
                                                                             : collect_page,
                                  &p, pages == 0 ? &total : NULL, &e);
            CHECK(got >= 0, "query: %s", e.msg);
            if (got <= 0) break;
            memcpy(all.ids + all.n, p.ids, (size_t)p.n * sizeof p.ids[0]);
            memcpy(all.keys + all.n, p.keys, (size_t)p.n * sizeof p.keys[0]);
            all.n += p.n;
            q.after_id = p.ids[p.n - 1];
            q.after_key = p.keys[p.n - 1];
        }
        CHECK(all.n == match && total == match, "case %zu: %d rows paged, total %lld, want %d", c,
              all.n, (long long)total, match);
        /* no row twice, and in order */
        for (int i = 1; i < all.n; i++) {
            if (cases[c].sort == STATE_SORT_CONFIDENCE)
                CHECK(all.keys[i - 1] < all.keys[i] ||
                          (all.keys[i - 1] == all.keys[i] && all.ids[i - 1] < all.ids[i]),
                      "case %zu: out of order at %d", c, i);
            else if (cases[c].sort == STATE_SORT_RECENT)
                CHECK(all.keys[i - 1] > all.keys[i] ||
                          (all.keys[i - 1] == all.keys[i] && all.ids[i - 1] > all.ids[i]),
                      "case %zu: out of order at %d", c, i);
            for (int j = 0; j < i; j++)
                if (all.ids[j] == all.ids[i]) {
                    CHECK(0, "case %zu: id %lld twice", c, (long long)all.ids[i]);
                    i = all.n;
                    break;
                }
        }
        if (cases[c].sort == STATE_SORT_PATH && all.n > 1) {
            StateRow a, b;
            state_lookup_id(s, all.ids[0], &a, &e);
            state_lookup_id(s, all.ids[all.n - 1], &b, &e);
            CHECK(strcmp(a.path, b.path) < 0, "case %zu: path order", c);
            state_row_clear(&a);
            state_row_clear(&b);
        }
    }
    StateQuery bad = {.filter = 9, .limit = 10};
    CHECK(state_query(s, &bad, collect_page, NULL, NULL, &e) < 0, "a bad filter accepted");
    bad = (StateQuery){.limit = 0};
    CHECK(state_query(s, &bad, collect_page, NULL, NULL, &e) < 0, "limit 0 accepted");
    state_close(s);
}

int main(int argc, char **argv)
{
    const char *python = argc > 1 ? argv[1] : "/usr/bin/python3";
    snprintf(tmp, sizeof tmp, "%s/genred-state-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_basics();
    test_forget_rename_list();
    test_fingerprint();
    test_migration(python);
    test_migration_v2(python);
    test_migration_v3(python);
    test_migration_v4(python);
    test_exclude();
    test_v4();
    test_crash();
    test_concurrent();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("state: all checks passed\n");
    return 0;
}
