/* hooks: runs the user's hook programs once per tagging result (DESIGN.md §8).
 *
 * What it is: a small process supervisor. For every submitted result it runs the executables of
 * the hooks directory (name order, byte-wise; dotfiles, names ending in '~' and non-executables
 * skipped) and then the configured commands, one after another for that result, with the track
 * path as the last argument (argv[1] for a directory hook or a one-word command) and the result in
 * the environment (GENRED_PATH, GENRED_GENRE, GENRED_CONFIDENCE, GENRED_TOP,
 * GENRED_PREVIOUS_GENRE, GENRED_MODEL, GENRED_EVENT) on top of the inherited environment.
 * Programs are started with posix_spawn: no shell ever sees a file name. Each hook runs in its
 * own process group with stdin from /dev/null and stdout+stderr on a pipe whose lines go to the
 * log as "hook NAME: line".
 *
 * What it is not: a shell, a job scheduler or thread-safe. One thread owns a Hooks; it installs
 * no signal handlers (child exits are seen through pidfds, so SIGCHLD may stay default or be
 * blocked for a signalfd; children get an empty signal mask and default dispositions).
 *
 * Invariants: at most max_running hooks are alive at once; results are started in submission
 * order; the hooks of one result run in order, never overlapping; a hook that outlives timeout_ms
 * gets SIGTERM (to its process group), and SIGKILL grace_ms later. Failures (exec failure,
 * non-zero exit, death by signal, timeout) are logged and counted, never returned as errors.
 *
 * Event-loop use: hooks_submit() queues (and starts what the bound allows); poll hooks_fd() for
 * reading with hooks_timeout_ms() as the timeout, and call hooks_dispatch() when it is readable
 * or the timeout passed. hooks_run_all() is the blocking loop for the command line. */
#ifndef GENRED_HOOKS_H
#define GENRED_HOOKS_H

#include <stddef.h>

#include "common.h"

/* GENRED_EVENT: tagged, unchanged, error, corrected (a genre set by hand on the web page:
 * GENRED_GENRE is the new genre, GENRED_PREVIOUS_GENRE the file's genre before it,
 * GENRED_CONFIDENCE empty). */
enum HooksEvent { HOOKS_TAGGED = 0, HOOKS_UNCHANGED = 1, HOOKS_ERROR = 2, HOOKS_CORRECTED = 3 };

typedef struct HooksOptions {
    const char *dir;                    /* hooks.d; NULL or missing directory: none */
    const char *const *const *commands; /* n_commands argv vectors, each NULL-terminated */
    size_t n_commands;
    int timeout_ms;  /* per hook; <= 0 means 30000 */
    int grace_ms;    /* SIGTERM -> SIGKILL; <= 0 means 2000 */
    int max_running; /* hooks alive at once; <= 0 means 1 */
} HooksOptions;

/* One result. Strings are copied by hooks_submit; NULL strings become empty variables. */
typedef struct HooksResult {
    const char *path;
    enum HooksEvent event;
    const char *genre;          /* display name written, or the one kept */
    double confidence;          /* formatted "%.3f"; ignored for HOOKS_ERROR and _CORRECTED */
    const char *top;            /* "rock:0.812,metal:0.104,blues:0.031" (hooks_format_top) */
    const char *previous_genre; /* the genre before genred, "" when there was none */
    const char *model;          /* model id: first 12 hex digits of its SHA-256 */
} HooksResult;

typedef struct HooksStats {
    unsigned long started;   /* processes spawned */
    unsigned long succeeded; /* exited 0 */
    unsigned long failed;    /* exec failure, non-zero exit, signal or timeout */
    unsigned long timed_out; /* subset of failed that hit the timeout */
} HooksStats;

typedef struct Hooks Hooks;

/* Copies the options. Fails only when the kernel refuses an epoll fd. */
Hooks *hooks_new(const HooksOptions *opt, ErrMsg *e);
/* Kills (SIGKILL) and reaps whatever still runs, drops the queue. */
void hooks_free(Hooks *h);

/* Queues the hooks for one result; the hooks directory is listed now, so hooks added to it take
 * effect from the next result on. Returns the number of hooks queued (0 when there are none). */
int hooks_submit(Hooks *h, const HooksResult *r);

/* An fd that polls readable when a running hook wrote output or exited. */
int hooks_fd(const Hooks *h);
/* Milliseconds until the next timeout action is due (0 when overdue), -1 when nothing runs. */
int hooks_timeout_ms(const Hooks *h);
/* Never blocks: collects output, reaps exited hooks, enforces timeouts, starts queued hooks. */
void hooks_dispatch(Hooks *h);
/* Hooks running now / queued or running. */
size_t hooks_running(const Hooks *h);
size_t hooks_pending(const Hooks *h);
/* Blocks until every queued hook has finished. */
void hooks_run_all(Hooks *h);

HooksStats hooks_stats(const Hooks *h);

/* Formats the k most probable labels, "rock:0.812,metal:0.104", into buf (always terminated;
 * truncated at a whole entry). Returns buf. */
char *hooks_format_top(char *buf, size_t size, const char *const *labels, const float *probs,
                       size_t n, size_t k);

#endif
