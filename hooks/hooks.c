/* hooks: see hooks.h.
 * A submitted result becomes a Chain (its programs in order, its environment); at most
 * max_running chains are active, each in a slot with exactly one child alive. Child exit is
 * seen through a pidfd and output through a pipe, both in one epoll set so the caller polls one
 * fd. Everything is level-triggered and non-blocking: hooks_dispatch() just looks at every slot. */
#include "hooks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

extern char **environ;

typedef struct Program {
    char **argv; /* NULL-terminated, owned */
    char *name;  /* for log lines */
    bool search; /* look argv[0] up in PATH (config commands) */
} Program;

typedef struct Chain {
    struct Chain *next; /* queue link */
    Program *progs;
    size_t n_progs, at; /* at: the program running now (or next to start) */
    char **envp;        /* owned, NULL-terminated */
    char *path;         /* track, for log lines */
} Chain;

typedef struct Slot {
    Chain *chain; /* NULL: free */
    pid_t pid;
    int pidfd, outfd; /* -1 when closed */
    double started, deadline;
    int stage; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    char line[1024];
    size_t line_len;
} Slot;

struct Hooks {
    char *dir;
    Program *commands; /* templates without the path argument */
    size_t n_commands;
    double timeout, grace;
    size_t max_running, running;
    Slot *slots;
    Chain *queue_head, *queue_tail;
    size_t queued;
    int epfd;
    HooksStats stats;
};

static const char *const env_names[] = {"GENRED_PATH",           "GENRED_GENRE", "GENRED_CONFIDENCE",
                                        "GENRED_TOP",            "GENRED_MODEL", "GENRED_EVENT",
                                        "GENRED_PREVIOUS_GENRE"};
#define N_ENV (sizeof env_names / sizeof env_names[0])

static char **argv_dup(const char *const *argv, const char *extra)
{
    size_t n = 0;
    while (argv[n]) n++;
    char **out = xcalloc(n + 2, sizeof *out);
    for (size_t i = 0; i < n; i++) out[i] = xstrdup(argv[i]);
    if (extra) out[n] = xstrdup(extra);
    return out;
}

static void strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

static void chain_free(Chain *c)
{
    for (size_t i = 0; i < c->n_progs; i++) {
        strv_free(c->progs[i].argv);
        free(c->progs[i].name);
    }
    free(c->progs);
    strv_free(c->envp);
    free(c->path);
    free(c);
}

Hooks *hooks_new(const HooksOptions *opt, ErrMsg *e)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        err_set(e, "epoll_create1: %s", strerror(errno));
        return NULL;
    }
    Hooks *h = xcalloc(1, sizeof *h);
    h->epfd = epfd;
    h->dir = opt->dir ? xstrdup(opt->dir) : NULL;
    h->timeout = (opt->timeout_ms > 0 ? opt->timeout_ms : 30000) / 1000.0;
    h->grace = (opt->grace_ms > 0 ? opt->grace_ms : 2000) / 1000.0;
    h->max_running = opt->max_running > 0 ? (size_t)opt->max_running : 1;
    h->slots = xcalloc(h->max_running, sizeof *h->slots);
    for (size_t i = 0; i < h->max_running; i++) h->slots[i].pidfd = h->slots[i].outfd = -1;
    h->n_commands = opt->n_commands;
    h->commands = xcalloc(opt->n_commands, sizeof *h->commands);
    for (size_t i = 0; i < opt->n_commands; i++) {
        h->commands[i].argv = argv_dup(opt->commands[i], NULL);
        const char *a0 = opt->commands[i][0] ? opt->commands[i][0] : "";
        const char *slash = strrchr(a0, '/');
        h->commands[i].name = xstrdup(slash ? slash + 1 : a0);
        h->commands[i].search = true;
    }
    return h;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Executable regular files of the hooks directory, sorted byte-wise. */
static char **list_dir(const char *dir, size_t *n_out)
{
    *n_out = 0;
    if (!dir || !*dir) return NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT) log_warn("hooks directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || de->d_name[len - 1] == '~') continue;
        size_t plen = strlen(dir) + len + 2;
        char *p = xmalloc(plen);
        snprintf(p, plen, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || access(p, X_OK) != 0) {
            free(p);
            continue;
        }
        if (n == cap) names = xrealloc(names, (cap = cap ? 2 * cap : 8) * sizeof *names);
        names[n++] = p;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, name_cmp);
    *n_out = n;
    return names;
}

static char *env_entry(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value ? value : "") + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s=%s", name, value ? value : "");
    return s;
}

static char **build_env(const HooksResult *r)
{
    static const char *const events[] = {"tagged", "unchanged", "error", "corrected"};
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **env = xcalloc(n + N_ENV + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool ours = false;
        for (size_t j = 0; j < N_ENV && !ours; j++) {
            size_t l = strlen(env_names[j]);
            ours = strncmp(environ[i], env_names[j], l) == 0 && environ[i][l] == '=';
        }
        if (!ours) env[k++] = xstrdup(environ[i]);
    }
    char conf[32] = "";
    /* An error has no result; a corrected genre was set by hand and has no confidence. */
    if (r->event != HOOKS_ERROR && r->event != HOOKS_CORRECTED)
        snprintf(conf, sizeof conf, "%.3f", r->confidence);
    unsigned ev = (unsigned)r->event <= HOOKS_CORRECTED ? (unsigned)r->event : HOOKS_ERROR;
    env[k++] = env_entry("GENRED_PATH", r->path);
    env[k++] = env_entry("GENRED_GENRE", r->genre);
    env[k++] = env_entry("GENRED_CONFIDENCE", conf);
    env[k++] = env_entry("GENRED_TOP", r->top);
    env[k++] = env_entry("GENRED_MODEL", r->model);
    env[k++] = env_entry("GENRED_EVENT", events[ev]);
    env[k++] = env_entry("GENRED_PREVIOUS_GENRE", r->previous_genre);
    return env;
}

static void log_output_line(Slot *s)
{
    s->line[s->line_len] = '\0';
    /* A hook's output must not forge log lines: control bytes become '?'. */
    for (size_t i = 0; i < s->line_len; i++)
        if ((unsigned char)s->line[i] < 0x20 && s->line[i] != '\t') s->line[i] = '?';
    log_info("hook %s: %s", s->chain->progs[s->chain->at].name, s->line);
    s->line_len = 0;
}

/* Reads what the pipe holds; closes it at EOF. */
static void drain_output(Hooks *h, Slot *s)
{
    if (s->outfd < 0) return;
    char buf[4096];
    for (;;) {
        ssize_t r = read(s->outfd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r < 0 && errno == EAGAIN) return;
            epoll_ctl(h->epfd, EPOLL_CTL_DEL, s->outfd, NULL);
            close(s->outfd);
            s->outfd = -1;
            return;
        }
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == '\n') {
                log_output_line(s);
                continue;
            }
            s->line[s->line_len++] = buf[i];
            if (s->line_len == sizeof s->line - 1) log_output_line(s);
        }
    }
}

static void close_slot_fds(Hooks *h, Slot *s)
{
    if (s->outfd >= 0) {
        epoll_ctl(h->epfd, EPOLL_CTL_DEL, s->outfd, NULL);
        close(s->outfd);
        s->outfd = -1;
    }
    if (s->pidfd >= 0) {
        epoll_ctl(h->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
        close(s->pidfd);
        s->pidfd = -1;
    }
}

/* Starts the chain's current program; on spawn failure moves on to the next one.
 * Returns true when a child is running in the slot. */
static bool slot_spawn(Hooks *h, Slot *s)
{
    Chain *c = s->chain;
    for (; c->at < c->n_progs; c->at++) {
        Program *p = &c->progs[c->at];
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            log_error("hook %s: pipe: %s", p->name, strerror(errno));
            h->stats.failed++;
            continue;
        }
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
        /* The daemon's other descriptors (inotify, sqlite, sockets) are none of a hook's business. */
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        posix_spawnattr_init(&at);
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &all);
        posix_spawnattr_setpgroup(&at, 0);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
        pid_t pid;
        int rc = p->search ? posix_spawnp(&pid, p->argv[0], &fa, &at, p->argv, c->envp)
                           : posix_spawn(&pid, p->argv[0], &fa, &at, p->argv, c->envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        close(fds[1]);
        h->stats.started++;
        if (rc != 0) {
            close(fds[0]);
            log_warn("hook %s: cannot run it: %s", p->name, strerror(rc));
            h->stats.failed++;
            continue;
        }
        int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
            /* Without a pidfd we cannot watch it from the loop; do not leave it running unseen. */
            log_error("hook %s: pidfd_open: %s", p->name, strerror(errno));
            kill(-pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(fds[0]);
            h->stats.failed++;
            continue;
        }
        fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.fd = pidfd;
        epoll_ctl(h->epfd, EPOLL_CTL_ADD, pidfd, &ev);
        ev.data.fd = fds[0];
        epoll_ctl(h->epfd, EPOLL_CTL_ADD, fds[0], &ev);
        s->pid = pid;
        s->pidfd = pidfd;
        s->outfd = fds[0];
        s->started = common_now();
        s->deadline = s->started + h->timeout;
        s->stage = 0;
        s->line_len = 0;
        log_debug("hook %s: started (pid %d)", p->name, (int)pid);
        return true;
    }
    return false;
}

static void start_queued(Hooks *h)
{
    for (size_t i = 0; i < h->max_running && h->queue_head; i++) {
        Slot *s = &h->slots[i];
        while (!s->chain && h->queue_head) {
            Chain *c = h->queue_head;
            h->queue_head = c->next;
            if (!h->queue_head) h->queue_tail = NULL;
            h->queued--;
            s->chain = c;
            if (slot_spawn(h, s)) {
                h->running++;
            } else {
                chain_free(c);
                s->chain = NULL;
            }
        }
    }
}

/* The current program of the slot has exited with status st: account, then advance. */
static void slot_finished(Hooks *h, Slot *s, int st)
{
    Program *p = &s->chain->progs[s->chain->at];
    if (s->line_len) log_output_line(s);
    if (s->stage > 0) {
        /* Whatever the hook left behind in its group goes with it. */
        kill(-s->pid, SIGKILL);
        log_warn("hook %s: timed out after %.1f s for %s", p->name, h->timeout, s->chain->path);
        h->stats.failed++;
        h->stats.timed_out++;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        h->stats.succeeded++;
    } else if (WIFEXITED(st)) {
        log_warn("hook %s: exit status %d for %s", p->name, WEXITSTATUS(st), s->chain->path);
        h->stats.failed++;
    } else {
        log_warn("hook %s: killed by signal %d for %s", p->name, WTERMSIG(st), s->chain->path);
        h->stats.failed++;
    }
    close_slot_fds(h, s);
    s->chain->at++;
    h->running--;
    if (slot_spawn(h, s)) {
        h->running++;
        return;
    }
    chain_free(s->chain);
    s->chain = NULL;
}

void hooks_dispatch(Hooks *h)
{
    double now = common_now();
    for (size_t i = 0; i < h->max_running; i++) {
        Slot *s = &h->slots[i];
        if (!s->chain) continue;
        drain_output(h, s);
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r < 0 && errno == ECHILD) {
            /* Someone else reaped it (SIGCHLD ignored?): we cannot know how it ended. */
            drain_output(h, s);
            slot_finished(h, s, 0xff00);
            continue;
        }
        if (r == s->pid) {
            /* The pipe may still hold what it wrote just before exiting. */
            drain_output(h, s);
            slot_finished(h, s, st);
            continue;
        }
        if (now >= s->deadline && s->stage < 2) {
            kill(-s->pid, s->stage == 0 ? SIGTERM : SIGKILL);
            s->stage++;
            s->deadline = now + h->grace;
        }
    }
    start_queued(h);
}

int hooks_submit(Hooks *h, const HooksResult *r)
{
    size_t n_dir;
    char **dir_hooks = list_dir(h->dir, &n_dir);
    size_t n = n_dir + h->n_commands;
    if (n == 0) return 0;
    Chain *c = xcalloc(1, sizeof *c);
    c->progs = xcalloc(n, sizeof *c->progs);
    c->n_progs = n;
    const char *path = r->path ? r->path : "";
    for (size_t i = 0; i < n_dir; i++) {
        const char *argv[] = {dir_hooks[i], NULL};
        c->progs[i].argv = argv_dup(argv, path);
        const char *slash = strrchr(dir_hooks[i], '/');
        c->progs[i].name = xstrdup(slash ? slash + 1 : dir_hooks[i]);
        free(dir_hooks[i]);
    }
    free(dir_hooks);
    for (size_t i = 0; i < h->n_commands; i++) {
        Program *p = &c->progs[n_dir + i];
        p->argv = argv_dup((const char *const *)h->commands[i].argv, path);
        p->name = xstrdup(h->commands[i].name);
        p->search = true;
    }
    c->envp = build_env(r);
    c->path = xstrdup(path);
    if (h->queue_tail)
        h->queue_tail->next = c;
    else
        h->queue_head = c;
    h->queue_tail = c;
    h->queued++;
    start_queued(h);
    return (int)n;
}

int hooks_fd(const Hooks *h)
{
    return h->epfd;
}

int hooks_timeout_ms(const Hooks *h)
{
    double first = -1;
    for (size_t i = 0; i < h->max_running; i++)
        if (h->slots[i].chain && (first < 0 || h->slots[i].deadline < first))
            first = h->slots[i].deadline;
    if (first < 0) return -1;
    double ms = (first - common_now()) * 1000.0;
    return ms <= 0 ? 0 : (int)ms + 1;
}

size_t hooks_running(const Hooks *h)
{
    return h->running;
}

size_t hooks_pending(const Hooks *h)
{
    return h->running + h->queued;
}

void hooks_run_all(Hooks *h)
{
    while (hooks_pending(h) > 0) {
        struct pollfd p = {.fd = h->epfd, .events = POLLIN};
        poll(&p, 1, hooks_timeout_ms(h));
        hooks_dispatch(h);
    }
}

HooksStats hooks_stats(const Hooks *h)
{
    return h->stats;
}

void hooks_free(Hooks *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->max_running; i++) {
        Slot *s = &h->slots[i];
        if (!s->chain) continue;
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        close_slot_fds(h, s);
        chain_free(s->chain);
    }
    while (h->queue_head) {
        Chain *c = h->queue_head;
        h->queue_head = c->next;
        chain_free(c);
    }
    for (size_t i = 0; i < h->n_commands; i++) {
        strv_free(h->commands[i].argv);
        free(h->commands[i].name);
    }
    free(h->commands);
    free(h->slots);
    free(h->dir);
    close(h->epfd);
    free(h);
}

char *hooks_format_top(char *buf, size_t size, const char *const *labels, const float *probs,
                       size_t n, size_t k)
{
    if (size == 0) return buf;
    buf[0] = '\0';
    bool *used = xcalloc(n ? n : 1, sizeof *used);
    size_t len = 0;
    for (size_t r = 0; r < k && r < n; r++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (!used[i] && (best == n || probs[i] > probs[best])) best = i;
        used[best] = true;
        char item[256];
        int w = snprintf(item, sizeof item, "%s%s:%.3f", r ? "," : "", labels[best],
                         (double)probs[best]);
        if (w < 0 || (size_t)w >= sizeof item || len + (size_t)w >= size) break;
        memcpy(buf + len, item, (size_t)w + 1);
        len += (size_t)w;
    }
    free(used);
    return buf;
}
