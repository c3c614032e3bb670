/* train/data.c: label tables and data sets, from a folder tree (label = parent folder name,
 * optional list of relative paths) or from the GENRE tags of a user's library.
 * It reads tags but never writes any; audio is not decoded here (see features.c).
 * Invariants: every item of a labelled set has 0 <= label < labels.n; item order is the
 * list order (or sorted paths), so runs are reproducible for a given seed. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "decode.h"
#include "tagger.h"
#include "train.h"

static const char *const gtzan_names[10] = {"blues", "classical", "country", "disco", "hiphop",
                                            "jazz",  "metal",     "pop",     "reggae", "rock"};
static const char *const gtzan_display[10] = {"Blues", "Classical", "Country", "Disco",
                                              "Hip-Hop", "Jazz", "Metal", "Pop", "Reggae",
                                              "Rock"};

void train_labels_gtzan(TrainLabels *out)
{
    out->n = 10;
    out->names = xcalloc(10, sizeof(char *));
    out->display = xcalloc(10, sizeof(char *));
    for (int i = 0; i < 10; i++) {
        out->names[i] = xstrdup(gtzan_names[i]);
        out->display[i] = xstrdup(gtzan_display[i]);
    }
}

void train_labels_free(TrainLabels *l)
{
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        free(l->names[i]);
        free(l->display[i]);
    }
    free(l->names);
    free(l->display);
    memset(l, 0, sizeof *l);
}

void train_fold_label(const char *in, char *out, size_t n)
{
    size_t k = 0;
    if (n == 0) return;
    for (const unsigned char *p = (const unsigned char *)in; *p && k + 1 < n; p++) {
        if (*p >= 0x80) out[k++] = (char)*p; /* keep UTF-8 genres ("Música") distinct */
        else if (isalnum(*p)) out[k++] = (char)tolower(*p);
    }
    out[k] = 0;
}

int train_labels_find(const TrainLabels *l, const char *name)
{
    char key[256], other[256];
    train_fold_label(name, key, sizeof key);
    if (!key[0]) return -1;
    for (int i = 0; i < l->n; i++) {
        train_fold_label(l->names[i], other, sizeof other);
        if (!strcmp(key, other)) return i;
        if (l->display && l->display[i]) {
            train_fold_label(l->display[i], other, sizeof other);
            if (!strcmp(key, other)) return i;
        }
    }
    return -1;
}

void train_set_free(TrainSet *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].path);
        free(s->items[i].rel);
        free(s->items[i].group);
        free(s->items[i].raw);
    }
    free(s->items);
    train_labels_free(&s->labels);
    memset(s, 0, sizeof *s);
}

/* ---- file lists ---- */

typedef struct StrList {
    char **v;
    int n, cap;
} StrList;

static void strlist_push(StrList *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = xrealloc(l->v, (size_t)l->cap * sizeof(char *));
    }
    l->v[l->n++] = s;
}

static void strlist_free(StrList *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *r = xmalloc(la + lb + 2);
    memcpy(r, a, la);
    size_t k = la;
    if (la && a[la - 1] != '/') r[k++] = '/';
    memcpy(r + k, b, lb + 1);
    return r;
}

/* Collects audio files under dir+rel recursively as paths relative to dir. */
static int walk(const char *dir, const char *rel, StrList *out, int depth, ErrMsg *e)
{
    if (depth > 32) return 0; /* symlink loops: stop rather than recurse forever */
    char *full = rel[0] ? path_join(dir, rel) : xstrdup(dir);
    DIR *d = opendir(full);
    if (!d) {
        int r = err_set(e, "cannot open folder %s: %s", full, strerror(errno));
        free(full);
        return r;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *r = rel[0] ? path_join(rel, de->d_name) : xstrdup(de->d_name);
        char *p = path_join(dir, r);
        struct stat st;
        if (stat(p, &st) < 0) { /* a dangling link or a file gone meanwhile: not data */
            free(r);
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(dir, r, out, depth + 1, e);
            free(r);
        } else if (S_ISREG(st.st_mode) && decode_is_audio_name(r)) {
            strlist_push(out, r);
        } else {
            free(r);
        }
        free(p);
    }
    closedir(d);
    free(full);
    return rc;
}

static int read_list(const char *path, StrList *out, ErrMsg *e)
{
    uint8_t *data;
    size_t len;
    ErrMsg e2;
    if (common_read_file(path, &data, &len, &e2) < 0)
        return err_set(e, "cannot read list %s: %s", path, e2.msg);
    char *save = NULL;
    for (char *line = strtok_r((char *)data, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        while (*line == ' ' || *line == '\t') line++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = 0;
        if (!l || line[0] == '#') continue;
        strlist_push(out, xstrdup(line));
    }
    free(data);
    return 0;
}

/* Name of the folder holding rel ("excerpts/blues/x.flac" -> "blues"); NULL at top level. */
static char *parent_name(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    if (!slash) return NULL;
    const char *start = slash;
    while (start > rel && start[-1] != '/') start--;
    size_t n = (size_t)(slash - start);
    char *r = xmalloc(n + 1);
    memcpy(r, start, n);
    r[n] = 0;
    return r;
}

/* A path and its place in the list, ordered by text and then by place. */
typedef struct ListEntry {
    const char *path;
    int at;
} ListEntry;

static int cmp_entry(const void *a, const void *b)
{
    const ListEntry *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Drops the later copies of paths listed twice (a file in both of two lists would weigh
 * double in training); keeps the first one's place, so one list's order is unchanged. */
static void strlist_drop_repeats(StrList *l)
{
    ListEntry *sorted = xmalloc((size_t)l->n * sizeof(ListEntry));
    for (int i = 0; i < l->n; i++) sorted[i] = (ListEntry){l->v[i], i};
    qsort(sorted, (size_t)l->n, sizeof(ListEntry), cmp_entry);
    char *repeat = xcalloc((size_t)(l->n ? l->n : 1), 1);
    for (int i = 1; i < l->n; i++)
        if (!strcmp(sorted[i].path, sorted[i - 1].path)) repeat[sorted[i].at] = 1;
    free(sorted);
    int k = 0, dropped = 0;
    for (int i = 0; i < l->n; i++) {
        if (repeat[i]) {
            free(l->v[i]);
            dropped++;
        } else {
            l->v[k++] = l->v[i];
        }
    }
    free(repeat);
    l->n = k;
    if (dropped) log_warn("%d files listed more than once: each one is used once", dropped);
}

int train_set_from_folder(const char *dir, const char *const *lists, int n_lists, TrainSet *out,
                          ErrMsg *e)
{
    memset(out, 0, sizeof *out);
    StrList files = {0};
    if (n_lists > 0) {
        for (int i = 0; i < n_lists; i++)
            if (read_list(lists[i], &files, e) < 0) {
                strlist_free(&files);
                return -1;
            }
        if (n_lists > 1) strlist_drop_repeats(&files);
    } else {
        if (walk(dir, "", &files, 0, e) < 0) {
            strlist_free(&files);
            return -1;
        }
        qsort(files.v, (size_t)files.n, sizeof(char *), cmp_str);
    }
    out->items = xcalloc((size_t)(files.n ? files.n : 1), sizeof(TrainItem));
    for (int i = 0; i < files.n; i++) {
        char *raw = parent_name(files.v[i]);
        if (!raw) {
            log_warn("%s: not inside a label folder, skipped", files.v[i]);
            continue;
        }
        TrainItem *it = &out->items[out->n++];
        it->rel = xstrdup(files.v[i]);
        it->path = path_join(dir, files.v[i]);
        it->raw = raw;
        it->group = xstrdup(raw);
        it->label = -1;
    }
    strlist_free(&files);
    if (out->n == 0) {
        train_set_free(out);
        if (n_lists == 0) return err_set(e, "no audio files in %s", dir);
        char names[400] = "";
        for (int i = 0, at = 0; i < n_lists && at < (int)sizeof names; i++)
            at += snprintf(names + at, sizeof names - (size_t)at, "%s%s", i ? " + " : "", lists[i]);
        return err_set(e, "no audio files in %s", names);
    }
    return 0;
}

int train_set_label_with(TrainSet *s, const TrainLabels *l, int *dropped, ErrMsg *e)
{
    (void)e;
    int k = 0, drop = 0;
    for (int i = 0; i < s->n; i++) {
        TrainItem it = s->items[i];
        it.label = train_labels_find(l, it.raw);
        if (it.label < 0) {
            log_debug("%s: label '%s' is not one of the model's, skipped", it.rel, it.raw);
            free(it.path);
            free(it.rel);
            free(it.group);
            free(it.raw);
            drop++;
            continue;
        }
        s->items[k++] = it;
    }
    s->n = k;
    if (dropped) *dropped = drop;
    train_labels_free(&s->labels);
    s->labels.n = l->n;
    s->labels.names = xcalloc((size_t)l->n, sizeof(char *));
    s->labels.display = xcalloc((size_t)l->n, sizeof(char *));
    for (int i = 0; i < l->n; i++) {
        s->labels.names[i] = xstrdup(l->names[i]);
        s->labels.display[i] = xstrdup(l->display ? l->display[i] : l->names[i]);
    }
    return 0;
}

static void labels_copy(TrainLabels *dst, const TrainLabels *src)
{
    dst->n = src->n;
    dst->names = xcalloc((size_t)src->n, sizeof(char *));
    dst->display = xcalloc((size_t)src->n, sizeof(char *));
    for (int i = 0; i < src->n; i++) {
        dst->names[i] = xstrdup(src->names[i]);
        dst->display[i] = xstrdup(src->display[i]);
    }
}

int train_sets_label_folders(TrainSet **sets, int n, ErrMsg *e)
{
    TrainLabels table = {0};
    train_labels_gtzan(&table);
    int all_gtzan = 1;
    for (int s = 0; s < n && all_gtzan; s++)
        for (int i = 0; i < sets[s]->n; i++)
            if (train_labels_find(&table, sets[s]->items[i].raw) < 0) {
                all_gtzan = 0;
                break;
            }
    if (!all_gtzan) {
        /* The user's own folder names: sorted folded keys, first spelling as display. */
        train_labels_free(&table);
        StrList keys = {0}, disp = {0};
        for (int s = 0; s < n; s++)
            for (int i = 0; i < sets[s]->n; i++) {
                char key[256];
                train_fold_label(sets[s]->items[i].raw, key, sizeof key);
                if (!key[0]) continue;
                int found = 0;
                for (int k = 0; k < keys.n && !found; k++) found = !strcmp(keys.v[k], key);
                if (!found) {
                    strlist_push(&keys, xstrdup(key));
                    strlist_push(&disp, xstrdup(sets[s]->items[i].raw));
                }
            }
        if (keys.n < 2) {
            strlist_free(&keys);
            strlist_free(&disp);
            return err_set(e, "need at least two label folders, found %d", keys.n);
        }
        /* sort keys and display names together */
        for (int a = 1; a < keys.n; a++)
            for (int b = a; b > 0 && strcmp(keys.v[b - 1], keys.v[b]) > 0; b--) {
                char *t = keys.v[b];
                keys.v[b] = keys.v[b - 1];
                keys.v[b - 1] = t;
                t = disp.v[b];
                disp.v[b] = disp.v[b - 1];
                disp.v[b - 1] = t;
            }
        table.n = keys.n;
        table.names = keys.v;
        table.display = disp.v;
    }
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < sets[s]->n; i++)
            sets[s]->items[i].label = train_labels_find(&table, sets[s]->items[i].raw);
        train_labels_free(&sets[s]->labels);
        labels_copy(&sets[s]->labels, &table);
        /* items whose folder folds to nothing ("---") cannot be labelled */
        int k = 0;
        for (int i = 0; i < sets[s]->n; i++) {
            if (sets[s]->items[i].label >= 0) {
                sets[s]->items[k++] = sets[s]->items[i];
            } else {
                log_warn("%s: folder name gives no label, skipped", sets[s]->items[i].rel);
                free(sets[s]->items[i].path);
                free(sets[s]->items[i].rel);
                free(sets[s]->items[i].group);
                free(sets[s]->items[i].raw);
            }
        }
        sets[s]->n = k;
    }
    train_labels_free(&table);
    return 0;
}

/* ---- labels from tags ---- */

typedef struct TagJob {
    char **paths;
    TaggerInfo *info;
    int *ok;
    int n;
    atomic_int next;
} TagJob;

static void *tag_worker(void *arg)
{
    TagJob *j = arg;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        ErrMsg e;
        j->ok[i] = tagger_read(j->paths[i], &j->info[i], &e) == 0;
        if (!j->ok[i]) log_warn("%s: %s", j->paths[i], e.msg);
    }
    return NULL;
}

typedef struct MapEntry {
    char from[256], to[256];
} MapEntry;

static int read_map(const char *path, MapEntry **out, int *n, ErrMsg *e)
{
    StrList lines = {0};
    if (read_list(path, &lines, e) < 0) return -1;
    *out = xcalloc((size_t)(lines.n ? lines.n : 1), sizeof(MapEntry));
    *n = 0;
    for (int i = 0; i < lines.n; i++) {
        char *eq = strchr(lines.v[i], '=');
        if (!eq) {
            int r = err_set(e, "%s: line '%s' is not 'from = to'", path, lines.v[i]);
            strlist_free(&lines);
            free(*out);
            *out = NULL;
            return r;
        }
        *eq = 0;
        MapEntry *m = &(*out)[(*n)++];
        train_fold_label(lines.v[i], m->from, sizeof m->from);
        /* keep the target's spelling for the display name: store trimmed original */
        const char *to = eq + 1;
        while (*to == ' ' || *to == '\t') to++;
        snprintf(m->to, sizeof m->to, "%s", to);
    }
    strlist_free(&lines);
    return 0;
}

static uint64_t hash_str(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void train_set_hold_out(TrainSet *s, double frac, uint64_t seed, TrainSet *valid)
{
    train_set_free(valid);
    memset(valid, 0, sizeof *valid);
    valid->items = xcalloc((size_t)(s->n ? s->n : 1), sizeof(TrainItem));
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        double u = (double)(hash_str(s->items[i].rel, seed) >> 11) * 0x1.0p-53;
        if (u < frac) valid->items[valid->n++] = s->items[i];
        else s->items[k++] = s->items[i];
    }
    s->n = k;
    labels_copy(&valid->labels, &s->labels);
}

typedef struct LabelCount {
    char key[256];
    int count;
    int n_spell;
    char spell[8][256]; /* most common original spelling wins; 8 variants is plenty */
    int spell_count[8];
} LabelCount;

int train_sets_from_tags(char *const *dirs, int n_dirs, const TrainTagOptions *o,
                         TrainSet *train, TrainSet *valid, TrainTagStats *st, ErrMsg *e)
{
    memset(train, 0, sizeof *train);
    memset(valid, 0, sizeof *valid);
    memset(st, 0, sizeof *st);
    MapEntry *map = NULL;
    int n_map = 0;
    if (o->map_file && read_map(o->map_file, &map, &n_map, e) < 0) return -1;

    StrList paths = {0}, rels = {0};
    for (int d = 0; d < n_dirs; d++) {
        StrList f = {0};
        if (walk(dirs[d], "", &f, 0, e) < 0) {
            strlist_free(&f);
            strlist_free(&paths);
            strlist_free(&rels);
            free(map);
            return -1;
        }
        qsort(f.v, (size_t)f.n, sizeof(char *), cmp_str);
        for (int i = 0; i < f.n; i++) {
            strlist_push(&paths, path_join(dirs[d], f.v[i]));
            strlist_push(&rels, f.v[i]);
        }
        free(f.v);
    }
    st->files = paths.n;
    TagJob job = {.paths = paths.v, .n = paths.n};
    job.info = xcalloc((size_t)(paths.n ? paths.n : 1), sizeof(TaggerInfo));
    job.ok = xcalloc((size_t)(paths.n ? paths.n : 1), sizeof(int));
    atomic_init(&job.next, 0);
    int nt = o->threads > 0 ? o->threads : common_cpu_count();
    if (nt > 16) nt = 16;
    pthread_t th[16];
    int started = 0;
    for (int t = 0; t < nt; t++)
        if (pthread_create(&th[t], NULL, tag_worker, &job) == 0) started++;
    if (started == 0) tag_worker(&job);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);

    /* fold + map each usable file's genre; count labels and spellings */
    char (*key)[256] = xcalloc((size_t)(paths.n ? paths.n : 1), 256);
    LabelCount *lc = NULL;
    int n_lc = 0;
    for (int i = 0; i < paths.n; i++) {
        key[i][0] = 0;
        if (!job.ok[i]) {
            st->unreadable++;
            continue;
        }
        TaggerInfo *ti = &job.info[i];
        if (ti->confidence[0]) { /* genred's own guess: learning from it would feed back */
            st->genred_tagged++;
            continue;
        }
        if (!ti->genre[0]) {
            st->untagged++;
            continue;
        }
        const char *spelling = ti->genre;
        train_fold_label(spelling, key[i], 256);
        for (int m = 0; m < n_map; m++)
            if (!strcmp(map[m].from, key[i])) {
                spelling = map[m].to;
                train_fold_label(spelling, key[i], 256);
                break;
            }
        if (!key[i][0]) {
            st->untagged++;
            continue;
        }
        int k;
        for (k = 0; k < n_lc; k++)
            if (!strcmp(lc[k].key, key[i])) break;
        if (k == n_lc) {
            lc = xrealloc(lc, (size_t)(n_lc + 1) * sizeof(LabelCount));
            memset(&lc[k], 0, sizeof lc[k]);
            snprintf(lc[k].key, sizeof lc[k].key, "%s", key[i]);
            n_lc++;
        }
        lc[k].count++;
        int s;
        for (s = 0; s < lc[k].n_spell; s++)
            if (!strcmp(lc[k].spell[s], spelling)) break;
        if (s == lc[k].n_spell && s < 8) {
            snprintf(lc[k].spell[s], sizeof lc[k].spell[s], "%s", spelling);
            lc[k].n_spell++;
        }
        if (s < 8) lc[k].spell_count[s]++;
    }

    /* label table: kept labels sorted by key */
    TrainLabels table = {0};
    table.names = xcalloc((size_t)(n_lc ? n_lc : 1), sizeof(char *));
    table.display = xcalloc((size_t)(n_lc ? n_lc : 1), sizeof(char *));
    for (int a = 1; a < n_lc; a++)
        for (int b = a; b > 0 && strcmp(lc[b - 1].key, lc[b].key) > 0; b--) {
            LabelCount t = lc[b];
            lc[b] = lc[b - 1];
            lc[b - 1] = t;
        }
    if (o->report) fprintf(o->report, "labels from tags (%d files):\n", paths.n);
    for (int k = 0; k < n_lc; k++) {
        int best = 0;
        for (int s = 1; s < lc[k].n_spell; s++)
            if (lc[k].spell_count[s] > lc[k].spell_count[best]) best = s;
        int keep = lc[k].count >= o->min_per_label;
        if (o->report)
            fprintf(o->report, "  %-24s %5d files%s\n", lc[k].spell[best], lc[k].count,
                    keep ? "" : "  (dropped: fewer than --min-per-label)");
        if (!keep) {
            st->rare_labels++;
            st->rare_dropped += lc[k].count;
            continue;
        }
        table.names[table.n] = xstrdup(lc[k].key);
        table.display[table.n] = xstrdup(lc[k].spell[best]);
        table.n++;
    }
    if (o->report)
        fprintf(o->report,
                "  %d untagged, %d tagged by genred (ignored), %d unreadable, %d in %d rare "
                "labels dropped\n",
                st->untagged, st->genred_tagged, st->unreadable, st->rare_dropped,
                st->rare_labels);

    int rc = 0;
    if (table.n < 2) {
        rc = err_set(e, "need at least two labels with enough tagged files, found %d", table.n);
        goto done;
    }

    /* artist groups: the held-out ones are chosen by a seeded hash, so a group is never split
     * and the choice does not depend on file order */
    train->items = xcalloc((size_t)paths.n, sizeof(TrainItem));
    valid->items = xcalloc((size_t)paths.n, sizeof(TrainItem));
    for (int i = 0; i < paths.n; i++) {
        if (!key[i][0]) continue;
        int label = -1;
        for (int k = 0; k < table.n; k++)
            if (!strcmp(table.names[k], key[i])) label = k;
        if (label < 0) continue;
        char group[256];
        train_fold_label(job.info[i].artist, group, sizeof group);
        char *g;
        if (group[0]) {
            g = xstrdup(group);
        } else {
            char *p = xstrdup(paths.v[i]);
            char *slash = strrchr(p, '/');
            if (slash) *slash = 0;
            g = p; /* no artist: files of one folder (an album) stay together */
        }
        double u = (double)(hash_str(g, o->seed) >> 11) * 0x1.0p-53;
        TrainSet *dst = u < o->valid_fraction ? valid : train;
        TrainItem *it = &dst->items[dst->n++];
        it->path = xstrdup(paths.v[i]);
        it->rel = xstrdup(rels.v[i]);
        it->group = g;
        it->label = label;
        it->raw = xstrdup(job.info[i].genre);
    }
    labels_copy(&train->labels, &table);
    labels_copy(&valid->labels, &table);
    if (train->n == 0) rc = err_set(e, "no labelled files left for training");

done:
    train_labels_free(&table);
    free(lc);
    free(key);
    free(job.info);
    free(job.ok);
    strlist_free(&paths);
    strlist_free(&rels);
    free(map);
    if (rc < 0) {
        train_set_free(train);
        train_set_free(valid);
    }
    return rc;
}
