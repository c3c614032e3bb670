/* daemon: see daemon.h.
 * Pieces: a string set (queue membership, paths in the running batch), the FIFO of queued
 * paths, the batch thread (classify, tag, record), the file checks (consider: does this path
 * need work?), the folder walk of start-up and rescans, the model file's watch, reload (the
 * model half shared with the watch: swap_model), and the loop itself.
 * Ordering that matters: a batch's results are all recorded (by the batch thread) before the loop
 * joins it, and the loop starts the next batch only after that join, so a kill -9 at any moment
 * leaves every file either recorded or untouched-or-tagged-by-this-model (see consider()). */
#include "daemon.h"

#include <dirent.h>
#include <link.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "decode.h"
#include "hooks.h"
#include "nn.h"
#include "pipeline.h"
#include "state.h"
#include "tagger.h"
#include "watch.h"
#include "web.h"

/* ---- a set of strings (chained hash) ---- */

typedef struct SetNode {
    char *s;
    struct SetNode *next;
} SetNode;

typedef struct StrSet {
    SetNode **b;
    size_t nb, n;
} StrSet;

static size_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static SetNode **set_slot(StrSet *t, const char *s)
{
    if (!t->nb) {
        t->nb = 256;
        t->b = xcalloc(t->nb, sizeof *t->b);
    }
    SetNode **p = &t->b[str_hash(s) & (t->nb - 1)];
    while (*p && strcmp((*p)->s, s) != 0) p = &(*p)->next;
    return p;
}

static bool set_has(StrSet *t, const char *s)
{
    return t->n && *set_slot(t, s) != NULL;
}

static void set_add(StrSet *t, const char *s)
{
    SetNode **p = set_slot(t, s);
    if (*p) return;
    if (t->n >= t->nb) {
        size_t nb = t->nb * 2;
        SetNode **b = xcalloc(nb, sizeof *b);
        for (size_t i = 0; i < t->nb; i++)
            for (SetNode *x = t->b[i], *next; x; x = next) {
                next = x->next;
                SetNode **q = &b[str_hash(x->s) & (nb - 1)];
                x->next = *q;
                *q = x;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
        p = set_slot(t, s);
    }
    SetNode *x = xmalloc(sizeof *x);
    x->s = xstrdup(s);
    x->next = NULL;
    *p = x;
    t->n++;
}

static bool set_del(StrSet *t, const char *s)
{
    if (!t->n) return false;
    SetNode **p = set_slot(t, s);
    if (!*p) return false;
    SetNode *x = *p;
    *p = x->next;
    free(x->s);
    free(x);
    t->n--;
    return true;
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void set_del_below(StrSet *t, const char *dir)
{
    for (size_t i = 0; i < t->nb; i++)
        for (SetNode **p = &t->b[i]; *p;) {
            if (under((*p)->s, dir)) {
                SetNode *x = *p;
                *p = x->next;
                free(x->s);
                free(x);
                t->n--;
            } else {
                p = &(*p)->next;
            }
        }
}

static void set_clear(StrSet *t)
{
    for (size_t i = 0; i < t->nb; i++)
        for (SetNode *x = t->b[i], *next; x; x = next) {
            next = x->next;
            free(x->s);
            free(x);
        }
    free(t->b);
    *t = (StrSet){0};
}

/* ---- a list of owned strings ---- */

typedef struct Paths {
    char **v;
    size_t n, cap;
} Paths;

static void paths_push(Paths *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = xstrdup(s);
}

static void paths_free(Paths *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (Paths){0};
}

/* ---- the batch thread ---- */

typedef struct Item {
    enum HooksEvent event;
    char *genre;    /* written or kept; NULL for an error */
    double confidence;
    char *top;
    char *previous; /* "" when none */
    bool done;      /* the callback saw this track */
} Item;

typedef struct Batch {
    /* Read-only for the thread: */
    NnModel *model;
    const NnInfo *info;
    State *state; /* the thread's own handle */
    int force;
    double min_confidence;
    PipelineOptions po;
    char **paths;
    int n;
    int efd;
    /* Written by the thread, read by the loop after the join: */
    Item *items;
    int rc;
    ErrMsg err;
} Batch;

static void file_stat(const char *path, int64_t *size, int64_t *mtime_ns)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        *size = st.st_size;
        *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    } else {
        *size = -1;
        *mtime_ns = -1;
    }
}

static void record_error(State *s, const char *path, const char *model, const char *why)
{
    int64_t size, mtime;
    file_stat(path, &size, &mtime);
    char fp[STATE_FINGERPRINT_SIZE];
    ErrMsg e = {{0}};
    bool have_fp = state_fingerprint(path, fp, &e) == 0;
    if (state_record_error(s, path, size, mtime, have_fp ? fp : NULL, model, why, &e) != 0)
        log_error("%s: cannot record the error in the state database: %s", path, e.msg);
}

static int on_result(const PipelineResult *r, void *user)
{
    Batch *b = user;
    Item *it = &b->items[r->index];
    const char *path = r->path;
    const NnInfo *info = b->info;
    it->done = true;
    it->event = HOOKS_ERROR;
    if (!r->ok) {
        log_warn("%s: %s", path, r->err.msg);
        record_error(b->state, path, info->id, r->err.msg);
        return 0;
    }
    ErrMsg e = {{0}};
    TaggerInfo before;
    if (tagger_read(path, &before, &e) != 0) {
        log_warn("%s: %s", path, e.msg);
        record_error(b->state, path, info->id, e.msg);
        return 0;
    }
    const char *genre = info->display_names[r->top];
    int outcome = TAGGER_KEPT;
    char *undo = NULL; /* the genre items the file had, when genred's write replaced them */
    bool low = r->confidence < b->min_confidence;
    if (!low) {
        TaggerWrite w = {.genre = genre,
                         .confidence = r->confidence,
                         .model_id = info->id,
                         .force = b->force,
                         .dry_run = 0};
        if (tagger_write(path, &w, &outcome, &undo, &e) != 0) {
            log_warn("%s: %s", path, e.msg);
            record_error(b->state, path, info->id, e.msg);
            return 0;
        }
    }
    /* The genre there before genred: known when the file had none or a hand-set one (no
     * GENRED_CONFIDENCE); when it was genred's own, the state keeps the one it already has. */
    bool previous_known = before.confidence[0] == '\0';
    char probs[2048], top[256];
    hooks_format_top(probs, sizeof probs, (const char *const *)info->labels, r->probs,
                     (size_t)r->n_labels, (size_t)r->n_labels);
    hooks_format_top(top, sizeof top, (const char *const *)info->labels, r->probs,
                     (size_t)r->n_labels, 3);
    int64_t size, mtime;
    file_stat(path, &size, &mtime); /* after the write: our own inotify events find it done */
    char fp[STATE_FINGERPRINT_SIZE];
    if (state_fingerprint(path, fp, &e) != 0) {
        log_warn("%s: %s", path, e.msg);
        record_error(b->state, path, info->id, e.msg);
        free(undo);
        return 0;
    }
    StateResult sr = {.path = path,
                      .size = size,
                      .mtime_ns = mtime,
                      .fingerprint = fp,
                      .genre = genre,
                      .confidence = r->confidence,
                      .probs = probs,
                      .model = info->id,
                      .previous_genre = previous_known ? before.genre : NULL,
                      .previous_known = previous_known,
                      .previous_undo = undo,
                      .artist = before.artist};
    if (state_record_result(b->state, &sr, &e) != 0) {
        /* The tag is written; on restart consider() finds GENRED_MODEL and records it. */
        log_error("%s: cannot record the result in the state database: %s", path, e.msg);
    }
    free(undo);
    if (outcome == TAGGER_WRITTEN) {
        it->event = HOOKS_TAGGED;
        it->genre = xstrdup(genre);
        log_info("tagged %s: %s %.3f", path, genre, r->confidence);
    } else {
        it->event = HOOKS_UNCHANGED;
        it->genre = xstrdup(outcome == TAGGER_UNCHANGED ? genre : before.genre);
        if (low)
            log_info("not tagged %s: %s %.3f is below tag.min_confidence", path, genre,
                     r->confidence);
        else if (outcome == TAGGER_KEPT)
            log_info("kept %s: hand-set %s (genred says %s %.3f)", path, before.genre, genre,
                     r->confidence);
        else
            log_info("unchanged %s: %s %.3f", path, genre, r->confidence);
    }
    it->confidence = r->confidence;
    it->top = xstrdup(top);
    it->previous = xstrdup(before.confidence[0] == '\0' ? before.genre : "");
    return 0;
}

static void *batch_main(void *arg)
{
    Batch *b = arg;
    b->rc = pipeline_classify(b->model, (const char *const *)b->paths, b->n, &b->po, on_result, b,
                              &b->err);
    if (b->rc < 0) {
        log_error("batch of %d files failed: %s", b->n, b->err.msg);
        for (int i = 0; i < b->n; i++)
            if (!b->items[i].done) {
                b->items[i].done = true;
                b->items[i].event = HOOKS_ERROR;
                record_error(b->state, b->paths[i], b->info->id, b->err.msg);
            }
    }
    uint64_t one = 1;
    ssize_t w = write(b->efd, &one, sizeof one);
    (void)w; /* an eventfd write of 1 cannot fail short of overflow at 2^64-1 */
    return NULL;
}

static void batch_free(Batch *b)
{
    for (int i = 0; i < b->n; i++) {
        free(b->paths[i]);
        free(b->items[i].genre);
        free(b->items[i].top);
        free(b->items[i].previous);
    }
    free(b->paths);
    free(b->items);
    free(b);
}

/* ---- the daemon ---- */

/* Seconds the model file must be quiet after it was replaced or written before it is read
 * again: a writer that writes in place and then closes is not read half-written. */
#define MODEL_DEBOUNCE_S 0.5

/* The watch on the model file: its own inotify fd (the library watcher's paths are music
 * folders), on the folder of the path as configured and on the folder of the file it resolved
 * to at load (the same folder unless the path is a symlink), matching each one's name. A new
 * file renamed over it, one written and closed, a new symlink: each makes a reload due
 * MODEL_DEBOUNCE_S after the last of its events. */
typedef struct ModelWatch {
    int fd;        /* -1: not watched (inotify unavailable) */
    int wd[2];     /* [0]: the configured path's folder, [1]: the resolved file's; -1: none */
    char *path[2]; /* the file each wd is for; NULL: none */
    double due;    /* when to load the model again; 0: no change seen */
} ModelWatch;

typedef struct Daemon {
    const DaemonOptions *opt;
    Config cfg;
    NnModel *model;
    const NnInfo *info;
    State *state;  /* the loop's */
    State *wstate; /* the batch thread's */
    Watch *watch;
    Hooks *hooks;
    ModelWatch mw;
    int ep, sfd, tfd, efd;
    Paths queue;   /* FIFO; entries no longer in `queued` were dropped */
    size_t queue_head;
    StrSet queued;
    double first_queued; /* when the oldest waiting file was queued */
    Batch *batch;        /* running, NULL when none */
    pthread_t thread;
    StrSet in_batch;
    Paths deferred; /* events for files of the running batch: looked at again after it */
    bool stop, reload;
    Web *web;      /* the web page (web.listen), NULL when not served */
    uint64_t watchdog_usec;
    double next_watchdog;
    unsigned long n_batches, n_results;
    double release_at; /* when to hand idle memory back (release_idle_memory); 0: not due */
} Daemon;

static void submit_hook(Daemon *d, const char *path, enum HooksEvent ev, const char *genre,
                        double confidence, const char *top, const char *previous)
{
    HooksResult hr = {.path = path,
                      .event = ev,
                      .genre = genre,
                      .confidence = confidence,
                      .top = top,
                      .previous_genre = previous,
                      .model = d->info->id};
    hooks_submit(d->hooks, &hr);
}

static void enqueue(Daemon *d, const char *path)
{
    if (set_has(&d->queued, path)) return;
    if (d->queue_head == d->queue.n) {
        paths_free(&d->queue);
        d->queue_head = 0;
    }
    if (d->queued.n == 0) d->first_queued = common_now();
    set_add(&d->queued, path);
    paths_push(&d->queue, path);
    log_debug("queued %s", path);
}

/* A file genred tagged with the current model that the state does not know as done: record it
 * from its tags instead of classifying and writing it again. Returns 1 when it did. */
static int recover(Daemon *d, const char *path, int64_t size, int64_t mtime, const char *fp)
{
    TaggerInfo ti;
    ErrMsg e = {{0}};
    if (tagger_read(path, &ti, &e) != 0) return 0;
    if (!ti.confidence[0] || strcmp(ti.model, d->info->id) != 0 || !ti.genre[0]) return 0;
    StateResult sr = {.path = path,
                      .size = size,
                      .mtime_ns = mtime,
                      .fingerprint = fp,
                      .genre = ti.genre,
                      .confidence = atof(ti.confidence),
                      .probs = NULL,
                      .model = d->info->id,
                      .previous_genre = NULL,
                      .previous_known = false};
    if (state_record_result(d->state, &sr, &e) != 0) {
        log_error("%s: cannot record it in the state database: %s", path, e.msg);
        return 0;
    }
    log_info("known %s: already tagged %s by this model; recorded without re-tagging", path,
             ti.genre);
    char top[sizeof ti.genre + sizeof ti.confidence + 2];
    snprintf(top, sizeof top, "%s:%s", ti.genre, ti.confidence);
    submit_hook(d, path, HOOKS_UNCHANGED, ti.genre, sr.confidence, top, "");
    d->n_results++;
    return 1;
}

/* Decides whether path needs work and queues it when it does. */
static void consider(Daemon *d, const char *path)
{
    if (!decode_is_audio_name(path)) return;
    if (set_has(&d->queued, path)) return;
    if (d->batch && set_has(&d->in_batch, path)) {
        paths_push(&d->deferred, path);
        return;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return;
    int64_t size = st.st_size;
    int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    ErrMsg e = {{0}};
    int r = state_needs_work(d->state, path, size, mtime, NULL, d->info->id, &e);
    if (r == 0) return;
    char fp[STATE_FINGERPRINT_SIZE];
    if (state_fingerprint(path, fp, &e) != 0) {
        log_debug("%s: %s", path, e.msg); /* vanished or unreadable: its events will follow */
        return;
    }
    r = state_needs_work(d->state, path, size, mtime, fp, d->info->id, &e);
    if (r < 0) log_warn("%s: state database: %s", path, e.msg);
    if (r == 0) return;
    if (recover(d, path, size, mtime, fp)) return;
    enqueue(d, path);
}

typedef struct Gone {
    const char *dir;
    Paths paths;
} Gone;

static int collect_gone(const StateRow *row, void *ud)
{
    Gone *g = ud;
    struct stat st;
    if (under(row->path, g->dir) && lstat(row->path, &st) != 0 && errno == ENOENT)
        paths_push(&g->paths, row->path);
    return 0;
}

static void walk(Daemon *d, const char *dir, int depth)
{
    if (depth > 64) return;
    DIR *dh = opendir(dir);
    if (!dh) {
        log_warn("cannot read %s: %s", dir, strerror(errno));
        return;
    }
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.') continue;
        size_t n = strlen(dir) + strlen(de->d_name) + 2;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/%s", dir, de->d_name);
        unsigned char type = de->d_type;
        struct stat st;
        if (type == DT_UNKNOWN && lstat(p, &st) == 0)
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        if (type == DT_DIR)
            walk(d, p, depth + 1);
        else if (type == DT_REG || type == DT_LNK) /* symlinked files count, as in watch */
            consider(d, p);
        free(p);
    }
    closedir(dh);
}

/* Compares the files under dir with the state: new and changed ones are queued, rows of files
 * that are gone are dropped (a lost IN_DELETE). */
static void scan(Daemon *d, const char *dir)
{
    double t0 = common_now();
    size_t q0 = d->queued.n;
    walk(d, dir, 0);
    Gone g = {.dir = dir};
    ErrMsg e = {{0}};
    if (state_list(d->state, STATE_LIST_ALL, 0, collect_gone, &g, &e) < 0)
        log_warn("state database: %s", e.msg);
    for (size_t i = 0; i < g.paths.n; i++) state_forget(d->state, g.paths.v[i], &e);
    log_info("scanned %s in %.2f s: %zu files queued, %zu gone", dir, common_now() - t0,
             d->queued.n - q0, g.paths.n);
    paths_free(&g.paths);
}

static void scan_all(Daemon *d)
{
    for (size_t i = 0; i < d->cfg.libraries.n; i++) scan(d, d->cfg.libraries.items[i]);
}

static void forget(Daemon *d, const char *path, bool dir)
{
    ErrMsg e = {{0}};
    if (dir)
        set_del_below(&d->queued, path);
    else
        set_del(&d->queued, path);
    if (state_forget(d->state, path, &e) < 0) log_warn("%s: state database: %s", path, e.msg);
    else log_debug("forgot %s", path);
}

static void drain_watch(Daemon *d)
{
    WatchEvent ev;
    while (watch_next(d->watch, &ev)) {
        switch (ev.kind) {
        case WATCH_READY: consider(d, ev.path); break;
        case WATCH_REMOVED: forget(d, ev.path, false); break;
        case WATCH_DIR_REMOVED: forget(d, ev.path, true); break;
        case WATCH_RESCAN: scan(d, ev.path); break;
        }
    }
}

/* ---- the model file's watch (ModelWatch) ---- */

#define MODEL_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ONLYDIR | IN_EXCL_UNLINK)

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void model_watch_init(ModelWatch *mw)
{
    *mw = (ModelWatch){.fd = -1, .wd = {-1, -1}};
    mw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (mw->fd < 0)
        log_warn("cannot watch the model file (inotify: %s); SIGHUP still reloads it",
                 strerror(errno));
}

static void model_watch_free(ModelWatch *mw)
{
    if (mw->fd >= 0) close(mw->fd);
    free(mw->path[0]);
    free(mw->path[1]);
    *mw = (ModelWatch){.fd = -1, .wd = {-1, -1}};
}

/* Watches the folder holding path; returns the wd, -1 when it cannot. */
static int model_watch_folder(int fd, const char *path)
{
    const char *name = base_name(path);
    char dir[PATH_MAX];
    if (name == path)
        snprintf(dir, sizeof dir, ".");
    else if (name == path + 1)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(name - path - 1), path);
    int wd = inotify_add_watch(fd, dir, MODEL_MASK);
    if (wd < 0) log_warn("cannot watch %s for a new model file: %s", dir, strerror(errno));
    return wd;
}

/* Points the watch at the model file about to be read: path as configured and, through
 * symlinks, the file it resolves to now. Nothing changes when both are already watched. */
static void model_watch_set(ModelWatch *mw, const char *path)
{
    if (mw->fd < 0) return;
    char *want[2] = {xstrdup(path), realpath(path, NULL)}; /* NULL: missing, watch the name */
    bool same = true;
    for (int i = 0; i < 2; i++) {
        if (want[i])
            same = same && mw->path[i] && strcmp(want[i], mw->path[i]) == 0 && mw->wd[i] >= 0;
        else
            same = same && !mw->path[i];
    }
    if (same) {
        free(want[0]);
        free(want[1]);
        return;
    }
    for (int i = 0; i < 2; i++) {
        /* Both names in one folder share one wd: remove it once. */
        if (mw->wd[i] >= 0 && (i == 0 || mw->wd[1] != mw->wd[0]))
            inotify_rm_watch(mw->fd, mw->wd[i]);
        free(mw->path[i]);
        mw->path[i] = want[i];
        mw->wd[i] = want[i] ? model_watch_folder(mw->fd, want[i]) : -1;
    }
    if (mw->wd[0] >= 0 || mw->wd[1] >= 0)
        log_info("watching the model file %s%s%s", path,
                 want[1] && strcmp(want[1], path) != 0 ? " -> " : "",
                 want[1] && strcmp(want[1], path) != 0 ? want[1] : "");
}

static void model_watch_event(ModelWatch *mw, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) { /* events lost: look at the file again */
        mw->due = common_now() + MODEL_DEBOUNCE_S;
        return;
    }
    if (ev->wd < 0 || (ev->wd != mw->wd[0] && ev->wd != mw->wd[1])) return; /* an old watch */
    if (ev->mask & IN_IGNORED) {
        /* The folder was deleted or unmounted: the next reload (SIGHUP) watches it again. */
        log_warn("%s: its folder is gone; the model file is no longer watched",
                 mw->path[ev->wd == mw->wd[0] ? 0 : 1]);
        for (int i = 0; i < 2; i++)
            if (mw->wd[i] == ev->wd) mw->wd[i] = -1;
        return;
    }
    if (!ev->len) return;
    for (int i = 0; i < 2; i++) {
        if (mw->wd[i] != ev->wd || strcmp(ev->name, base_name(mw->path[i])) != 0) continue;
        /* As in watch.c: a new or finished file starts the debounce, a write extends it. */
        if ((ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)) ||
            ((ev->mask & IN_MODIFY) && mw->due > 0)) {
            if (mw->due == 0) log_debug("model file %s changed", mw->path[i]);
            mw->due = common_now() + MODEL_DEBOUNCE_S;
        }
        return;
    }
}

static void model_watch_process(ModelWatch *mw)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(mw->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN)
                log_error("reading the model file's inotify: %s", strerror(errno));
            return;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            model_watch_event(mw, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

/* ---- configuration, model, watcher, hooks ---- */

static int load_config(const DaemonOptions *o, Config *c, ErrMsg *e)
{
    Config n;
    if (config_load(&n, o->config_path, e) != 0) return -1;
    for (size_t i = 0; i < o->n_settings; i++)
        if (config_set(&n, o->settings[i].name, o->settings[i].value, e) != 0) {
            config_free(&n);
            return -1;
        }
    if (o->n_libraries) {
        for (size_t i = 0; i < n.libraries.n; i++) free(n.libraries.items[i]);
        free(n.libraries.items);
        n.libraries.items = xcalloc(o->n_libraries, sizeof *n.libraries.items);
        n.libraries.n = o->n_libraries;
        for (size_t i = 0; i < o->n_libraries; i++)
            n.libraries.items[i] = xstrdup(o->libraries[i]);
    }
    /* Absolute, resolved roots: hooks and the state see the same path for a file whatever the
     * working directory or symlinks on the way. */
    for (size_t i = 0; i < n.libraries.n; i++) {
        char *r = realpath(n.libraries.items[i], NULL);
        if (r) {
            free(n.libraries.items[i]);
            n.libraries.items[i] = r;
        }
    }
    if (n.libraries.n == 0) {
        config_free(&n);
        return err_set(e, "no libraries configured (set `libraries` or pass a DIR)");
    }
    *c = n;
    return 0;
}

static NnModel *load_model(Daemon *d, const Config *c, ErrMsg *e)
{
    char path[PATH_MAX];
    if (d->opt->model_path(c->model, path, sizeof path, e) != 0) return NULL;
    /* Watched before it is read: a replacement from now on is seen. */
    model_watch_set(&d->mw, path);
    ErrMsg why = {{0}};
    NnModel *m = nn_model_load(path, &why);
    if (!m) {
        err_set(e, "%s: %s", path, why.msg);
        return NULL;
    }
    /* ConfigDevice and NnDevice share their numbers. A GPU that cannot be used must not stop
     * the daemon: say so once and go on with the CPU. */
    if (nn_model_set_device(m, c->device, &why) < 0)
        log_error("device cuda: %s; using the CPU", why.msg);
    log_info("model %s (%s, id %s) on %s", path, nn_model_info(m)->arch, nn_model_info(m)->id,
             nn_model_device_name(m));
    return m;
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

static Watch *make_watch(const Config *c, ErrMsg *e)
{
    Watch *w = watch_new(c->debounce_ms, e);
    if (!w) return NULL;
    size_t ok = 0;
    for (size_t i = 0; i < c->libraries.n; i++) {
        ErrMsg why = {{0}};
        if (watch_add(w, c->libraries.items[i], false, &why) != 0)
            log_error("cannot watch library %s: %s", c->libraries.items[i], why.msg);
        else
            ok++;
    }
    if (!ok) {
        watch_free(w);
        err_set(e, "no library folder could be watched");
        return NULL;
    }
    log_info("watching %zu folders in %zu libraries", watch_dir_count(w), ok);
    return w;
}

static int epoll_add(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static bool same_strings(const ConfigStrings *a, const ConfigStrings *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0) return false;
    return true;
}

/* The model half of a reload, for SIGHUP and the model file's watch: loads the model c names
 * (on c's device, as at start-up) and puts it in place of the running one. Between batches only:
 * the batch thread reads the model. A model that fails to load (half-written, broken) leaves the
 * running one, with one error line. Returns 1 when the model id changed (the caller rescans:
 * state_needs_work compares model ids, so files tagged by the old model are queued again), 0
 * when it did not, -1 when the running model was kept. */
static int swap_model(Daemon *d, const Config *c, const char *who)
{
    ErrMsg e = {{0}};
    d->mw.due = 0; /* this load reads what the file holds now; later events make a new one due */
    NnModel *m = load_model(d, c, &e);
    if (!m) {
        log_error("%s: %s; keeping the running model", who, e.msg);
        return -1;
    }
    bool new_id = strcmp(nn_model_info(m)->id, d->info->id) != 0;
    nn_model_free(d->model);
    d->model = m;
    d->info = nn_model_info(m);
    return new_id;
}

/* Between batches, once the model file has been quiet for MODEL_DEBOUNCE_S after a change:
 * the model alone is loaded again; config, hooks and watches stay. Queued files stay queued. */
static void model_changed(Daemon *d)
{
    if (swap_model(d, &d->cfg, "model file changed") <= 0) return;
    log_info("model file changed: new model %s; the libraries will be re-tagged", d->info->id);
    scan_all(d);
}

/* Between batches: a new config, model, hooks and (when libraries or debounce changed) watcher.
 * The queue stays; whatever fails to load keeps the old one running. */
static void reload(Daemon *d)
{
    d->reload = false;
    log_info("reloading (SIGHUP)");
    sd_notify(0, "RELOADING=1");
    Config c;
    ErrMsg e = {{0}};
    if (load_config(d->opt, &c, &e) != 0) {
        log_error("reload: %s; keeping the running configuration", e.msg);
        sd_notify(0, "READY=1");
        return;
    }
    common_log_level = c.log_level;
    if (strcmp(c.state_path, d->cfg.state_path) != 0)
        log_warn("reload: state.path changed; the new one takes effect on restart");
    if (swap_model(d, &c, "reload") > 0)
        log_info("reload: new model %s: the libraries will be re-tagged", d->info->id);
    Hooks *h = make_hooks(&c, &e);
    if (!h) {
        log_error("reload: hooks: %s; keeping the running ones", e.msg);
    } else {
        hooks_run_all(d->hooks); /* the hooks of finished results still run, under old rules */
        epoll_ctl(d->ep, EPOLL_CTL_DEL, hooks_fd(d->hooks), NULL);
        hooks_free(d->hooks);
        d->hooks = h;
        epoll_add(d->ep, hooks_fd(h));
    }
    bool rewatch = !same_strings(&c.libraries, &d->cfg.libraries) ||
                   c.debounce_ms != d->cfg.debounce_ms;
    if (rewatch) {
        Watch *w = make_watch(&c, &e);
        if (!w) {
            log_error("reload: %s; keeping the running watches", e.msg);
            rewatch = false;
        } else {
            epoll_ctl(d->ep, EPOLL_CTL_DEL, watch_fd(d->watch), NULL);
            watch_free(d->watch);
            d->watch = w;
            epoll_add(d->ep, watch_fd(w));
        }
    }
    config_free(&d->cfg);
    d->cfg = c;
    /* Debounced events the old watcher still held are covered by this scan, as are the files a
     * new model has not seen. */
    scan_all(d);
    sd_notify(0, "READY=1");
}

/* ---- the loop ---- */

/* ---- memory while idle ---- */

/* Seconds of idleness after a batch before the daemon hands back the library code it paged in.
 * Long enough that a burst of copies (one batch after another) does not pay for re-reading the
 * codecs, short enough that a daemon idle for hours holds only what it needs to wait. */
#define IDLE_RELEASE_S 10.0

static int pageout_segments(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    size_t *bytes = ud;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        /* Read-only and executable segments only: their pages are clean copies of the file,
         * dropped at no cost and faulted back from the page cache or disk when next needed.
         * Writable ones hold relocated data (anonymous copies) and are left alone. */
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || !ph->p_memsz) continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        if (madvise((void *)lo, hi - lo, MADV_PAGEOUT) == 0) *bytes += hi - lo;
    }
    return 0;
}

/* An idle daemon needs its model, its queues and the code of the loop, not the ~150 shared
 * libraries FFmpeg, TagLib, FFTW and OpenBLAS bring along, whose touched code pages would
 * otherwise stay resident for good (decoders, codelets, GEMM kernels). MADV_PAGEOUT reclaims
 * those of them that no other process maps (the kernel skips shared pages), so this frees real
 * memory, not just our accounting; the next batch faults back what it uses. Heap pages freed
 * since the last trim go back too. Kernels before 5.4 reject MADV_PAGEOUT: nothing happens. */
static void release_idle_memory(void)
{
    malloc_trim(0);
    size_t bytes = 0;
    dl_iterate_phdr(pageout_segments, &bytes);
    log_debug("idle: advised %zu KiB of library code out", bytes / 1024);
}

static void start_batch(Daemon *d)
{
    int max = d->cfg.batch_max_tracks;
    Batch *b = xcalloc(1, sizeof *b);
    b->paths = xcalloc((size_t)max, sizeof *b->paths);
    while (b->n < max && d->queue_head < d->queue.n) {
        char *p = d->queue.v[d->queue_head];
        d->queue.v[d->queue_head++] = NULL;
        if (!set_del(&d->queued, p)) { /* dropped while queued (deleted) */
            free(p);
            continue;
        }
        b->paths[b->n++] = p;
        set_add(&d->in_batch, p);
    }
    if (d->queued.n) d->first_queued = common_now();
    if (!b->n) {
        free(b->paths);
        free(b);
        return;
    }
    b->items = xcalloc((size_t)b->n, sizeof *b->items);
    b->model = d->model;
    b->info = d->info;
    b->state = d->wstate;
    b->force = d->cfg.tag_force;
    b->min_confidence = d->cfg.tag_min_confidence;
    b->po = (PipelineOptions){.jobs = d->cfg.jobs, .batch = max, .ordered = 0};
    b->efd = d->efd;
    log_debug("batch of %d files (%zu more queued)", b->n, d->queued.n);
    int rc = pthread_create(&d->thread, NULL, batch_main, b);
    if (rc != 0) {
        /* Put them back: the next tick tries again. */
        log_error("cannot start a batch thread: %s", strerror(rc));
        for (int i = 0; i < b->n; i++) enqueue(d, b->paths[i]);
        set_clear(&d->in_batch);
        free(b->items);
        b->items = NULL;
        for (int i = 0; i < b->n; i++) free(b->paths[i]);
        free(b->paths);
        free(b);
        return;
    }
    d->batch = b;
}

static void finish_batch(Daemon *d)
{
    uint64_t v;
    if (read(d->efd, &v, sizeof v) != sizeof v) return;
    if (!d->batch) return;
    pthread_join(d->thread, NULL);
    Batch *b = d->batch;
    d->batch = NULL;
    set_clear(&d->in_batch);
    d->n_batches++;
    for (int i = 0; i < b->n; i++) {
        Item *it = &b->items[i];
        d->n_results++;
        submit_hook(d, b->paths[i], it->event, it->genre, it->confidence, it->top, it->previous);
    }
    batch_free(b);
    /* The decode and mel buffers of the batch's threads are free now; give the pages back so
     * an idle daemon's RSS is the model and the libraries, not the last batch's peak. */
    malloc_trim(0);
    d->release_at = common_now() + IDLE_RELEASE_S;
    Paths later = d->deferred;
    d->deferred = (Paths){0};
    for (size_t i = 0; i < later.n; i++) consider(d, later.v[i]);
    paths_free(&later);
    if (!d->stop)
        sd_notifyf(0, "STATUS=%lu files done, %zu queued", d->n_results, d->queued.n);
}

static bool batch_due(const Daemon *d, double now)
{
    if (!d->queued.n || d->batch || d->stop || d->reload) return false;
    return d->queued.n >= (size_t)d->cfg.batch_max_tracks ||
           now >= d->first_queued + d->cfg.batch_max_wait_ms / 1000.0;
}

/* Arms the timerfd for the earliest deadline, or disarms it: idle means no wakeups. */
static void arm_timer(Daemon *d)
{
    double now = common_now(), wait = -1;
    int t = watch_timeout_ms(d->watch);
    if (t >= 0) wait = t / 1000.0;
    t = hooks_timeout_ms(d->hooks);
    if (t >= 0 && (wait < 0 || t / 1000.0 < wait)) wait = t / 1000.0;
    if (d->queued.n && !d->batch && !d->stop) {
        double b = d->first_queued + d->cfg.batch_max_wait_ms / 1000.0 - now;
        if (b < 0) b = 0;
        if (wait < 0 || b < wait) wait = b;
    }
    if (d->mw.due > 0 && !d->batch && !d->stop) { /* during a batch, its end wakes the loop */
        double m = d->mw.due - now;
        if (m < 0) m = 0;
        if (wait < 0 || m < wait) wait = m;
    }
    if (d->release_at > 0) {
        double r = d->release_at - now;
        if (r < 0) r = 0;
        if (wait < 0 || r < wait) wait = r;
    }
    if (d->watchdog_usec) {
        double w = d->next_watchdog - now;
        if (w < 0) w = 0;
        if (wait < 0 || w < wait) wait = w;
    }
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (wait >= 0) {
        long long ns = (long long)(wait * 1e9);
        if (ns < 1) ns = 1; /* 0 would disarm */
        its.it_value.tv_sec = ns / 1000000000;
        its.it_value.tv_nsec = ns % 1000000000;
    }
    timerfd_settime(d->tfd, 0, &its, NULL);
}

static void read_signals(Daemon *d)
{
    struct signalfd_siginfo si;
    while (read(d->sfd, &si, sizeof si) == sizeof si) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (!d->stop) {
                log_info("%s: stopping after the running batch", strsignal((int)si.ssi_signo));
                sd_notify(0, "STOPPING=1");
            }
            d->stop = true;
            break;
        case SIGHUP: d->reload = true; break;
        case SIGUSR1:
            if (d->opt->debug_signals) watch_debug_force_overflow(d->watch);
            break;
        default: break;
        }
    }
}

static pid_t loop_tid;

/* Threads that libraries started before main (OpenBLAS starts its pool in a constructor) do not
 * block our signals, so the kernel may hand a SIGTERM to one of them. This handler, running in
 * such a thread, only forwards the signal to the loop's thread, where it is blocked and so waits
 * for the signalfd. */
static void forward_signal(int sig)
{
    int saved = errno;
    syscall(SYS_tgkill, getpid(), loop_tid, sig);
    errno = saved;
}

static int setup_fds(Daemon *d, ErrMsg *e)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    /* Blocked before any thread exists, so batch and pipeline threads inherit the mask and the
     * signals reach only the signalfd. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return err_set(e, "sigprocmask failed");
    loop_tid = (pid_t)syscall(SYS_gettid);
    struct sigaction sa = {.sa_handler = forward_signal, .sa_flags = SA_RESTART};
    sigfillset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    d->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    d->ep = epoll_create1(EPOLL_CLOEXEC);
    if (d->sfd < 0 || d->tfd < 0 || d->efd < 0 || d->ep < 0)
        return err_set(e, "cannot create the loop's descriptors: %s", strerror(errno));
    if (epoll_add(d->ep, d->sfd) || epoll_add(d->ep, d->tfd) || epoll_add(d->ep, d->efd) ||
        epoll_add(d->ep, watch_fd(d->watch)) || epoll_add(d->ep, hooks_fd(d->hooks)) ||
        (d->mw.fd >= 0 && epoll_add(d->ep, d->mw.fd)))
        return err_set(e, "epoll_ctl: %s", strerror(errno));
    return 0;
}

static void teardown(Daemon *d)
{
    web_stop(d->web); /* first: its hooks and classifications finish while all else stands */
    if (d->hooks) {
        hooks_run_all(d->hooks);
        HooksStats hs = hooks_stats(d->hooks);
        if (hs.started)
            log_info("hooks: %lu run, %lu failed (%lu timed out)", hs.started, hs.failed,
                     hs.timed_out);
        hooks_free(d->hooks);
    }
    if (d->watch) watch_free(d->watch);
    if (d->state) state_close(d->state);
    if (d->wstate) state_close(d->wstate);
    if (d->model) nn_model_free(d->model);
    model_watch_free(&d->mw);
    int fds[] = {d->ep, d->sfd, d->tfd, d->efd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0) close(fds[i]);
    paths_free(&d->queue);
    paths_free(&d->deferred);
    set_clear(&d->queued);
    set_clear(&d->in_batch);
    config_free(&d->cfg);
}

int daemon_run(const DaemonOptions *o, ErrMsg *e)
{
    Daemon dd = {.opt = o, .mw = {.fd = -1, .wd = {-1, -1}}, .ep = -1, .sfd = -1, .tfd = -1,
                 .efd = -1};
    Daemon *d = &dd;
    int rc = -1;
    if (!o->model_path) return err_set(e, "no model resolver");
    /* Before any thread exists. Two arenas: the batch thread and the pipeline's decoders would
     * otherwise each grow a 64 MiB-reserved arena of their own that malloc_trim only partly
     * empties. A fixed mmap threshold: glibc's adaptive one rises after the first large free,
     * after which decode and mel buffers of a few MiB come from the heap and stay resident
     * between batches; mmap'ed, they go back to the kernel on free(). */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (load_config(o, &d->cfg, e) != 0) return -1;
    common_log_level = d->cfg.log_level;
    ErrMsg why = {{0}};
    model_watch_init(&d->mw);
    if (!(d->model = load_model(d, &d->cfg, e))) goto out;
    d->info = nn_model_info(d->model);
    if (!(d->state = state_open(d->cfg.state_path, true, &why)) ||
        !(d->wstate = state_open(d->cfg.state_path, true, &why))) {
        err_set(e, "%s: %s", d->cfg.state_path, why.msg);
        goto out;
    }
    if (!(d->hooks = make_hooks(&d->cfg, e))) goto out;
    if (!(d->watch = make_watch(&d->cfg, e))) goto out;
    if (setup_fds(d, e) != 0) goto out;
    /* After setup_fds: its threads inherit the blocked signals. Its own model copy, reloaded
     * when the file is replaced; web.* changes need a restart. */
    if (d->cfg.web_listen[0]) {
        char mp[PATH_MAX];
        if (o->model_path(d->cfg.model, mp, sizeof mp, e) != 0 ||
            !(d->web = web_start(&d->cfg, mp, e)))
            goto out;
    }
    scan_all(d);
    if (sd_watchdog_enabled(0, &d->watchdog_usec) <= 0) d->watchdog_usec = 0;
    d->next_watchdog = common_now() + d->watchdog_usec / 2e6;
    d->release_at = common_now() + IDLE_RELEASE_S; /* start-up paged in code too */
    sd_notifyf(0, "READY=1\nSTATUS=watching; %zu files queued", d->queued.n);
    log_info("ready: %zu files queued", d->queued.n);

    for (;;) {
        if (d->reload && !d->batch && !d->stop)
            reload(d);
        else if (d->mw.due > 0 && !d->batch && !d->stop && common_now() >= d->mw.due)
            model_changed(d);
        drain_watch(d);
        double now = common_now();
        if (batch_due(d, now)) start_batch(d);
        if (d->batch || d->queued.n) {
            d->release_at = 0; /* busy: the next finished batch schedules it again */
        } else if (d->release_at > 0 && now >= d->release_at) {
            d->release_at = 0;
            release_idle_memory();
        }
        if (d->stop && !d->batch) break;
        if (d->watchdog_usec && now >= d->next_watchdog) {
            sd_notify(0, "WATCHDOG=1");
            d->next_watchdog = now + d->watchdog_usec / 2e6;
        }
        arm_timer(d);
        struct epoll_event evs[8];
        int n = epoll_wait(d->ep, evs, 8, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            err_set(e, "epoll_wait: %s", strerror(errno));
            goto out;
        }
        /* Signals first: a forced overflow (tests) must see the inotify events of this wakeup. */
        for (int i = 0; i < n; i++)
            if (evs[i].data.fd == d->sfd) read_signals(d);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == d->tfd) {
                uint64_t x;
                ssize_t r = read(d->tfd, &x, sizeof x);
                (void)r; /* expirations are not counted: each wakeup recomputes deadlines */
            } else if (fd == d->efd) {
                finish_batch(d);
            } else if (fd == watch_fd(d->watch)) {
                if (watch_process(d->watch, &why) < 0) log_error("%s", why.msg);
            } else if (fd == d->mw.fd) {
                model_watch_process(&d->mw);
            }
        }
        hooks_dispatch(d->hooks); /* cheap; also enforces hook timeouts on timer wakeups */
    }
    log_info("stopped: %lu results in %lu batches; %zu files left queued for the next start",
             d->n_results, d->n_batches, d->queued.n);
    rc = 0;
out:
    teardown(d);
    return rc;
}
