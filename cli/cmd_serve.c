/* genred serve: the web page (web/web.h) on its own, in the foreground, until SIGINT or SIGTERM.
 * It turns flags into config settings (as watch does), resolves the model, starts the server
 * with the signals blocked (so no server thread takes them) and waits for one. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "commands.h"
#include "config.h"
#include "web.h"

static void help(FILE *f)
{
    fputs("usage: genred serve [OPTIONS]\n"
          "\n"
          "Serves the web page: classify an uploaded file or a recording from the microphone,\n"
          "see the library's genres (from the state database that `genred watch` and `genred tag`\n"
          "write), correct a genre. The JSON API is in the README and genred(1). Runs in the\n"
          "foreground until SIGINT or SIGTERM; `genred watch` serves the same page when web.listen\n"
          "is set.\n"
          "\n"
          "  -l, --listen HOST:PORT   address to serve (web.listen; default 127.0.0.1:7710; port 0:\n"
          "                           any free one). Anything but a loopback address needs a token\n"
          "  -T, --token-file FILE    the token every request must carry (web.token), read from\n"
          "                           the file's first line (not a flag: ps would show it)\n"
          "  -u, --max-upload-mb N    larger uploads get 413 (web.max_upload_mb, default 50)\n"
          "  -J, --max-jobs N         classifications at once, more get 503 (web.max_jobs, 2)\n"
          "  -c, --config FILE        config file (default $XDG_CONFIG_HOME/genred/genred.conf,\n"
          "                           then /etc/genred.conf)\n"
          "  -m, --model FILE         model file (model; default: the installed one)\n"
          "  -s, --state FILE         the library's state database (state.path)\n"
          "  -D, --device D           auto, cpu or cuda (device)\n"
          "  -H, --hooks-dir DIR      hooks run after a correction (hooks.dir)\n"
          "  -p, --print-config       print the effective settings and exit\n"
          "  -h, --help               this text\n"
          "\n"
          "Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot start, 2 usage error.\n",
          f);
}

/* The first line of path, without its newline, into out. */
static int read_token(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_file_error(path, "cannot read the token file");
        return -1;
    }
    if (!fgets(out, (int)n, f)) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (!out[0]) {
        cli_file_error(path, "the token file is empty");
        return -1;
    }
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},     {"token-file", required_argument, NULL, 'T'},
        {"max-upload-mb", required_argument, NULL, 'u'}, {"max-jobs", required_argument, NULL, 'J'},
        {"config", required_argument, NULL, 'c'},     {"model", required_argument, NULL, 'm'},
        {"state", required_argument, NULL, 's'},      {"device", required_argument, NULL, 'D'},
        {"hooks-dir", required_argument, NULL, 'H'},  {"print-config", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    struct {
        int flag;
        const char *name, *value;
    } set[32];
    size_t n_set = 0;
    const char *config_path = NULL, *model = NULL;
    char token[512];
    int print = 0;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "l:T:u:J:c:m:s:D:H:ph", opts, NULL)) != -1) {
        const char *name = NULL, *value = optarg;
        switch (ch) {
        case 'l': name = "web.listen"; break;
        case 'T':
            if (read_token(optarg, token, sizeof token) != 0) return CLI_USAGE;
            name = "web.token";
            value = token;
            break;
        case 'u': name = "web.max_upload_mb"; break;
        case 'J': name = "web.max_jobs"; break;
        case 'c': config_path = optarg; continue;
        case 'm': model = optarg; continue;
        case 's': name = "state.path"; break;
        case 'D': name = "device"; break;
        case 'H': name = "hooks.dir"; break;
        case 'p': print = 1; continue;
        case 'h': help(stdout); return CLI_OK;
        default: help(stderr); return CLI_USAGE;
        }
        if (n_set == sizeof set / sizeof set[0]) {
            fprintf(stderr, "%s: too many options\n", cli_prog);
            return CLI_USAGE;
        }
        set[n_set].flag = ch;
        set[n_set].name = name;
        set[n_set++].value = value;
    }
    if (optind < argc) {
        fprintf(stderr, "%s: takes no arguments ('%s')\n", cli_prog, argv[optind]);
        return CLI_USAGE;
    }
    Config c;
    ErrMsg e = {{0}};
    if (config_load(&c, config_path, &e) != 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < n_set; i++) {
        if (config_set(&c, set[i].name, set[i].value, &e) != 0) {
            const char *why = e.msg;
            size_t kl = strlen(set[i].name);
            if (strncmp(why, set[i].name, kl) == 0 && strncmp(why + kl, ": ", 2) == 0) why += kl + 2;
            fprintf(stderr, "%s: --%s (setting %s): %s\n", cli_prog, cli_option_name(opts, set[i].flag),
                    set[i].name, why);
            config_free(&c);
            return CLI_USAGE;
        }
    }
    if (print) {
        config_print(&c, stdout);
        config_free(&c);
        return CLI_OK;
    }
    common_log_level = c.log_level;
    if (getenv("GENRED_LOG_LEVEL") && *getenv("GENRED_LOG_LEVEL"))
        common_log_level = common_log_level_parse(getenv("GENRED_LOG_LEVEL"));
    char path[PATH_MAX];
    if (cli_model_path(model ? model : c.model, path, sizeof path, &e) != 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        config_free(&c);
        return CLI_USAGE;
    }
    /* Blocked before the server's threads exist: they inherit the mask, this thread waits. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    Web *w = web_start(&c, path, &e);
    config_free(&c);
    if (!w) {
        fprintf(stderr, "genred: serve: %s\n", e.msg);
        return CLI_FAILED;
    }
    /* One line a script can read the address from (port 0 picks one). */
    fprintf(stderr, "genred serve: listening on %s\n", web_url(w));
    int sig = 0;
    do {
        if (sigwait(&sigs, &sig) != 0) break;
        if (sig == SIGHUP) log_info("serve: SIGHUP: nothing to reload (the model reloads by itself)");
    } while (sig == SIGHUP);
    log_info("serve: %s: stopping", strsignal(sig));
    web_stop(w);
    return CLI_OK;
}
