/* tagger_probe: a small command-line driver of the tagger API for test_tagger.py.
 * Not a user tool (the CLI is that): it prints what the API returned, one key=value per line,
 * and exits 0 on success, 1 when the API returned -1 (after printing "error=REASON"),
 * 2 on bad usage. The `threads` command tags several distinct files at once, one thread
 * each, to exercise the "thread-safe for distinct files" promise under the sanitizers. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagger.h"

static int usage(void)
{
    fprintf(stderr, "usage: tagger_probe read FILE\n"
                    "       tagger_probe write FILE GENRE CONFIDENCE MODEL [--force] [--dry-run]\n"
                    "       tagger_probe restore FILE [PREVIOUS [UNDO]]\n"
                    "       tagger_probe hand FILE GENRE\n"
                    "       tagger_probe threads GENRE CONFIDENCE MODEL FILE...\n"
                    "       tagger_probe extensions\n");
    return 2;
}

static int fail(const ErrMsg *e)
{
    printf("error=%s\n", e->msg);
    return 1;
}

typedef struct Job {
    const char *path;
    TaggerWrite w;
    int rc, outcome;
    ErrMsg e;
} Job;

static void *run_job(void *arg)
{
    Job *j = arg;
    j->rc = tagger_write(j->path, &j->w, &j->outcome, NULL, &j->e);
    return NULL;
}

int main(int argc, char **argv)
{
    ErrMsg e = {{0}};
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "read") == 0 && argc == 3) {
        TaggerInfo info;
        if (tagger_read(argv[2], &info, &e) != 0) return fail(&e);
        printf("genre=%s\nartist=%s\nconfidence=%s\nmodel=%s\n", info.genre, info.artist,
               info.confidence, info.model);
        return 0;
    }
    if (strcmp(cmd, "write") == 0 && argc >= 6) {
        TaggerWrite w = {.genre = argv[3], .confidence = atof(argv[4]), .model_id = argv[5]};
        for (int i = 6; i < argc; i++) {
            if (strcmp(argv[i], "--force") == 0) w.force = 1;
            else if (strcmp(argv[i], "--dry-run") == 0) w.dry_run = 1;
            else return usage();
        }
        int outcome = -1;
        char *undo = NULL;
        if (tagger_write(argv[2], &w, &outcome, &undo, &e) != 0) return fail(&e);
        printf("outcome=%s\n", tagger_outcome_name(outcome));
        if (undo) printf("undo=%s\n", undo);
        free(undo);
        return 0;
    }
    if (strcmp(cmd, "restore") == 0 && argc >= 3 && argc <= 5) {
        if (tagger_restore(argv[2], argc >= 4 ? argv[3] : NULL, argc == 5 ? argv[4] : NULL, &e) != 0)
            return fail(&e);
        printf("restored=1\n");
        return 0;
    }
    if (strcmp(cmd, "hand") == 0 && argc == 4) {
        if (tagger_set_hand_genre(argv[2], argv[3], &e) != 0) return fail(&e);
        printf("written=1\n");
        return 0;
    }
    if (strcmp(cmd, "threads") == 0 && argc >= 6) {
        int n = argc - 5;
        Job *jobs = calloc((size_t)n, sizeof *jobs);
        pthread_t *tids = calloc((size_t)n, sizeof *tids);
        if (!jobs || !tids) return 1;
        for (int i = 0; i < n; i++) {
            jobs[i].path = argv[5 + i];
            jobs[i].w = (TaggerWrite){.genre = argv[2], .confidence = atof(argv[3]), .model_id = argv[4]};
            if (pthread_create(&tids[i], NULL, run_job, &jobs[i]) != 0) return 1;
        }
        int bad = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(tids[i], NULL);
            if (jobs[i].rc != 0) {
                printf("error=%s: %s\n", jobs[i].path, jobs[i].e.msg);
                bad = 1;
            } else {
                printf("outcome=%s: %s\n", jobs[i].path, tagger_outcome_name(jobs[i].outcome));
            }
        }
        free(jobs);
        free(tids);
        return bad;
    }
    if (strcmp(cmd, "extensions") == 0 && argc == 2) {
        for (const char *const *x = tagger_extensions(); *x; x++) printf("%s\n", *x);
        return 0;
    }
    return usage();
}
