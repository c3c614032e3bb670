/* genred: the command-line entry point. It only dispatches to the subcommands of commands.h
 * (git style: `genred CMD [OPTIONS] ARGS`); each subcommand parses its own options, prints
 * its own --help and returns the exit status (0 ok, 1 some input failed, 2 usage error). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "cliutil.h"
#include "commands.h"
#include "cuda.h"

#ifndef GENRED_VERSION
#define GENRED_VERSION "0"
#endif

static const struct Command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"classify", cmd_classify, "print the genre of audio files (writes nothing)"},
    {"tag", cmd_tag, "classify audio files and folders and write GENRE tags"},
    {"mel", cmd_mel, "write a file's mel spectrogram windows as .npy (and .png)"},
    {"train", cmd_train, "train a model on a folder of labelled audio"},
    {"finetune", cmd_finetune, "fine-tune a model with noise augmentation (or on your own tags)"},
    {"eval", cmd_eval, "measure a model's accuracy on labelled audio"},
    {"watch", cmd_watch, "run the daemon that keeps music libraries tagged"},
    {"status", cmd_status, "show what the daemon's state database knows"},
    {"untag", cmd_untag, "restore the genres files had before genred"},
    {"serve", cmd_serve, "serve the web page: classify clips, see and correct the library"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fputs("usage: genred COMMAND [OPTIONS] [ARGS]\n"
          "       genred --help | --version | help COMMAND\n"
          "\n"
          "Tags a music library with genres predicted by a small CNN on mel spectrograms.\n"
          "\n"
          "commands:\n",
          f);
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun `genred COMMAND --help` for a command's options.\n", f);
}

static const struct Command *find(const char *name)
{
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* Runs c with argv[0] (and cli_prog) "genred CMD": getopt's own messages ("option '--jobs'
 * requires an argument") and the usage errors start with it. */
static int run(const struct Command *c, int argc, char **argv)
{
    char prog[32];
    snprintf(prog, sizeof prog, "genred %s", c->name);
    argv[0] = prog;
    cli_prog = prog;
    return c->run(argc, argv);
}

int main(int argc, char **argv)
{
    /* GENRED_LOG_LEVEL=debug shows e.g. where the pipeline's time went. */
    const char *lvl = getenv("GENRED_LOG_LEVEL");
    if (lvl && *lvl) {
        int l = common_log_level_parse(lvl);
        if (l < 0) {
            fprintf(stderr, "genred: GENRED_LOG_LEVEL: want error, warn, info or debug, not '%s'\n",
                    lvl);
            return 2;
        }
        common_log_level = l;
    }
    /* registers the GPU backends; the stub of a CPU-only build just says it has none */
    ErrMsg ce = {{0}};
    if (cuda_backend_init(&ce) != 0) log_debug("genred: %s", ce.msg);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("genred %s (%s)\n", GENRED_VERSION, cuda_built ? "with CUDA" : "CPU only");
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const struct Command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "genred: no such command '%s'\n", argv[2]);
            return 2;
        }
        char *hargv[] = {argv[2], "--help", NULL};
        return run(c, 2, hargv);
    }
    const struct Command *c = find(name);
    if (!c) {
        fprintf(stderr, "genred: no such command '%s'; see `genred --help`\n", name);
        return 2;
    }
    return run(c, argc - 1, argv + 1);
}
