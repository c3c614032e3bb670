/* train/metrics.c: scoring items the way inference does (dB per window with its own max,
 * mean of the windows' softmax) and the figures genred eval prints: accuracy, balanced
 * accuracy, per-label precision/recall/count and the confusion matrix.
 * It is not the pipeline: items come as precomputed power mels (features.c), so a training
 * run can score valid every epoch without decoding again. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mel.h"
#include "train.h"

int train_predict(NnModel *m, const TrainFeat *f, int n, float *probs, ErrMsg *e)
{
    const NnInfo *info = nn_model_info(m);
    int L = info->n_labels;
    size_t cap = 0;
    float *x = NULL;
    float *p = NULL;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (probs) memset(probs + (size_t)i * L, 0, (size_t)L * sizeof(float));
        if (f[i].n_seg == 0) continue;
        if (f[i].frames < info->min_frames ||
            (info->fixed_frames > 0 && f[i].frames != info->fixed_frames)) {
            /* a track too short for the net (under min_frames) gets no prediction, like a
             * file that failed to decode, instead of failing the whole evaluation */
            log_warn("item %d: %d frames do not fit the net, skipped", i, f[i].frames);
            continue;
        }
        size_t per = (size_t)f[i].n_mels * f[i].frames;
        if (per * f[i].n_seg > cap) {
            cap = per * f[i].n_seg;
            x = xrealloc(x, cap * sizeof(float));
        }
        p = xrealloc(p, (size_t)f[i].n_seg * L * sizeof(float));
        memcpy(x, f[i].power, per * f[i].n_seg * sizeof(float));
        for (int s = 0; s < f[i].n_seg; s++) mel_power_to_db(x + s * per, (int)per);
        if (nn_forward(m, x, f[i].n_seg, f[i].frames, p, e) < 0) {
            rc = -1;
            break;
        }
        if (probs)
            for (int s = 0; s < f[i].n_seg; s++)
                for (int k = 0; k < L; k++)
                    probs[(size_t)i * L + k] += p[(size_t)s * L + k] / (float)f[i].n_seg;
    }
    free(x);
    free(p);
    return rc;
}

void train_metrics(const float *probs, const int *truth, const char *mask, int n, int n_labels,
                   TrainMetrics *out)
{
    memset(out, 0, sizeof *out);
    out->n_labels = n_labels;
    out->confusion = xcalloc((size_t)n_labels * n_labels, sizeof(int));
    double loss = 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        if ((mask && !mask[i]) || truth[i] < 0 || truth[i] >= n_labels) continue;
        const float *p = probs + (size_t)i * n_labels;
        float sum = 0;
        int best = 0;
        for (int k = 0; k < n_labels; k++) {
            sum += p[k];
            if (p[k] > p[best]) best = k;
        }
        if (sum <= 0) continue; /* an item that failed to decode has no prediction */
        out->confusion[truth[i] * n_labels + best]++;
        right += best == truth[i];
        loss -= log(fmax(p[truth[i]], 1e-12));
        out->n++;
    }
    if (out->n == 0) return;
    out->accuracy = (double)right / out->n;
    out->loss = loss / out->n;
    double rsum = 0;
    int present = 0;
    for (int t = 0; t < n_labels; t++) {
        int row = 0;
        for (int k = 0; k < n_labels; k++) row += out->confusion[t * n_labels + k];
        if (!row) continue;
        rsum += (double)out->confusion[t * n_labels + t] / row;
        present++;
    }
    out->balanced = present ? rsum / present : 0;
}

void train_metrics_free(TrainMetrics *m)
{
    if (!m) return;
    free(m->confusion);
    m->confusion = NULL;
}

void train_metrics_print(FILE *f, const TrainMetrics *m, const TrainLabels *l)
{
    int L = m->n_labels;
    fprintf(f, "tracks %d  accuracy %.3f  balanced accuracy %.3f\n", m->n, m->accuracy,
            m->balanced);
    int w = 5;
    for (int k = 0; k < L; k++) {
        int len = (int)strlen(l->names[k]);
        if (len > w) w = len;
    }
    fprintf(f, "%-*s  precision  recall  count\n", w, "label");
    for (int k = 0; k < L; k++) {
        int row = 0, col = 0;
        for (int j = 0; j < L; j++) {
            row += m->confusion[k * L + j];
            col += m->confusion[j * L + k];
        }
        int tp = m->confusion[k * L + k];
        char prec[16], rec[16];
        if (col) snprintf(prec, sizeof prec, "%.3f", (double)tp / col);
        else snprintf(prec, sizeof prec, "-");
        if (row) snprintf(rec, sizeof rec, "%.3f", (double)tp / row);
        else snprintf(rec, sizeof rec, "-");
        fprintf(f, "%-*s  %9s  %6s  %5d\n", w, l->names[k], prec, rec, row);
    }
    /* columns are abbreviated to keep the table narrow: the row label says which is which */
    int cw = 6;
    fprintf(f, "confusion (rows: true, columns: predicted)\n%-*s", w, "");
    for (int k = 0; k < L; k++) {
        char abbr[8];
        snprintf(abbr, sizeof abbr, "%.5s", l->names[k]);
        fprintf(f, " %*s", cw, abbr);
    }
    fputc('\n', f);
    for (int t = 0; t < L; t++) {
        fprintf(f, "%-*s", w, l->names[t]);
        for (int k = 0; k < L; k++) fprintf(f, " %*d", cw, m->confusion[t * L + k]);
        fputc('\n', f);
    }
}
