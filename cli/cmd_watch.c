/* genred watch: runs the tagging daemon (daemon/daemon.h) in the foreground. It only turns
 * flags into config settings ("name=value", applied over the config file by the daemon at start
 * and on every SIGHUP) and hands over; it never forks (systemd or the shell backgrounds it). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "commands.h"
#include "config.h"
#include "daemon.h"

static void help(FILE *f)
{
    fputs("usage: genred watch [OPTIONS] [DIR...]\n"
          "\n"
          "Watches the music libraries (the DIRs, else `libraries` of the config) and keeps every\n"
          "audio file in them tagged: at start it tags what is new or changed since the state\n"
          "database last saw it, then each file that is added, copied, moved in or rewritten,\n"
          "once it has been quiet for the debounce time. Runs in the foreground, logs to stderr.\n"
          "SIGHUP reloads the config and the model; SIGTERM or SIGINT finish the running batch\n"
          "and exit 0.\n"
          "\n"
          "  -c, --config FILE        config file (default $XDG_CONFIG_HOME/genred/genred.conf,\n"
          "                           then /etc/genred.conf)\n"
          "  -m, --model FILE         model file                    (model)\n"
          "  -s, --state FILE         state database                (state.path)\n"
          "  -l, --log-level L        error, warn, info, debug      (log.level)\n"
          "  -d, --debounce-ms N      quiet time before a file is read (debounce_ms)\n"
          "  -b, --batch-max-tracks N tracks per batch              (batch.max_tracks)\n"
          "  -w, --batch-max-wait-ms N  longest wait for a batch to fill (batch.max_wait_ms)\n"
          "  -j, --jobs N             decoding threads, 0 = per CPU (jobs)\n"
          "  -f, --force              overwrite hand-set genres     (tag.force)\n"
          "  -C, --min-confidence X   write no genre below this     (tag.min_confidence)\n"
          "  -H, --hooks-dir DIR      hook executables              (hooks.dir)\n"
          "  -x, --hook CMD           one more hook command         (hooks.commands)\n"
          "  -D, --device D           auto, cpu or cuda             (device)\n"
          "  -p, --print-config       print the effective settings and exit\n"
          "  -h, --help               this text\n"
          "\n"
          "Exit status: 0 after SIGTERM/SIGINT, 1 when it cannot start, 2 usage error.\n",
          f);
}

static char *absolute(const char *p)
{
    char *r = realpath(p, NULL);
    return r ? r : xstrdup(p);
}

int cmd_watch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"model", required_argument, NULL, 'm'},
        {"state", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"debounce-ms", required_argument, NULL, 'd'},
        {"batch-max-tracks", required_argument, NULL, 'b'},
        {"batch-max-wait-ms", required_argument, NULL, 'w'},
        {"jobs", required_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},
        {"min-confidence", required_argument, NULL, 'C'},
        {"hooks-dir", required_argument, NULL, 'H'},
        {"hook", required_argument, NULL, 'x'},
        {"device", required_argument, NULL, 'D'},
        {"print-config", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    DaemonSetting set[64];
    int set_flag[64]; /* the option each setting came from, to name it in an error */
    char *owned[64];
    size_t n_set = 0, n_owned = 0;
    const char *config_path = NULL;
    int print = 0;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:m:s:l:d:b:w:j:fC:H:x:D:ph", opts, NULL)) != -1) {
        const char *name = NULL, *value = optarg;
        switch (ch) {
        case 'c': config_path = optarg; continue;
        case 'm': name = "model"; value = owned[n_owned++] = absolute(optarg); break;
        case 's': name = "state.path"; break;
        case 'l': name = "log.level"; break;
        case 'd': name = "debounce_ms"; break;
        case 'b': name = "batch.max_tracks"; break;
        case 'w': name = "batch.max_wait_ms"; break;
        case 'j': name = "jobs"; break;
        case 'f': name = "tag.force"; value = "true"; break;
        case 'C': name = "tag.min_confidence"; break;
        case 'H': name = "hooks.dir"; break;
        case 'x': name = "hooks.commands"; break;
        case 'D': name = "device"; break;
        case 'p': print = 1; continue;
        case 'h': help(stdout); return CLI_OK;
        default: help(stderr); return CLI_USAGE;
        }
        if (n_set == sizeof set / sizeof set[0] || n_owned == sizeof owned / sizeof owned[0]) {
            fprintf(stderr, "genred: too many options\n");
            return CLI_USAGE;
        }
        set_flag[n_set] = ch;
        set[n_set++] = (DaemonSetting){name, value};
    }
    /* Check every flag now, so a typo is a usage error rather than a daemon that will not
     * start (the daemon applies them again over the file). */
    Config c;
    ErrMsg e = {{0}};
    int rc = CLI_OK;
    if (config_load(&c, config_path, &e) != 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        rc = CLI_USAGE;
        goto out;
    }
    for (size_t i = 0; i < n_set; i++)
        if (config_set(&c, set[i].name, set[i].value, &e) != 0) {
            /* e says "jobs: must be ...": name the option the user typed, then the setting */
            const char *flag = cli_option_name(opts, set_flag[i]), *why = e.msg;
            size_t kl = strlen(set[i].name);
            if (strncmp(why, set[i].name, kl) == 0 && strncmp(why + kl, ": ", 2) == 0) why += kl + 2;
            fprintf(stderr, "genred watch: --%s (setting %s): %s\n", flag, set[i].name, why);
            rc = CLI_USAGE;
            break;
        }
    if (!rc && print) config_print(&c, stdout);
    config_free(&c);
    if (rc || print) goto out;

    char **dirs = argv + optind;
    size_t n_dirs = (size_t)(argc - optind);
    char **abs = xcalloc(n_dirs + 1, sizeof *abs);
    for (size_t i = 0; i < n_dirs; i++) abs[i] = absolute(dirs[i]);
    DaemonOptions o = {.config_path = config_path,
                       .settings = set,
                       .n_settings = n_set,
                       .libraries = (const char *const *)abs,
                       .n_libraries = n_dirs,
                       .model_path = cli_model_path,
                       .debug_signals = getenv("GENRED_DEBUG_SIGNALS") != NULL};
    if (daemon_run(&o, &e) != 0) {
        fprintf(stderr, "genred: watch: %s\n", e.msg);
        rc = CLI_FAILED;
    }
    for (size_t i = 0; i < n_dirs; i++) free(abs[i]);
    free(abs);
out:
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    return rc;
}
