/* genred mel: writes the mel windows of one file, exactly as the CNN sees them before input
 * scaling, as a float32 .npy array [windows, n_mels, frames] in dB, and optionally a picture.
 * It uses the model's settings when a model is found, else DESIGN.md's defaults (seed-cnn:
 * 6 windows of 4 s, short tracks zero-padded). The .npy file is written atomically. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "commands.h"
#include "pipeline.h"
#include "plot.h"

static void help(FILE *f)
{
    fputs("usage: genred mel [OPTIONS] FILE -o OUT.npy [--png OUT.png]\n"
          "\n"
          "Writes FILE's analysis windows as a float32 numpy array [windows, mels, frames] of\n"
          "log-mel values in dB ([-80, 0]; 6 x 64 x 173 for the default 4 s windows).\n"
          "\n"
          "  -o, --output OUT.npy  the array (NumPy .npy format 1.0, little-endian float32)\n"
          "  --png OUT.png         also draw the windows (PNG, or SVG if OUT ends in .svg)\n"
          "  -m, --model FILE      take window and mel settings from this model (default:\n"
          "                        $GENRED_MODEL, then the installed model, else the defaults)\n"
          "  -h, --help            this text\n"
          "\n"
          "Exit status: 0 ok, 1 the file could not be read or written, 2 usage error.\n",
          f);
}

/* NumPy format 1.0: magic, version, u16 header length, a Python dict literal padded with
 * spaces to a 64-byte boundary and ended by '\n', then the raw data in C order. */
static int write_npy(const char *path, const float *data, int d0, int d1, int d2, ErrMsg *e)
{
    char dict[128];
    int dl = snprintf(dict, sizeof dict,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }", d0, d1,
                      d2);
    size_t pre = 10, hlen = (size_t)dl + 1;
    size_t total_head = (pre + hlen + 63) / 64 * 64;
    hlen = total_head - pre;
    size_t nbytes = (size_t)d0 * (size_t)d1 * (size_t)d2 * sizeof(float);
    unsigned char *buf = xmalloc(total_head + nbytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xFF);
    buf[9] = (unsigned char)(hlen >> 8);
    memset(buf + pre, ' ', hlen);
    memcpy(buf + pre, dict, (size_t)dl);
    buf[total_head - 1] = '\n';
    /* x86 and arm64 Linux are little-endian, matching '<f4'. */
    memcpy(buf + total_head, data, nbytes);
    int rc = common_write_atomic(path, buf, total_head + nbytes, e);
    free(buf);
    return rc;
}

int cmd_mel(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"png", required_argument, NULL, 'P'},
        {"model", required_argument, NULL, 'm'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *png = NULL, *model = NULL;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "o:m:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'P': png = optarg; break;
        case 'm': model = optarg; break;
        case 'h': help(stdout); return CLI_OK;
        default: help(stderr); return CLI_USAGE;
        }
    }
    if (optind != argc - 1 || (!out && !png)) {
        fputs("genred mel: want exactly one FILE and -o OUT.npy and/or --png OUT.png\n", stderr);
        help(stderr);
        return CLI_USAGE;
    }
    const char *path = argv[optind];

    PipelineSettings s = pipeline_settings_default();
    char mpath[PATH_MAX];
    ErrMsg e = {{0}};
    if (cli_model_path(model, mpath, sizeof mpath, &e) == 0) {
        NnModel *m = nn_model_load(mpath, &e);
        if (!m) {
            cli_file_error(mpath, e.msg);
            return CLI_USAGE;
        }
        s = pipeline_settings_from_model(nn_model_info(m));
        nn_model_free(m);
    }

    float *db = NULL;
    int nw = 0, nm = 0, frames = 0;
    if (pipeline_mel(path, &s, &db, &nw, &nm, &frames, &e) != 0) {
        cli_file_error(path, e.msg);
        return CLI_FAILED;
    }
    int rc = CLI_OK;
    if (out && write_npy(out, db, nw, nm, frames, &e) != 0) {
        cli_file_error(out, e.msg);
        rc = CLI_FAILED;
    }
    if (png) {
        const char *slash = strrchr(path, '/');
        if (plot_mel_png(png, db, nw, nm, frames, s.decode.sample_rate, s.hop,
                         slash ? slash + 1 : path, &e) != 0) {
            cli_file_error(png, e.msg);
            rc = CLI_FAILED;
        }
    }
    free(db);
    return rc;
}
