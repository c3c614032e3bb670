/* cliutil: helpers the subcommands share: model lookup, folder walking, number parsing,
 * JSON string escaping, a growable list of strings. Not a library for other modules: only
 * the genred binary uses it, so these helpers may print to stderr (as `genred: ...`). */
#ifndef GENRED_CLIUTIL_H
#define GENRED_CLIUTIL_H

#include <stdio.h>

#include "common.h"
#include "nn.h"
#include "state.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

typedef struct CliList {
    char **v;
    int n, cap;
} CliList;
void cli_list_push(CliList *l, const char *s);
void cli_list_free(CliList *l);

/* Finds the model file: opt (--model), else $GENRED_MODEL, else the installed
 * GENRED_MODEL_INSTALL_DIR/genred.safetensors, else the source tree's models/. Returns 0 with
 * the path in out, or -1 with "no model found; ..." in e. */
int cli_model_path(const char *opt, char *out, size_t outsz, ErrMsg *e);
/* cli_model_path + nn_model_load; prints `genred: ...` and returns NULL on failure. */
NnModel *cli_model_open(const char *opt);

/* Adds every audio file under each of paths to out (files named directly are added whatever
 * their name; in folders only names decode_is_audio_name accepts), in sorted order, following
 * symbolic links but never into a folder already visited (no loops, no duplicates).
 * Prints `genred: PATH: reason` for what cannot be read and returns how many of those. */
int cli_collect(char *const *paths, int n, CliList *out);

/* The scoring options classify and tag share: -m/--model, -j/--jobs, -b/--batch, -D/--device.
 * Put CLI_SCORING_LONGOPTS in the option table and CLI_SCORING_SHORTOPTS in the short string,
 * and hand every option the command does not know itself to cli_scoring_option. */
typedef struct CliScoring {
    const char *model; /* NULL: the usual lookup (cli_model_path) */
    int jobs, batch;   /* decoding threads (0: per CPU), tracks per CNN call */
    int device;        /* enum NnDevice, -1: not given (auto, quietly) */
} CliScoring;
#define CLI_SCORING_LONGOPTS                                                                       \
    {"model", required_argument, NULL, 'm'}, {"jobs", required_argument, NULL, 'j'},              \
        {"batch", required_argument, NULL, 'b'}, {"device", required_argument, NULL, 'D'}
#define CLI_SCORING_SHORTOPTS "m:j:b:D:"
/* 1: ch was one of them (stored in s), 0: it is not, -1: a bad value (usage error printed). */
int cli_scoring_option(CliScoring *s, int ch, const char *arg);

/* The running command, "genred tag" (set by main), that usage errors start with. */
extern const char *cli_prog;

struct option; /* <getopt.h> */
/* The long name of the option whose getopt value is val ("jobs"), "?" when none has it. */
const char *cli_option_name(const struct option *opts, int val);

/* Parses a --device value: auto, cpu or cuda (enum NnDevice); 0, or -1 after a usage error. */
int cli_parse_device(const char *s, int *out);
/* nn_model_set_device, then when announce is set one line on stderr saying which device
 * scores (and, for auto on the CPU, why not the GPU). Returns 0, or -1 after printing why
 * `cuda` cannot be used. */
int cli_model_device(NnModel *m, int device, int announce);

/* Parses a whole decimal int in [lo, hi]; 0 or -1 (prints a usage error naming opt). */
int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out);

/* common_put_json_string, under the name the commands use. */
void cli_json_string(FILE *f, const char *s);

/* `genred: PATH: reason` on stderr, as one line (common_put_text). */
void cli_file_error(const char *path, const char *reason);

/* mkdir -p. */
int cli_mkdirs(const char *path, ErrMsg *e);

/* Opens the daemon's state database: state_path when given, else the config's state.path
 * (config_path, or the usual lookup). On failure prints `genred: ...` and returns NULL with
 * *rc set (CLI_USAGE for a bad config, CLI_FAILED for a database that cannot be opened).
 * *path gets the database path (malloc'd) on success. */
State *cli_state_open(const char *config_path, const char *state_path, bool create, char **path,
                      int *rc);

#endif
