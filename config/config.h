/* config: genred's settings, their defaults and bounds in one table, read from a libconfig file
 * (DESIGN.md §9).
 *
 * What it is: the only module that includes libconfig.h. config_load() finds the file
 * (--config FILE, else $XDG_CONFIG_HOME/genred/genred.conf, else /etc/genred.conf, else none),
 * applies it over the built-in defaults and rejects unknown keys and bad values with
 * "FILE:LINE: ..." messages. config_set() applies one "name=value" from a command-line flag
 * through the same table, so a flag and a file line are checked alike.
 *
 * What it is not: it does not act on settings (open the model, change the log level).
 *
 * Invariants: a Config owns its strings; path settings are expanded ("~", "$HOME",
 * "$XDG_CONFIG_HOME", "$XDG_STATE_HOME", "$XDG_DATA_HOME", "$XDG_CACHE_HOME", "$XDG_RUNTIME_DIR"
 * with the XDG defaults when unset); a failed load leaves the Config as it was before. */
#ifndef GENRED_CONFIG_H
#define GENRED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common.h"

enum ConfigDevice { CONFIG_DEVICE_AUTO = 0, CONFIG_DEVICE_CPU = 1, CONFIG_DEVICE_CUDA = 2 };

typedef struct ConfigStrings {
    char **items;
    size_t n;
} ConfigStrings;

typedef struct ConfigCommands {
    char ***argv; /* n NULL-terminated argument vectors */
    size_t n;
} ConfigCommands;

typedef struct Config {
    ConfigStrings libraries;   /* libraries: folders watched and scanned */
    char *model;               /* model: a .safetensors file; "" = the installed default */
    int device;                /* device: enum ConfigDevice */
    int batch_max_tracks;      /* batch.max_tracks */
    int batch_max_wait_ms;     /* batch.max_wait_ms */
    int debounce_ms;           /* debounce_ms */
    int jobs;                  /* jobs: decode threads, 0 = one per CPU */
    bool tag_force;            /* tag.force: overwrite genres set by hand */
    double tag_min_confidence; /* tag.min_confidence: below it, no tag is written */
    char *hooks_dir;           /* hooks.dir */
    ConfigCommands hooks_commands; /* hooks.commands */
    double hooks_timeout_s;    /* hooks.timeout_s */
    int hooks_max_running;     /* hooks.max_running */
    char *state_path;          /* state.path */
    int log_level;             /* log.level: enum LogLevel */
    char *web_listen;          /* web.listen: "HOST:PORT"; "" = none (genred serve: loopback) */
    char *web_token;           /* web.token: "" = none (loopback only) */
    int web_max_upload_mb;     /* web.max_upload_mb */
    int web_max_jobs;          /* web.max_jobs: classifications at once */
    char *source;              /* the file that was read, NULL when defaults only */
} Config;

/* Fills c with the defaults (expanded against the environment now). */
int config_defaults(Config *c, ErrMsg *e);
void config_free(Config *c);

/* The file config_load would read: explicit_path when given (even if missing, so that the
 * load fails loudly), else the first existing of $XDG_CONFIG_HOME/genred/genred.conf and
 * system_path (NULL: "/etc/genred.conf"); NULL when none exists. Free the result. */
char *config_locate(const char *explicit_path, const char *system_path);

/* Defaults, then the located file over them. Fills c on success (its old contents are not
 * freed); leaves it untouched on failure. */
int config_load(Config *c, const char *explicit_path, ErrMsg *e);
/* Applies one file over the current values of c. */
int config_load_file(Config *c, const char *path, ErrMsg *e);

/* Applies one setting from text, e.g. ("batch.max_tracks", "32"), ("tag.force", "yes"),
 * ("hooks.commands", "mpc add") (one command, split like a file's string form),
 * ("libraries", "/srv/music") (replaces the list with one folder). */
int config_set(Config *c, const char *name, const char *value, ErrMsg *e);

/* Splits a command line into words without a shell: blanks separate words, '...' quotes
 * literally, "..." quotes with \" and \\ escapes, a backslash outside quotes escapes the next
 * character. No variables, globs or substitutions. NULL-terminated vector; NULL on error. */
char **config_split_command(const char *s, ErrMsg *e);

/* The table, for --help and the man page. */
typedef struct ConfigInfo {
    const char *name, *type, *default_value, *help;
} ConfigInfo;
size_t config_count(void);
ConfigInfo config_info(size_t i);

/* Writes the effective settings in libconfig syntax (reads back with config_load_file). */
void config_print(const Config *c, FILE *f);

#endif
