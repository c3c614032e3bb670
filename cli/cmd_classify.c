/* genred classify: prints the genre of each named file, in the order given, and writes
 * nothing. Plain output is `PATH<TAB>GENRE<TAB>CONFIDENCE`; --json prints one object per line.
 * A file that cannot be classified gets `genred: PATH: reason` on stderr; the rest go on. */
#include <getopt.h>
#include <stdio.h>

#include "cliutil.h"
#include "commands.h"
#include "pipeline.h"

static void help(FILE *f)
{
    fputs("usage: genred classify [OPTIONS] FILE...\n"
          "\n"
          "Prints PATH<TAB>GENRE<TAB>CONFIDENCE for each file (nothing is written to the files);\n"
          "control characters in a path are shown as \\n, \\t, \\r or \\xHH.\n"
          "\n"
          "  --json          one JSON object per line: path, genre (display name), label,\n"
          "                  confidence, model, probabilities {label: p}, windows [[p...]...];\n"
          "                  bytes of a path that are not UTF-8 are written as \\ufffd\n"
          "  -m, --model FILE  model file (default: $GENRED_MODEL, then the installed model)\n"
          "  -j, --jobs N    decoding threads (default: number of cores)\n"
          "  -b, --batch N   tracks per CNN batch (default 16)\n"
          "  -D, --device D  where the CNN runs: auto (GPU when usable), cpu or cuda;\n"
          "                  says on stderr which one it uses (default: auto, quietly)\n"
          "  -h, --help      this text\n"
          "\n"
          "Exit status: 0 all files classified, 1 some failed, 2 usage error or no model.\n",
          f);
}

typedef struct Ctx {
    const NnInfo *info;
    int json;
    int failed;
} Ctx;

static int on_result(const PipelineResult *r, void *user)
{
    Ctx *c = user;
    if (!r->ok) {
        fflush(stdout); /* keep stdout and stderr lines in input order on a terminal */
        cli_file_error(r->path, r->err.msg);
        c->failed++;
        return 0;
    }
    const NnInfo *in = c->info;
    if (!c->json) {
        common_put_text(stdout, r->path);
        printf("\t%s\t%.3f\n", in->display_names[r->top], r->confidence);
        return 0;
    }
    pipeline_result_json(stdout, r, in);
    fputc('\n', stdout);
    return 0;
}

int cmd_classify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        CLI_SCORING_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    CliScoring sc = {.batch = 16, .device = -1};
    Ctx c = {0};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, CLI_SCORING_SHORTOPTS "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'J': c.json = 1; break;
        case 'h': help(stdout); return CLI_OK;
        default: {
            int r = cli_scoring_option(&sc, ch, optarg);
            if (r <= 0) {
                if (r == 0) help(stderr);
                return CLI_USAGE;
            }
        }
        }
    }
    PipelineOptions po = {.jobs = sc.jobs, .batch = sc.batch, .ordered = 1};
    if (optind >= argc) {
        fputs("genred classify: no FILE given\n", stderr);
        help(stderr);
        return CLI_USAGE;
    }
    NnModel *m = cli_model_open(sc.model);
    if (!m) return CLI_USAGE;
    if (cli_model_device(m, sc.device < 0 ? NN_DEVICE_AUTO : sc.device, sc.device >= 0) < 0) {
        nn_model_free(m);
        return CLI_USAGE;
    }
    c.info = nn_model_info(m);
    ErrMsg e = {{0}};
    int rc = pipeline_classify(m, (const char *const *)argv + optind, argc - optind, &po,
                               on_result, &c, &e);
    if (rc < 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        c.failed++;
    }
    nn_model_free(m);
    fflush(stdout);
    return c.failed ? CLI_FAILED : CLI_OK;
}
