/* daemon: the `genred watch` event loop: keeps the configured libraries tagged with no one
 * watching (DESIGN.md §1, §6–§9).
 *
 * What it is: one epoll loop (redis style) over the inotify watcher, a second inotify fd on the
 * model file's folder, a signalfd (SIGTERM, SIGINT, SIGHUP), one timerfd (debounce, batch wait,
 * model file debounce, hook timeouts, systemd watchdog), the hooks' fd and an eventfd that a
 * batch thread writes when its batch is done. Signals only set flags; the loop does the work.
 * With nothing to do it sleeps in epoll_wait with no timeout (0 wakeups/s), after
 * one last wakeup 10 s into its idleness that hands memory back (freed heap, and the shared
 * libraries' code pages no other process maps, with MADV_PAGEOUT): idle RSS is about the model,
 * the relocated library data and the loop, not the last batch's peak.
 * Start-up and every rescan walk the libraries and queue only what the state database says needs
 * work (size, mtime, fingerprint, model id). Queued files (deduplicated) run in batches through
 * pipeline_classify on ONE batch thread at a time; that thread writes the tags and records each
 * result (with the size/mtime/fingerprint taken after the tag write, so the inotify events of our
 * own writes find the file done) before the loop may start the next batch; the loop then runs
 * the hooks. A file whose GENRED_MODEL tag already names the current model but which the state
 * does not know as done (a kill -9 between tag write and record, a moved file, or `genred tag`
 * with the same model) is recorded from its tags without being classified or written again.
 *
 * What it is not: a library for other modules, or a forking daemon (systemd or the shell keeps
 * it in the background; logs go to stderr).
 *
 * Invariants: the model, the main State handle, the watcher and the hooks belong to the loop's
 * thread; the batch thread uses its own State handle and reads the model only while the loop
 * waits for it (a reload happens between batches). SIGHUP reloads the config and the model
 * without dropping queued files; a replaced model file (renamed over, or written and closed, then
 * quiet for 0.5 s) reloads the model alone, the same way, and a new model id re-tags the
 * libraries. SIGTERM/SIGINT let the running batch finish, record it and run its hooks, then
 * daemon_run returns 0. With web.listen set it serves the web page too (web.h): started after the
 * signals are blocked, stopped first. */
#ifndef GENRED_DAEMON_H
#define GENRED_DAEMON_H

#include <stddef.h>

#include "common.h"

/* One "name=value" setting from the command line, applied with config_set over the file at
 * start-up and after every reload, so flags keep winning over an edited file. */
typedef struct DaemonSetting {
    const char *name, *value;
} DaemonSetting;

/* Resolves the configured model ("" = the installed default) to a file; the command line
 * passes cli_model_path. Returns 0 with the path in out, -1 with a reason. */
typedef int (*DaemonModelPath)(const char *configured, char *out, size_t outsz, ErrMsg *e);

typedef struct DaemonOptions {
    const char *config_path;        /* --config FILE; NULL: the usual search (config_load) */
    const DaemonSetting *settings;  /* flags, applied over the file in order */
    size_t n_settings;
    const char *const *libraries;   /* DIR arguments: replace the configured libraries */
    size_t n_libraries;
    DaemonModelPath model_path;     /* required */
    /* Tests only: SIGUSR1 makes the watcher act as on an inotify queue overflow, throwing
     * away the events queued at that moment (watch_debug_force_overflow). */
    int debug_signals;
} DaemonOptions;

/* Runs until SIGTERM or SIGINT. Returns 0 after a clean stop, -1 with a reason when it cannot
 * start (bad config, no model, no library could be watched, state database unusable). */
int daemon_run(const DaemonOptions *o, ErrMsg *e);

#endif
