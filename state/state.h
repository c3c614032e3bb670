/* state: the daemon's memory of what it has done, in SQLite (DESIGN.md §7).
 *
 * What it is: one row per track (path as a BLOB, so any bytes a file name may hold survive),
 * with the size, mtime and content fingerprint seen when the result was recorded, the result
 * (genre, confidence, all probabilities, model id), the genre that was there before genred,
 * an ok/error status, and an untagged mark (`genred untag`: leave the file alone until its
 * content changes). It answers "does this file need work?" so a restart, a rescan or the
 * inotify events of genred's own tag writes cause no repeated work, and it feeds `genred status`
 * and `genred untag`.
 *
 * What it is not: a queue or a cache of audio features. It is the only module that includes
 * sqlite3.h.
 *
 * Invariants: the database is in WAL mode with a schema version in PRAGMA user_version, migrated
 * forward on open (state_migrate); every write is one transaction, so a process killed at any
 * moment leaves each row either fully written or absent. A State handle belongs to one thread;
 * several processes/handles may use the same file at once (readers never block the writer).
 * Record a result with the size/mtime/fingerprint of the file AFTER the tags were written, so
 * the events of that write find the file done. */
#ifndef GENRED_STATE_H
#define GENRED_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define STATE_SCHEMA_VERSION 5
#define STATE_FINGERPRINT_SIZE 33 /* 32 hex digits + NUL */

enum StateStatus { STATE_OK = 0, STATE_ERROR = 1 };

typedef struct StateRow {
    char *path;
    int64_t size;
    int64_t mtime_ns;
    char fingerprint[STATE_FINGERPRINT_SIZE];
    enum StateStatus status;
    char *genre;          /* NULL for an error row that never had a result */
    double confidence;
    char *probs;          /* "rock:0.812,metal:0.104,..." every label, or NULL */
    char *model;          /* model id */
    char *previous_genre; /* meaningful when previous_known */
    bool previous_known;  /* we saw the file's genre before genred first wrote one */
    char *previous_undo;  /* the tagger's record of those genre items (tagger_write), or NULL */
    char *error;          /* status == STATE_ERROR: the reason */
    double time;          /* unix seconds of the last record */
    int64_t runs;         /* results + errors recorded for this path */
    bool excluded;        /* `genred untag`ged: left alone until its content changes */
    int64_t id;           /* never reused: how the web page names a track */
    char *artist;         /* from the file's tags when the result was recorded, or NULL */
    char *corrected;      /* the genre set from the web page (hand-set, in the file), or NULL;
                           * shown instead of genre while the file still holds it */
} StateRow;

typedef struct State State;

/* Opens (creating the file and its parent directory when create is true), switches to WAL and
 * migrates the schema. A database newer than this program is refused; without create, a
 * missing file is "no state database yet". */
State *state_open(const char *path, bool create, ErrMsg *e);
void state_close(State *s);

/* Brings the schema to STATE_SCHEMA_VERSION in one transaction: version 0 (empty file) gets the
 * tables, version 1 (path TEXT, mtime in seconds, no fingerprint/probs/previous genre/status)
 * is converted, version 2 gets the `excluded` column (0 for every row), version 3 the
 * `previous_undo` column (NULL for every row), version 4 is copied into the v5 table (id,
 * artist, corrected; ids = the old rowids) with the library view's indexes. Called by state_open;
 * public for tests. */
int state_migrate(State *s, ErrMsg *e);
int state_schema_version(State *s);

/* Cheap content fingerprint: SHA-256 over the size, the first 64 KiB and the last 64 KiB,
 * first 16 bytes in hex. Changes when audio or tags change; survives copy and touch. */
int state_fingerprint(const char *path, char out[STATE_FINGERPRINT_SIZE], ErrMsg *e);

/* Fills *row (free with state_row_clear). Returns 1 found, 0 not found, -1 error. */
int state_lookup(State *s, const char *path, StateRow *row, ErrMsg *e);
void state_row_clear(StateRow *row);

/* 1 when the file needs work, 0 when it is done for this content and model, -1 on error.
 * Done means: a row for the path with the same model id, and either the same size and mtime,
 * or (fingerprint not NULL) the same size and fingerprint (a copy or a touch). Error rows count
 * as done for the same content and model: retrying would fail the same way. An excluded row
 * (state_exclude) is done for the same content whatever the model, and while its untag is
 * still being written (size < 0). */
int state_needs_work(State *s, const char *path, int64_t size, int64_t mtime_ns,
                     const char *fingerprint, const char *model, ErrMsg *e);

typedef struct StateResult {
    const char *path;
    int64_t size, mtime_ns;
    const char *fingerprint;
    const char *genre;
    double confidence;
    const char *probs;
    const char *model;
    /* The genre in the file before this write. When previous_known is false (the file's genre
     * was genred's own), a previous genre already stored is kept: untag goes back to the
     * genre from before genred's FIRST write. */
    const char *previous_genre;
    bool previous_known;
    /* With previous_known: the tagger's undo record of that write (tagger_write), kept by the
     * same rule as previous_genre; NULL when there is none. */
    const char *previous_undo;
    const char *artist; /* from the file's tags ("" none); NULL: keep the stored one */
} StateResult;

/* Both clear the excluded mark: the file changed and was classified again. A result keeps the
 * web page's correction (and the genre from before genred) while previous_genre shows the file
 * still holds the corrected genre; otherwise the correction is forgotten. */
int state_record_result(State *s, const StateResult *r, ErrMsg *e);
/* Marks the path failed with a reason; keeps the last result and the previous genre. */
int state_record_error(State *s, const char *path, int64_t size, int64_t mtime_ns,
                       const char *fingerprint, const char *model, const char *error, ErrMsg *e);

/* Marks path excluded (`genred untag`): genred leaves the file alone until its content changes.
 * Creates the row when there is none; keeps the previous genre; drops the result (genre,
 * confidence, probabilities, error). Call it twice: with size -1 before the untag's tag write
 * (so a running daemon leaves the file alone meanwhile), then with the size, mtime and
 * fingerprint after it. */
int state_exclude(State *s, const char *path, int64_t size, int64_t mtime_ns,
                  const char *fingerprint, ErrMsg *e);

/* Drops the row of path and the rows of everything below path/ (a deleted directory).
 * Returns the number of rows removed, -1 on error. */
int state_forget(State *s, const char *path, ErrMsg *e);
/* Moves the row of old_path (and rows below old_path/) to new_path, replacing rows there.
 * Returns the number of rows moved, -1 on error. */
int state_rename(State *s, const char *old_path, const char *new_path, ErrMsg *e);

/* The paths of the ok, not excluded rows whose result came from model (a model id), sorted;
 * *paths (malloc'd, each entry too) gets *n entries. For `genred finetune --retag`. */
int state_paths_with_model(State *s, const char *model, char ***paths, size_t *n, ErrMsg *e);

/* The row whose id is id (StateRow.id). Returns 1 found, 0 not found, -1 error. */
int state_lookup_id(State *s, int64_t id, StateRow *row, ErrMsg *e);

/* A genre set by hand from the web page on the track with this id: recorded as `corrected` with
 * the file's size, mtime and fingerprint after the tag write (so the daemon finds it done).
 * before_handset: the file's genre before the write when it was hand-set (no
 * GENRED_CONFIDENCE), NULL when it was genred's own; it becomes the genre untag restores unless
 * the row already knows the one from before genred. Returns 1 done, 0 no such id, -1 error. */
int state_record_correction(State *s, int64_t id, const char *genre, int64_t size,
                            int64_t mtime_ns, const char *fingerprint, const char *before_handset,
                            ErrMsg *e);

/* The library view (the web page): a filtered, sorted page of rows. Paging is by key (the last
 * row's sort key and id), so page 1000 costs what page 1 does. */
enum StateFilter {
    STATE_FILTER_ALL = 0,
    STATE_FILTER_OK = 1,       /* a result, not untagged */
    STATE_FILTER_ERROR = 2,    /* failed, not untagged */
    STATE_FILTER_UNTAGGED = 3, /* `genred untag`ged */
    STATE_FILTER_CORRECTED = 4 /* genre set from the web page */
};
enum StateSort {
    STATE_SORT_CONFIDENCE = 0, /* least sure first; rows without a confidence are left out */
    STATE_SORT_RECENT = 1,     /* newest first */
    STATE_SORT_PATH = 2        /* by path bytes */
};
typedef struct StateQuery {
    int filter;         /* enum StateFilter */
    int sort;           /* enum StateSort */
    const char *genre;  /* only rows showing this genre (coalesce(corrected, genre)); NULL: any */
    const char *search; /* substring of path, artist or shown genre, ASCII case-insensitive;
                         * NULL or "": any */
    int limit;          /* rows per page, 1..1000 */
    int64_t after_id;   /* > 0: the page after the row with this id (the last of the previous
                         * page); after_key is its confidence or time (ignored for path) */
    double after_key;
} StateQuery;
/* Calls fn for each row of the page (valid during the call only). *total (when not NULL) gets
 * the number of rows matching filter, genre and search over all pages. Returns the rows visited,
 * -1 on error (a bad query included). */
int state_query(State *s, const StateQuery *q, int (*fn)(const StateRow *row, void *ud),
                void *ud, int64_t *total, ErrMsg *e);

/* Rows with a result (ok, not untagged) per shown genre, most first: fn(genre, count, mean
 * confidence, ud). Returns the number of genres or -1. */
int state_genre_counts(State *s, int (*fn)(const char *genre, int64_t n, double mean_conf, void *ud),
                       void *ud, ErrMsg *e);

/* PRAGMA integrity_check: 0 when the database is sound, -1 with the first problem. */
int state_integrity_check(State *s, ErrMsg *e);

typedef struct StateCounts {
    int64_t total, ok, error; /* ok and error do not count excluded rows */
    int64_t excluded;
} StateCounts;
int state_counts(State *s, StateCounts *c, ErrMsg *e);

enum StateList {
    STATE_LIST_RECENT = 0,  /* newest first, every row */
    STATE_LIST_ERRORS = 1,  /* newest first, failed (not excluded) rows */
    STATE_LIST_ALL = 2,     /* by path */
    STATE_LIST_EXCLUDED = 3 /* newest first, excluded rows */
};
/* Calls fn for up to limit rows (limit <= 0: no limit), newest first (ALL: by path). The row is
 * valid during the call only. fn returns non-zero to stop. Returns rows visited or -1. */
int state_list(State *s, enum StateList which, int limit,
               int (*fn)(const StateRow *row, void *ud), void *ud, ErrMsg *e);

#endif
