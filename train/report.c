/* train/report.c: the evaluation report shared by `genred eval` and the end of `genred train`:
 * overall figures, per-label table, confusion matrix, figures for the excerpts and the whole
 * clips apart (when the relative paths hold those folder names), an optional picture through
 * plot_confusion, and an optional one-line JSON summary printed last.
 * It computes nothing new: figures come from train_metrics. */
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "train.h"

/* True when one folder component of rel equals name. */
static int has_component(const char *rel, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = rel; (p = strstr(p, name)); p += n)
        if ((p == rel || p[-1] == '/') && p[n] == '/') return 1;
    return 0;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_metrics(FILE *f, const TrainMetrics *m, const TrainLabels *l)
{
    int L = m->n_labels;
    fprintf(f, "\"accuracy\":%.4f,\"balanced_accuracy\":%.4f,\"n\":%d,\"per_genre\":{", m->accuracy,
            m->balanced, m->n);
    for (int k = 0; k < L; k++) {
        int row = 0, col = 0, tp = m->confusion[k * L + k];
        for (int j = 0; j < L; j++) {
            row += m->confusion[k * L + j];
            col += m->confusion[j * L + k];
        }
        if (k) fputc(',', f);
        json_str(f, l->names[k]);
        fprintf(f, ":{\"precision\":");
        if (col) fprintf(f, "%.4f", (double)tp / col);
        else fprintf(f, "null");
        fprintf(f, ",\"recall\":");
        if (row) fprintf(f, "%.4f", (double)tp / row);
        else fprintf(f, "null");
        fprintf(f, ",\"count\":%d}", row);
    }
    fprintf(f, "}");
}

int train_report(FILE *f, const TrainSet *s, const float *probs, int json,
                 const char *confusion_path, const char *title, ErrMsg *e)
{
    int L = s->labels.n;
    int *truth = xmalloc((size_t)(s->n ? s->n : 1) * sizeof(int));
    char *mex = xcalloc((size_t)(s->n ? s->n : 1), 1);
    char *mcl = xcalloc((size_t)(s->n ? s->n : 1), 1);
    int nex = 0, ncl = 0;
    for (int i = 0; i < s->n; i++) {
        truth[i] = s->items[i].label;
        mex[i] = (char)has_component(s->items[i].rel, "excerpts");
        mcl[i] = (char)has_component(s->items[i].rel, "clips");
        nex += mex[i];
        ncl += mcl[i];
    }
    TrainMetrics all, ex, cl;
    train_metrics(probs, truth, NULL, s->n, L, &all);
    train_metrics(probs, truth, mex, s->n, L, &ex);
    train_metrics(probs, truth, mcl, s->n, L, &cl);
    train_metrics_print(f, &all, &s->labels);
    if (nex && ncl) {
        fprintf(f, "excerpts: tracks %d  accuracy %.3f  balanced accuracy %.3f\n", ex.n,
                ex.accuracy, ex.balanced);
        fprintf(f, "clips:    tracks %d  accuracy %.3f  balanced accuracy %.3f\n", cl.n,
                cl.accuracy, cl.balanced);
    }
    int rc = 0;
    if (confusion_path) {
        ErrMsg e2;
        if (plot_confusion(confusion_path, all.confusion, L, (const char *const *)s->labels.names,
                           title ? title : "genred confusion", &e2) < 0)
            rc = err_set(e, "%s: %s", confusion_path, e2.msg);
        else fprintf(f, "confusion matrix written to %s\n", confusion_path);
    }
    if (json) {
        fputc('{', f);
        json_metrics(f, &all, &s->labels);
        if (nex && ncl) {
            fprintf(f, ",\"excerpts\":{");
            json_metrics(f, &ex, &s->labels);
            fprintf(f, "},\"clips\":{");
            json_metrics(f, &cl, &s->labels);
            fputc('}', f);
        }
        fprintf(f, "}\n");
    }
    train_metrics_free(&all);
    train_metrics_free(&ex);
    train_metrics_free(&cl);
    free(truth);
    free(mex);
    free(mcl);
    return rc;
}
