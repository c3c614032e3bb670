/* watch: inotify over library folders, turned into "this file is ready" events.
 *
 * What it is: recursive directory watches (directories only, never one per file); a file is
 * ready after IN_CLOSE_WRITE or IN_MOVED_TO once it has been quiet for debounce_ms (later
 * writes, closes or moves of the same path merge into one report, issued debounce_ms after the
 * last of them). New and moved-in directories are watched and scanned, so files already inside
 * are reported too; deleted and moved-away directories are dropped and reported. Names starting
 * with '.' are ignored (hidden files, rsync/browser temp files that are renamed when done).
 * Lost events are never silent: IN_Q_OVERFLOW, ENOSPC from inotify_add_watch (the watch limit)
 * and an unexpected IN_IGNORED produce WATCH_RESCAN events and a log line saying what to raise.
 *
 * What it is not: it reads no audio and knows no state database; a rescan (comparing the files
 * under a path with what the state database knows) is the caller's job. No threads, no busy
 * loop: poll watch_fd() for reading with watch_timeout_ms(), then call watch_process() and
 * drain watch_next().
 *
 * Invariants: one thread owns a Watch. Paths are the root as given plus names as the kernel
 * reports them (bytes, no encoding assumed). */
#ifndef GENRED_WATCH_H
#define GENRED_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"

enum WatchKind {
    WATCH_READY,       /* path: a regular file, complete and quiet */
    WATCH_REMOVED,     /* path: a file deleted or moved away */
    WATCH_DIR_REMOVED, /* path: a directory deleted or moved away, with all below it */
    WATCH_RESCAN,      /* path: events under it may have been lost; compare it with the state */
};

typedef struct WatchEvent {
    enum WatchKind kind;
    const char *path; /* valid until the next watch_next() or watch_free() */
} WatchEvent;

typedef struct Watch Watch;

Watch *watch_new(int debounce_ms, ErrMsg *e);
void watch_free(Watch *w);

/* Watches dir and every directory below it. With report_existing, the regular files found are
 * reported as WATCH_READY (after the debounce) as if they had just arrived; the daemon's start-up
 * catch-up usually scans against the state itself and passes false. Fails when dir is not a
 * directory or cannot be watched at all. */
int watch_add(Watch *w, const char *dir, bool report_existing, ErrMsg *e);

/* The inotify fd (non-blocking), to poll for reading. */
int watch_fd(const Watch *w);
/* Milliseconds until watch_next() has something (0: now), -1 when nothing is pending. */
int watch_timeout_ms(const Watch *w);
/* Reads every queued inotify event without blocking. Returns the number read, -1 on error. */
int watch_process(Watch *w, ErrMsg *e);
/* Next event that is due; false when none is (yet). */
bool watch_next(Watch *w, WatchEvent *ev);

size_t watch_dir_count(const Watch *w); /* directories watched */
size_t watch_pending(const Watch *w);   /* files waiting to be quiet */

/* For tests: the next watch_process() throws away what it reads and acts as on IN_Q_OVERFLOW. */
void watch_debug_force_overflow(Watch *w);
/* For tests: inotify_add_watch fails with ENOSPC once this many directories are watched
 * (0: the kernel's limit only). */
void watch_debug_limit_watches(Watch *w, size_t max);

#endif
