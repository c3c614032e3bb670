/* watch: see watch.h.
 * Three structures: wd -> directory path (an array indexed by wd: the kernel hands out small
 * increasing numbers), the pending files (a hash for lookup plus a list in deadline order: every
 * touch sets deadline = now + debounce, which is never earlier than any other, so moving the
 * entry to the tail keeps the list sorted and the head is always the next one due), and a FIFO
 * of events already due. */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_MASK                                                                                   \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |       \
     IN_MODIFY | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

typedef struct Pending {
    char *path;
    double deadline;
    struct Pending *prev, *next; /* deadline order */
    struct Pending *hnext;       /* hash chain */
} Pending;

typedef struct OutEvent {
    enum WatchKind kind;
    char *path;
} OutEvent;

struct Watch {
    int fd;
    double debounce;
    char **wd_path; /* indexed by wd; NULL: not (or no longer) watched */
    size_t wd_cap, n_dirs;
    char **roots;
    size_t n_roots;
    Pending **buckets;
    size_t n_buckets, n_pending;
    Pending *head, *tail;
    OutEvent *out;
    size_t out_head, out_len, out_cap;
    char *last; /* the path handed out by the last watch_next */
    bool force_overflow, warned_limit;
    size_t debug_max_watches;
};

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void emit(Watch *w, enum WatchKind kind, const char *path)
{
    if (w->out_head + w->out_len == w->out_cap) {
        if (w->out_head > 0) {
            memmove(w->out, w->out + w->out_head, w->out_len * sizeof *w->out);
            w->out_head = 0;
        }
        if (w->out_len == w->out_cap) {
            w->out_cap = w->out_cap ? 2 * w->out_cap : 64;
            w->out = xrealloc(w->out, w->out_cap * sizeof *w->out);
        }
    }
    w->out[w->out_head + w->out_len++] = (OutEvent){kind, xstrdup(path)};
}

/* ---- pending files ---- */

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static Pending **bucket_of(Watch *w, const char *path)
{
    Pending **b = &w->buckets[hash(path) & (w->n_buckets - 1)];
    while (*b && strcmp((*b)->path, path) != 0) b = &(*b)->hnext;
    return b;
}

static void list_unlink(Watch *w, Pending *p)
{
    if (p->prev) p->prev->next = p->next; else w->head = p->next;
    if (p->next) p->next->prev = p->prev; else w->tail = p->prev;
    p->prev = p->next = NULL;
}

static void list_append(Watch *w, Pending *p)
{
    p->prev = w->tail;
    p->next = NULL;
    if (w->tail) w->tail->next = p; else w->head = p;
    w->tail = p;
}

static void grow_buckets(Watch *w)
{
    size_t n = w->n_buckets * 2;
    Pending **nb = xcalloc(n, sizeof *nb);
    for (size_t i = 0; i < w->n_buckets; i++) {
        for (Pending *p = w->buckets[i], *next; p; p = next) {
            next = p->hnext;
            Pending **b = &nb[hash(p->path) & (n - 1)];
            p->hnext = *b;
            *b = p;
        }
    }
    free(w->buckets);
    w->buckets = nb;
    w->n_buckets = n;
}

/* Restarts the quiet period of path; create: start one if there is none. */
static void pending_touch(Watch *w, const char *path, bool create)
{
    Pending **b = bucket_of(w, path);
    Pending *p = *b;
    if (!p) {
        if (!create) return;
        p = xcalloc(1, sizeof *p);
        p->path = xstrdup(path);
        *b = p;
        w->n_pending++;
        if (w->n_pending > w->n_buckets) grow_buckets(w);
    } else {
        list_unlink(w, p);
    }
    p->deadline = common_now() + w->debounce;
    list_append(w, p);
}

static void pending_delete(Watch *w, Pending *p)
{
    Pending **b = bucket_of(w, p->path);
    *b = p->hnext;
    list_unlink(w, p);
    free(p->path);
    free(p);
    w->n_pending--;
}

static void pending_drop(Watch *w, const char *path)
{
    Pending *p = *bucket_of(w, path);
    if (p) pending_delete(w, p);
}

static void pending_drop_below(Watch *w, const char *dir)
{
    for (Pending *p = w->head, *next; p; p = next) {
        next = p->next;
        if (under(p->path, dir)) pending_delete(w, p);
    }
}

/* ---- directory watches ---- */

static long read_sysctl(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/fs/inotify/%s", name);
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

static void drop_below(Watch *w, const char *dir)
{
    for (size_t wd = 0; wd < w->wd_cap; wd++) {
        if (!w->wd_path[wd] || !under(w->wd_path[wd], dir)) continue;
        inotify_rm_watch(w->fd, (int)wd);
        free(w->wd_path[wd]);
        w->wd_path[wd] = NULL;
        w->n_dirs--;
    }
}

static int add_watch(Watch *w, const char *dir)
{
    if (w->debug_max_watches && w->n_dirs >= w->debug_max_watches) {
        errno = ENOSPC;
        return -1;
    }
    return inotify_add_watch(w->fd, dir, DIR_MASK);
}

/* Watches dir and the directories below it; the watch goes on before the listing so that a
 * file arriving in between is seen by one or the other (both merge in the pending set).
 * Returns 0, 1 when the watch limit stopped it (a rescan of dir was emitted), -1 on error. */
static int add_tree(Watch *w, const char *dir, bool report, ErrMsg *e)
{
    int wd = add_watch(w, dir);
    if (wd < 0) {
        int err = errno;
        if (err == ENOSPC) {
            if (!w->warned_limit)
                log_warn("cannot watch %s: inotify watch limit reached (fs.inotify.max_user_watches"
                         " = %ld); raise it, e.g. sysctl fs.inotify.max_user_watches=524288;"
                         " until then changes there are only found by rescans",
                         dir, read_sysctl("max_user_watches"));
            w->warned_limit = true;
            emit(w, WATCH_RESCAN, dir);
            return 1;
        } else if (err != ENOENT && err != ENOTDIR) {
            log_warn("cannot watch %s: %s", dir, strerror(err));
        }
        return err_set(e, "inotify_add_watch: %s", strerror(err));
    }
    if ((size_t)wd >= w->wd_cap) {
        size_t cap = w->wd_cap ? w->wd_cap : 64;
        while (cap <= (size_t)wd) cap *= 2;
        w->wd_path = xrealloc(w->wd_path, cap * sizeof *w->wd_path);
        memset(w->wd_path + w->wd_cap, 0, (cap - w->wd_cap) * sizeof *w->wd_path);
        w->wd_cap = cap;
    }
    /* The same directory under a new name (moved, then re-added) keeps its wd. */
    if (w->wd_path[wd])
        free(w->wd_path[wd]);
    else
        w->n_dirs++;
    w->wd_path[wd] = xstrdup(dir);

    DIR *d = opendir(dir);
    if (!d) return 0; /* gone already: its IN_IGNORED follows */
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *p = join(dir, de->d_name);
        unsigned char type = de->d_type;
        struct stat st;
        if (type == DT_UNKNOWN || type == DT_LNK) {
            /* Symlinked files count, symlinked directories do not (loops, other trees). */
            if (type == DT_LNK)
                type = stat(p, &st) == 0 && S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
            else if (lstat(p, &st) == 0)
                type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (type == DT_DIR)
            add_tree(w, p, report, NULL);
        else if (type == DT_REG && report)
            pending_touch(w, p, true);
        free(p);
    }
    closedir(d);
    return 0;
}

static void overflow(Watch *w, const char *why)
{
    log_warn("%s: inotify events were lost (fs.inotify.max_queued_events = %ld; raise it, e.g."
             " sysctl fs.inotify.max_queued_events=65536); rescanning every library",
             why, read_sysctl("max_queued_events"));
    for (size_t i = 0; i < w->n_roots; i++) {
        /* Directories created while events were lost have no watch yet; re-adding an existing
         * watch is harmless (same wd). */
        add_tree(w, w->roots[i], false, NULL);
        emit(w, WATCH_RESCAN, w->roots[i]);
    }
}

Watch *watch_new(int debounce_ms, ErrMsg *e)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE)
            err_set(e, "inotify_init1: %s (raise fs.inotify.max_user_instances)", strerror(errno));
        else
            err_set(e, "inotify_init1: %s", strerror(errno));
        return NULL;
    }
    Watch *w = xcalloc(1, sizeof *w);
    w->fd = fd;
    w->debounce = (debounce_ms > 0 ? debounce_ms : 0) / 1000.0;
    w->n_buckets = 256;
    w->buckets = xcalloc(w->n_buckets, sizeof *w->buckets);
    return w;
}

void watch_free(Watch *w)
{
    if (!w) return;
    close(w->fd);
    for (size_t i = 0; i < w->wd_cap; i++) free(w->wd_path[i]);
    free(w->wd_path);
    for (size_t i = 0; i < w->n_roots; i++) free(w->roots[i]);
    free(w->roots);
    while (w->head) pending_delete(w, w->head);
    free(w->buckets);
    for (size_t i = 0; i < w->out_len; i++) free(w->out[w->out_head + i].path);
    free(w->out);
    free(w->last);
    free(w);
}

int watch_add(Watch *w, const char *dir, bool report_existing, ErrMsg *e)
{
    struct stat st;
    if (stat(dir, &st) != 0) return err_set(e, "%s", strerror(errno));
    if (!S_ISDIR(st.st_mode)) return err_set(e, "not a directory");
    char *root = xstrdup(dir);
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') root[--n] = '\0';
    /* A root over the watch limit stays a root: the overflow path retries it. */
    if (add_tree(w, root, report_existing, e) < 0) {
        free(root);
        return -1;
    }
    w->roots = xrealloc(w->roots, (w->n_roots + 1) * sizeof *w->roots);
    w->roots[w->n_roots++] = root;
    return 0;
}

int watch_fd(const Watch *w)
{
    return w->fd;
}

static void handle(Watch *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        overflow(w, "inotify queue overflow");
        return;
    }
    if (ev->wd < 0 || (size_t)ev->wd >= w->wd_cap || !w->wd_path[ev->wd]) return;
    char *dir = w->wd_path[ev->wd];
    if (ev->mask & IN_DELETE_SELF) {
        /* Its parent reports the deletion (IN_DELETE|IN_ISDIR); a root has no parent here. */
        for (size_t i = 0; i < w->n_roots; i++)
            if (strcmp(w->roots[i], dir) == 0) {
                log_warn("library folder %s was deleted", dir);
                emit(w, WATCH_DIR_REMOVED, dir);
            }
        free(dir);
        w->wd_path[ev->wd] = NULL;
        w->n_dirs--;
        return;
    }
    if (ev->mask & IN_IGNORED) {
        /* Not after a deletion or our own rm_watch (those cleared the entry): the kernel dropped
         * a watch we still wanted (unmount, ...). What happened below it is unknown. */
        log_warn("inotify dropped the watch on %s; rescanning it", dir);
        emit(w, WATCH_RESCAN, dir);
        drop_below(w, dir);
        return;
    }
    if (ev->len == 0 || ev->name[0] == '.' || ev->name[0] == '\0') return;
    char *path = join(dir, ev->name);
    if (ev->mask & IN_ISDIR) {
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            add_tree(w, path, true, NULL);
        } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
            drop_below(w, path);
            pending_drop_below(w, path);
            emit(w, WATCH_DIR_REMOVED, path);
        }
    } else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        pending_touch(w, path, true);
    } else if (ev->mask & IN_MODIFY) {
        pending_touch(w, path, false);
    } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
        pending_drop(w, path);
        emit(w, WATCH_REMOVED, path);
    }
    free(path);
}

int watch_process(Watch *w, ErrMsg *e)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    int count = 0;
    bool forced = w->force_overflow;
    w->force_overflow = false;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return err_set(e, "reading inotify: %s", strerror(errno));
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (!forced) handle(w, ev);
            count++;
            p += sizeof *ev + ev->len;
        }
    }
    if (forced) overflow(w, "forced overflow (test build)");
    return count;
}

int watch_timeout_ms(const Watch *w)
{
    if (w->out_len) return 0;
    if (!w->head) return -1;
    double ms = (w->head->deadline - common_now()) * 1000.0;
    return ms <= 0 ? 0 : (int)ms + 1;
}

bool watch_next(Watch *w, WatchEvent *ev)
{
    free(w->last);
    w->last = NULL;
    if (!w->out_len && w->head && w->head->deadline <= common_now()) {
        Pending *p = w->head;
        emit(w, WATCH_READY, p->path);
        pending_delete(w, p);
    }
    if (!w->out_len) return false;
    OutEvent o = w->out[w->out_head++];
    if (--w->out_len == 0) w->out_head = 0;
    w->last = o.path;
    ev->kind = o.kind;
    ev->path = o.path;
    return true;
}

size_t watch_dir_count(const Watch *w)
{
    return w->n_dirs;
}

size_t watch_pending(const Watch *w)
{
    return w->n_pending;
}

void watch_debug_force_overflow(Watch *w)
{
    w->force_overflow = true;
}

void watch_debug_limit_watches(Watch *w, size_t max)
{
    w->debug_max_watches = max;
}
