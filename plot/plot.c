/* plot: pictures through cairo's toy text API. plot_mel_png draws spectrograms the way librosa's
 * specshow(x_axis='time', y_axis='mel') + colorbar(format='%+2.0f dB') shows them: magma colour
 * map fixed to [-80, 0] dB, time in seconds, mel axis labelled in Hz. plot_confusion draws a
 * count matrix, each row's colour normalised by its row total, as PNG or SVG.
 * Not here: any computing of spectrograms or statistics.
 * Invariants: every picture is rendered into memory and handed to common_write_atomic, so a
 * failure never leaves a partial file. No global state; safe from any thread (cairo is).
 * cairo's SVG backend draws text as glyph outlines, so the SVG also carries the title and the
 * label names in <title>/<desc> elements, for screen readers and for grep. */
#include "plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* matplotlib's magma (CC0, Smith & van der Walt), rounded to 8-bit sRGB: 0xRRGGBB. */
static const uint32_t magma[256] = {
    0x000004, 0x010005, 0x010106, 0x010108,
    0x020109, 0x02020b, 0x02020d, 0x03030f,
    0x030312, 0x040414, 0x050416, 0x060518,
    0x06051a, 0x07061c, 0x08071e, 0x090720,
    0x0a0822, 0x0b0924, 0x0c0926, 0x0d0a29,
    0x0e0b2b, 0x100b2d, 0x110c2f, 0x120d31,
    0x130d34, 0x140e36, 0x150e38, 0x160f3b,
    0x180f3d, 0x19103f, 0x1a1042, 0x1c1044,
    0x1d1147, 0x1e1149, 0x20114b, 0x21114e,
    0x221150, 0x241253, 0x251255, 0x271258,
    0x29115a, 0x2a115c, 0x2c115f, 0x2d1161,
    0x2f1163, 0x311165, 0x331067, 0x341069,
    0x36106b, 0x38106c, 0x390f6e, 0x3b0f70,
    0x3d0f71, 0x3f0f72, 0x400f74, 0x420f75,
    0x440f76, 0x451077, 0x471078, 0x491078,
    0x4a1079, 0x4c117a, 0x4e117b, 0x4f127b,
    0x51127c, 0x52137c, 0x54137d, 0x56147d,
    0x57157e, 0x59157e, 0x5a167e, 0x5c167f,
    0x5d177f, 0x5f187f, 0x601880, 0x621980,
    0x641a80, 0x651a80, 0x671b80, 0x681c81,
    0x6a1c81, 0x6b1d81, 0x6d1d81, 0x6e1e81,
    0x701f81, 0x721f81, 0x732081, 0x752181,
    0x762181, 0x782281, 0x792282, 0x7b2382,
    0x7c2382, 0x7e2482, 0x802582, 0x812581,
    0x832681, 0x842681, 0x862781, 0x882781,
    0x892881, 0x8b2981, 0x8c2981, 0x8e2a81,
    0x902a81, 0x912b81, 0x932b80, 0x942c80,
    0x962c80, 0x982d80, 0x992d80, 0x9b2e7f,
    0x9c2e7f, 0x9e2f7f, 0xa02f7f, 0xa1307e,
    0xa3307e, 0xa5317e, 0xa6317d, 0xa8327d,
    0xaa337d, 0xab337c, 0xad347c, 0xae347b,
    0xb0357b, 0xb2357b, 0xb3367a, 0xb5367a,
    0xb73779, 0xb83779, 0xba3878, 0xbc3978,
    0xbd3977, 0xbf3a77, 0xc03a76, 0xc23b75,
    0xc43c75, 0xc53c74, 0xc73d73, 0xc83e73,
    0xca3e72, 0xcc3f71, 0xcd4071, 0xcf4070,
    0xd0416f, 0xd2426f, 0xd3436e, 0xd5446d,
    0xd6456c, 0xd8456c, 0xd9466b, 0xdb476a,
    0xdc4869, 0xde4968, 0xdf4a68, 0xe04c67,
    0xe24d66, 0xe34e65, 0xe44f64, 0xe55064,
    0xe75263, 0xe85362, 0xe95462, 0xea5661,
    0xeb5760, 0xec5860, 0xed5a5f, 0xee5b5e,
    0xef5d5e, 0xf05f5e, 0xf1605d, 0xf2625d,
    0xf2645c, 0xf3655c, 0xf4675c, 0xf4695c,
    0xf56b5c, 0xf66c5c, 0xf66e5c, 0xf7705c,
    0xf7725c, 0xf8745c, 0xf8765c, 0xf9785d,
    0xf9795d, 0xf97b5d, 0xfa7d5e, 0xfa7f5e,
    0xfa815f, 0xfb835f, 0xfb8560, 0xfb8761,
    0xfc8961, 0xfc8a62, 0xfc8c63, 0xfc8e64,
    0xfc9065, 0xfd9266, 0xfd9467, 0xfd9668,
    0xfd9869, 0xfd9a6a, 0xfd9b6b, 0xfe9d6c,
    0xfe9f6d, 0xfea16e, 0xfea36f, 0xfea571,
    0xfea772, 0xfea973, 0xfeaa74, 0xfeac76,
    0xfeae77, 0xfeb078, 0xfeb27a, 0xfeb47b,
    0xfeb67c, 0xfeb77e, 0xfeb97f, 0xfebb81,
    0xfebd82, 0xfebf84, 0xfec185, 0xfec287,
    0xfec488, 0xfec68a, 0xfec88c, 0xfeca8d,
    0xfecc8f, 0xfecd90, 0xfecf92, 0xfed194,
    0xfed395, 0xfed597, 0xfed799, 0xfed89a,
    0xfdda9c, 0xfddc9e, 0xfddea0, 0xfde0a1,
    0xfde2a3, 0xfde3a5, 0xfde5a7, 0xfde7a9,
    0xfde9aa, 0xfdebac, 0xfcecae, 0xfceeb0,
    0xfcf0b2, 0xfcf2b4, 0xfcf4b6, 0xfcf6b8,
    0xfcf7b9, 0xfcf9bb, 0xfcfbbd, 0xfcfdbf,
};

enum { FONT_SIZE = 12, MEL_PANEL_W = 720, MEL_PANEL_H = 256, MAX_IMAGE_SIDE = 32767 };

typedef struct Buf {
    uint8_t *data;
    size_t len, cap;
} Buf;

static cairo_status_t buf_write(void *closure, const unsigned char *data, unsigned int length)
{
    Buf *b = closure;
    if (b->len + length > b->cap) {
        b->cap = (b->len + length) * 2 + 4096;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, length);
    b->len += length;
    return CAIRO_STATUS_SUCCESS;
}

static int has_extension(const char *path, const char *ext)
{
    const char *dot = strrchr(path, '.');
    return dot && !strchr(dot, '/') && strcasecmp(dot, ext) == 0;
}

static void magma_rgb(float db, double *r, double *g, double *b)
{
    /* matplotlib's Normalize(-80, 0) then a 256-entry ListedColormap: floor(x * 256) */
    int i = isnan(db) ? 0 : (int)floor((db + 80.0) / 80.0 * 256.0);
    uint32_t c = magma[i < 0 ? 0 : i > 255 ? 255 : i];
    *r = (c >> 16 & 0xff) / 255.0;
    *g = (c >> 8 & 0xff) / 255.0;
    *b = (c & 0xff) / 255.0;
}

static double slaney_hz_to_mel(double hz)
{
    return hz < 1000.0 ? hz * 3.0 / 200.0 : 15.0 + log(hz / 1000.0) / (log(6.4) / 27.0);
}

static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Draws s with its reference point (ax, ay) placed by fractions of its ink box: ax 0 = left,
 * 0.5 = centred, 1 = right; ay likewise top to bottom. */
static void text_at(cairo_t *cr, double x, double y, double ax, double ay, const char *s)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_move_to(cr, x - te.x_bearing - ax * te.width, y - te.y_bearing - ay * te.height);
    cairo_show_text(cr, s);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* One step from 1-2-5 series that gives at most max_ticks ticks over span. */
static double tick_step(double span, int max_ticks)
{
    static const double steps[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,  2,
                                   5,    10,   15,   30,  60,  120, 300, 600};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (span / steps[i] <= max_ticks) return steps[i];
    return ceil(span / max_ticks / 600.0) * 600.0;
}

/* Encodes the picture as PNG into *out (malloc'd) and destroys s and cr. */
static int encode_png(cairo_surface_t *s, cairo_t *cr, Buf *out, ErrMsg *e)
{
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    Buf buf = {0};
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png_stream(s, buf_write, &buf);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        free(buf.data);
        return err_set(e, "cairo: %s", cairo_status_to_string(st));
    }
    *out = buf;
    return 0;
}

static int finish_png(cairo_surface_t *s, cairo_t *cr, const char *path, ErrMsg *e)
{
    Buf buf = {0};
    if (encode_png(s, cr, &buf, e) != 0) return -1;
    int rc = common_write_atomic(path, buf.data, buf.len, e);
    free(buf.data);
    return rc;
}

static void draw_mel_panel(cairo_t *cr, cairo_surface_t *img, double x0, double y0, int frames,
                           int n_mels, int sample_rate, int hop)
{
    /* the image, low bands at the bottom; nearest-neighbour like pcolormesh's flat cells */
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, MEL_PANEL_W, MEL_PANEL_H);
    cairo_clip(cr);
    cairo_translate(cr, x0, y0);
    cairo_scale(cr, (double)MEL_PANEL_W / frames, (double)MEL_PANEL_H / n_mels);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_t *pat = cairo_get_source(cr);
    cairo_pattern_set_extend(pat, CAIRO_EXTEND_PAD);
    cairo_pattern_set_filter(pat, frames > MEL_PANEL_W ? CAIRO_FILTER_GOOD : CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);

    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, MEL_PANEL_W + 1, MEL_PANEL_H + 1);
    cairo_stroke(cr);
    set_font(cr, FONT_SIZE - 1, 0);
    char label[32];

    /* time: specshow puts frame t at t * hop / sr seconds and the panel spans frames of them */
    double seconds = (double)frames * hop / sample_rate, step = tick_step(seconds, 8);
    for (int k = 0; k * step <= seconds + 1e-9; k++) {
        double x = x0 + k * step / seconds * MEL_PANEL_W;
        cairo_move_to(cr, x, y0 + MEL_PANEL_H);
        cairo_line_to(cr, x, y0 + MEL_PANEL_H + 4);
        cairo_stroke(cr);
        snprintf(label, sizeof label, "%g", k * step);
        text_at(cr, x, y0 + MEL_PANEL_H + 7, 0.5, 0, label);
    }

    /* mel axis in Hz, powers of two like librosa's mel ticker, dropped when crowded */
    double max_mel = slaney_hz_to_mel(sample_rate / 2.0), last_y = 1e9;
    for (double hz = 0; hz <= sample_rate / 2.0; hz = hz == 0 ? 64 : hz * 2) {
        double y = y0 + MEL_PANEL_H * (1.0 - slaney_hz_to_mel(hz) / max_mel);
        if (last_y - y < 16) continue;
        last_y = y;
        cairo_move_to(cr, x0 - 4, y);
        cairo_line_to(cr, x0, y);
        cairo_stroke(cr);
        snprintf(label, sizeof label, "%g", hz);
        text_at(cr, x0 - 7, y, 1, 0.5, label);
    }
}

static void draw_colour_bar(cairo_t *cr, double x0, double y0, double h)
{
    const double w = 18;
    for (int i = 0; i < 256; i++) {
        double r, g, b;
        magma_rgb((float)(-80.0 + (i + 0.5) * 80.0 / 256.0), &r, &g, &b);
        cairo_set_source_rgb(cr, r, g, b);
        double ya = y0 + h * (1.0 - (i + 1) / 256.0), yb = y0 + h * (1.0 - i / 256.0);
        cairo_rectangle(cr, x0, floor(ya), w, ceil(yb) - floor(ya));
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, w + 1, h + 1);
    cairo_stroke(cr);
    set_font(cr, FONT_SIZE - 1, 0);
    char label[16];
    for (int dbv = -80; dbv <= 0; dbv += 10) {
        double y = y0 + h * (-dbv / 80.0);
        cairo_move_to(cr, x0 + w, y);
        cairo_line_to(cr, x0 + w + 4, y);
        cairo_stroke(cr);
        snprintf(label, sizeof label, "%+d dB", dbv);
        text_at(cr, x0 + w + 7, y, 0, 0.5, label);
    }
}

/* The picture of plot_mel_png, encoded into *out. */
static int mel_png(Buf *out, const float *db, int n_windows, int n_mels, int frames,
                   int sample_rate, int hop, const char *title, ErrMsg *e)
{
    if (n_windows < 1 || n_mels < 1 || frames < 1 || sample_rate < 1 || hop < 1)
        return err_set(e, "nothing to draw: %d windows of %d x %d", n_windows, n_mels, frames);
    if (frames > MAX_IMAGE_SIDE || n_mels > MAX_IMAGE_SIDE || n_windows > 64)
        return err_set(e, "too large to draw: %d windows of %d x %d", n_windows, n_mels, frames);

    const double left = 80, right = 120, top = title ? 46 : 16, head = 22, foot = 40;
    const double panel_step = head + MEL_PANEL_H + foot;
    int width = (int)(left + MEL_PANEL_W + right);
    int height = (int)(top + n_windows * panel_step + 4);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    if (title) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, FONT_SIZE + 3, 1);
        text_at(cr, left + MEL_PANEL_W / 2.0, 14, 0.5, 0, title);
    }

    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, frames, n_mels);
    for (int w = 0; w < n_windows; w++) {
        const float *win = db + (size_t)w * n_mels * frames;
        cairo_surface_flush(img);
        uint8_t *px = cairo_image_surface_get_data(img);
        int stride = cairo_image_surface_get_stride(img);
        for (int row = 0; row < n_mels && px; row++) {
            uint32_t *line = (uint32_t *)(void *)(px + (size_t)row * stride);
            const float *band = win + (size_t)(n_mels - 1 - row) * frames;
            for (int t = 0; t < frames; t++) {
                double r, g, b;
                magma_rgb(band[t], &r, &g, &b);
                line[t] = (uint32_t)lround(r * 255) << 16 | (uint32_t)lround(g * 255) << 8 |
                          (uint32_t)lround(b * 255);
            }
        }
        cairo_surface_mark_dirty(img);

        double y0 = top + w * panel_step + head;
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, FONT_SIZE, 0);
        char label[48];
        snprintf(label, sizeof label, "window %d", w + 1);
        text_at(cr, left, y0 - 6, 0, 1, label);
        draw_mel_panel(cr, img, left, y0, frames, n_mels, sample_rate, hop);
        set_font(cr, FONT_SIZE, 0);
        text_at(cr, left + MEL_PANEL_W / 2.0, y0 + MEL_PANEL_H + 22, 0.5, 0, "Time (s)");
        cairo_save(cr);
        cairo_translate(cr, 14, y0 + MEL_PANEL_H / 2.0);
        cairo_rotate(cr, -M_PI / 2);
        text_at(cr, 0, 0, 0.5, 0.5, "Hz");
        cairo_restore(cr);
    }
    cairo_surface_destroy(img);
    draw_colour_bar(cr, left + MEL_PANEL_W + 16, top + head,
                    (n_windows - 1) * panel_step + MEL_PANEL_H);
    return encode_png(s, cr, out, e);
}

int plot_mel_png(const char *path, const float *db, int n_windows, int n_mels, int frames,
                 int sample_rate, int hop, const char *title, ErrMsg *e)
{
    if (!has_extension(path, ".png")) return err_set(e, "mel pictures are png: name the file .png");
    Buf buf = {0};
    if (mel_png(&buf, db, n_windows, n_mels, frames, sample_rate, hop, title, e) != 0) return -1;
    int rc = common_write_atomic(path, buf.data, buf.len, e);
    free(buf.data);
    return rc;
}

int plot_mel_png_mem(unsigned char **png, size_t *len, const float *db, int n_windows, int n_mels,
                     int frames, int sample_rate, int hop, const char *title, ErrMsg *e)
{
    Buf buf = {0};
    *png = NULL;
    *len = 0;
    if (mel_png(&buf, db, n_windows, n_mels, frames, sample_rate, hop, title, e) != 0) return -1;
    *png = buf.data;
    *len = buf.len;
    return 0;
}

/* matplotlib's Blues end points, interpolated linearly. */
static void blues(double f, double *r, double *g, double *b)
{
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    *r = 0.969 + f * (0.031 - 0.969);
    *g = 0.984 + f * (0.188 - 0.984);
    *b = 1.000 + f * (0.420 - 1.000);
}

static const char *label_of(const char *const *labels, int i, char *tmp, size_t tmp_len)
{
    if (labels && labels[i]) return labels[i];
    snprintf(tmp, tmp_len, "%d", i);
    return tmp;
}

static void xml_escape_to(Buf *b, const char *s)
{
    for (; *s; s++) {
        const char *rep = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;"
                        : *s == '"' ? "&quot;" : NULL;
        if (rep)
            buf_write(b, (const unsigned char *)rep, (unsigned)strlen(rep));
        else if ((unsigned char)*s >= 0x20 || *s == '\t')
            buf_write(b, (const unsigned char *)s, 1);
    }
}

/* cairo's SVG holds glyph outlines only: put the words in <title> and <desc> after the root
 * element's start tag. */
static void svg_add_text(Buf *svg, const char *title, int n, const char *const *labels)
{
    uint8_t *root = svg->len ? memmem(svg->data, svg->len, "<svg", 4) : NULL;
    uint8_t *gt = root ? memchr(root, '>', svg->len - (size_t)(root - svg->data)) : NULL;
    if (!gt) return;
    size_t at = (size_t)(gt - svg->data) + 1;
    Buf add = {0};
    char tmp[32];
    buf_write(&add, (const unsigned char *)"\n<title>", 8);
    xml_escape_to(&add, title ? title : "confusion matrix");
    buf_write(&add, (const unsigned char *)"</title>\n<desc>", 15);
    xml_escape_to(&add, "Confusion matrix: rows are the true labels, columns the predicted ones. "
                        "Labels:");
    for (int i = 0; i < n; i++) {
        xml_escape_to(&add, i ? ", " : " ");
        xml_escape_to(&add, label_of(labels, i, tmp, sizeof tmp));
    }
    buf_write(&add, (const unsigned char *)"</desc>\n", 8);
    Buf out = {0};
    buf_write(&out, svg->data, (unsigned)at);
    buf_write(&out, add.data, (unsigned)add.len);
    buf_write(&out, svg->data + at, (unsigned)(svg->len - at));
    free(add.data);
    free(svg->data);
    *svg = out;
}

static void draw_confusion(cairo_t *cr, const int *counts, int n, const char *const *labels,
                           const char *title, double cell, double left, double top,
                           double label_w)
{
    char tmp[32], num[24];
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (title) {
        set_font(cr, FONT_SIZE + 3, 1);
        text_at(cr, left + n * cell / 2.0, 14, 0.5, 0, title);
    }
    double count_font = fmin(FONT_SIZE + 1, fmax(7, cell * 0.32));
    for (int i = 0; i < n; i++) {
        long row = 0;
        const int *counts_row = counts + (size_t)i * n;
        for (int j = 0; j < n; j++) row += counts_row[j] > 0 ? counts_row[j] : 0;
        for (int j = 0; j < n; j++) {
            int c = counts_row[j];
            double f = row > 0 && c > 0 ? (double)c / row : 0.0, r, g, b;
            blues(f, &r, &g, &b);
            cairo_set_source_rgb(cr, r, g, b);
            cairo_rectangle(cr, left + j * cell, top + i * cell, cell, cell);
            cairo_fill(cr);
            if (f > 0.5)
                cairo_set_source_rgb(cr, 1, 1, 1);
            else
                cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            set_font(cr, count_font, i == j);
            snprintf(num, sizeof num, "%d", c);
            text_at(cr, left + (j + 0.5) * cell, top + (i + 0.5) * cell, 0.5, 0.5, num);
        }
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, left - 0.5, top - 0.5, n * cell + 1, n * cell + 1);
    cairo_stroke(cr);

    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, FONT_SIZE, 0);
    double grid_bottom = top + n * cell;
    for (int i = 0; i < n; i++) {
        const char *l = label_of(labels, i, tmp, sizeof tmp);
        text_at(cr, left - 6, top + (i + 0.5) * cell, 1, 0.5, l);
        /* x labels at 45 degrees, ending under their column like rotation=45, ha='right' */
        cairo_save(cr);
        cairo_translate(cr, left + (i + 0.5) * cell + 4, grid_bottom + 6);
        cairo_rotate(cr, -M_PI / 4);
        cairo_move_to(cr, -text_width(cr, l), 0);
        cairo_show_text(cr, l);
        cairo_restore(cr);
    }
    set_font(cr, FONT_SIZE + 1, 1);
    text_at(cr, left + n * cell / 2.0, grid_bottom + label_w * M_SQRT1_2 + 22, 0.5, 0,
            "predicted");
    cairo_save(cr);
    cairo_translate(cr, 14, top + n * cell / 2.0);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, 0.5, 0.5, "true");
    cairo_restore(cr);

    /* colour bar for the row fraction */
    double bx = left + n * cell + 20, bh = n * cell;
    double r0, g0, b0, r1, g1, b1;
    blues(0, &r0, &g0, &b0);
    blues(1, &r1, &g1, &b1);
    cairo_pattern_t *grad = cairo_pattern_create_linear(0, top + bh, 0, top); /* blues is linear */
    cairo_pattern_add_color_stop_rgb(grad, 0, r0, g0, b0);
    cairo_pattern_add_color_stop_rgb(grad, 1, r1, g1, b1);
    cairo_set_source(cr, grad);
    cairo_rectangle(cr, bx, top, 14, bh);
    cairo_fill(cr);
    cairo_pattern_destroy(grad);
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, FONT_SIZE - 1, 0);
    for (int k = 0; k <= 4; k++) {
        snprintf(num, sizeof num, "%g", k / 4.0);
        text_at(cr, bx + 18, top + bh * (1 - k / 4.0), 0, 0.5, num);
    }
    cairo_save(cr);
    cairo_translate(cr, bx + 58, top + bh / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, 0.5, 0.5, "fraction of row");
    cairo_restore(cr);
}

int plot_confusion(const char *path, const int *counts, int n, const char *const *labels,
                   const char *title, ErrMsg *e)
{
    int svg = has_extension(path, ".svg");
    if (!svg && !has_extension(path, ".png"))
        return err_set(e, "unsupported picture format (use .png or .svg)");
    if (n < 1 || n > 1000) return err_set(e, "confusion matrix of %d labels", n);

    /* measure the labels on a scratch surface to size the margins */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
    cairo_t *m = cairo_create(scratch);
    set_font(m, FONT_SIZE, 0);
    double label_w = 0;
    char tmp[32];
    for (int i = 0; i < n; i++)
        label_w = fmax(label_w, text_width(m, label_of(labels, i, tmp, sizeof tmp)));
    cairo_destroy(m);
    cairo_surface_destroy(scratch);

    double cell = n <= 12 ? 48 : fmax(14, 576.0 / n);
    double left = 30 + label_w + 8, top = title ? 44 : 16;
    int width = (int)ceil(left + n * cell + 100);
    int height = (int)ceil(top + n * cell + label_w * M_SQRT1_2 + 50);
    if (svg) {
        Buf buf = {0};
        cairo_surface_t *s = cairo_svg_surface_create_for_stream(buf_write, &buf, width, height);
        cairo_t *cr = cairo_create(s);
        draw_confusion(cr, counts, n, labels, title, cell, left, top, label_w);
        cairo_status_t st = cairo_status(cr);
        cairo_destroy(cr);
        cairo_surface_finish(s); /* flushes the whole document into buf */
        if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
        cairo_surface_destroy(s);
        int rc;
        if (st != CAIRO_STATUS_SUCCESS) {
            rc = err_set(e, "cairo: %s", cairo_status_to_string(st));
        } else {
            svg_add_text(&buf, title, n, labels);
            rc = common_write_atomic(path, buf.data, buf.len, e);
        }
        free(buf.data);
        return rc;
    }
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(s);
    draw_confusion(cr, counts, n, labels, title, cell, left, top, label_w);
    return finish_png(s, cr, path, e);
}
