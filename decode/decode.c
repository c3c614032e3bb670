/* decode: FFmpeg (libavformat/libavcodec/libswresample) -> mono float32 at a fixed rate.
 * It is not a player and keeps no state between calls: each call opens its own contexts.
 * Invariants:
 *  - output sample k of a track is what a fresh resampler fed from the track's first decoded
 *    sample produces at index k; the mono downmix is the plain mean of the channels.
 *  - seeking is sample exact: a segment is decoded from a keyframe before it, input samples are
 *    placed by the frames' pts (relative to the first frame's pts), and the resampler is started
 *    fresh at an input sample whose time is a whole number of output samples, far enough before
 *    the window that its start-up transient and the codec's preroll are discarded.
 *  - the track length N is what a full decode would give: found by decoding the last 2 s after
 *    a seek, since containers count encoder delay and padding their own way.
 *  - when the duration is estimated (from the bitrate), timestamps are coarser than a sample
 *    (mkv, asf) or a seek misbehaves, the whole track is decoded and sliced instead; windows
 *    never read past what was decoded.
 * Threads: calls share nothing but FFmpeg's log callback, installed once. */
#include "decode.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/mathematics.h>
#include <libswresample/swresample.h>

/* Output samples started before a window so the resampler's and codec's start-up transients
 * fall outside it; seeks go this much further back in input time for the codec's own preroll
 * (mp3 bit reservoir, MDCT overlap, opus' 80 ms convergence). */
#define PREROLL_SECONDS 0.25
#define SEEK_EXTRA_SECONDS 0.25
/* Windows closer than this (output seconds) are decoded in one pass instead of seeking. */
#define MERGE_GAP_SECONDS 3.0
/* Consecutive packets that fail to decode before we give up on a file. */
#define MAX_DECODE_ERRORS 64
/* More channels than any real file has; keeps the resampler's pointer table on the stack. */
#define MAX_CHANNELS 64

static pthread_once_t log_setup_once = PTHREAD_ONCE_INIT;

/* FFmpeg's own messages would reach the user around ours; keep them for --log-level debug. */
static void av_log_to_ours(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_WARNING || common_log_level < LOG_DEBUG) return;
    char line[1024];
    int prefix = 1;
    va_list ap;
    va_copy(ap, vl);
    av_log_format_line(avcl, level, fmt, ap, line, sizeof line, &prefix);
    va_end(ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    if (n) log_debug("ffmpeg: %s", line);
}

static void av_log_setup(void)
{
    av_log_set_callback(av_log_to_ours);
}

/* av_strerror's text with a lower-case first letter, as our messages are. */
static int av_err(ErrMsg *e, int code)
{
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(code, buf, sizeof buf);
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return err_set(e, "%s", buf);
}

/* Where a Source reads from: a path, or a buffer through an AVIOContext (data != NULL). */
typedef struct Input {
    const char *path;
    const uint8_t *data;
    size_t len;
} Input;

/* The read position in an Input's buffer, for the AVIOContext callbacks. */
typedef struct MemReader {
    const uint8_t *data;
    size_t len, pos;
} MemReader;

typedef struct Source {
    AVFormatContext *fmt;
    AVIOContext *avio; /* memory input only: ours to free, after fmt */
    MemReader mem;
    AVCodecContext *dec;
    AVStream *st;
    int si; /* index of the audio stream */
    AVPacket *pkt;
    AVFrame *frame;
    int in_rate;         /* the codec's rate: positions and alignment are counted in it */
    int out_rate;
    int64_t origin_pts;  /* pts of the first decoded frame: input sample 0 */
    int demux_eof;
    int decoder_eof;
    int64_t decoded_in;  /* input samples decoded, all segments, preroll included */
    SwrContext *swr;
    AVChannelLayout swr_layout; /* input (== output) layout the resampler was set up for */
    int swr_fmt, swr_rate;
    float **planes; /* resampler output, one plane per channel, planes_cap each */
    float *mono;    /* their mean, planes_cap */
    int planes_nch, planes_cap;
} Source;

static void source_close(Source *s)
{
    swr_free(&s->swr);
    av_channel_layout_uninit(&s->swr_layout);
    if (s->planes) {
        for (int c = 0; c < s->planes_nch; c++) free(s->planes[c]);
        free(s->planes);
    }
    free(s->mono);
    av_frame_free(&s->frame);
    av_packet_free(&s->pkt);
    avcodec_free_context(&s->dec);
    avformat_close_input(&s->fmt);
    if (s->avio) {
        av_freep(&s->avio->buffer); /* FFmpeg may have replaced the one we gave it */
        avio_context_free(&s->avio);
    }
}

static int mem_read(void *opaque, uint8_t *buf, int size)
{
    MemReader *m = opaque;
    size_t left = m->len - m->pos;
    if (left == 0) return AVERROR_EOF;
    size_t n = (size_t)size < left ? (size_t)size : left;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
    MemReader *m = opaque;
    if (whence & AVSEEK_SIZE) return (int64_t)m->len;
    int64_t base = 0;
    switch (whence & ~AVSEEK_FORCE) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)m->pos; break;
    case SEEK_END: base = (int64_t)m->len; break;
    default: return AVERROR(EINVAL);
    }
    int64_t to = base + offset;
    if (to < 0 || to > (int64_t)m->len) return AVERROR(EINVAL);
    m->pos = (size_t)to;
    return to;
}

/* avformat_open_input over the buffer: a context of our own whose pb reads it. */
static int open_mem(Source *s, const Input *in)
{
    enum { AVIO_BUF = 64 * 1024 };
    s->mem = (MemReader){.data = in->data, .len = in->len, .pos = 0};
    uint8_t *buf = av_malloc(AVIO_BUF);
    if (!buf) return AVERROR(ENOMEM);
    s->avio = avio_alloc_context(buf, AVIO_BUF, 0, &s->mem, mem_read, NULL, mem_seek);
    if (!s->avio) {
        av_free(buf);
        return AVERROR(ENOMEM);
    }
    s->fmt = avformat_alloc_context();
    if (!s->fmt) return AVERROR(ENOMEM);
    s->fmt->pb = s->avio;
    s->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    /* On failure this frees s->fmt (and sets it NULL) but leaves our AVIOContext to us. */
    return avformat_open_input(&s->fmt, NULL, NULL, NULL);
}

static int source_open(Source *s, const Input *in, int out_rate, ErrMsg *e)
{
    memset(s, 0, sizeof *s);
    s->origin_pts = AV_NOPTS_VALUE;
    s->out_rate = out_rate;
    pthread_once(&log_setup_once, av_log_setup);
    if (out_rate <= 0) return err_set(e, "invalid output sample rate %d", out_rate);

    /* FFmpeg answers "invalid argument" for these; say what is wrong. */
    int ret;
    if (in->data) {
        if (in->len == 0) return err_set(e, "empty file");
        ret = open_mem(s, in);
    } else {
        struct stat sb;
        if (stat(in->path, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) return err_set(e, "is a directory");
            if (S_ISREG(sb.st_mode) && sb.st_size == 0) return err_set(e, "empty file");
        }
        ret = avformat_open_input(&s->fmt, in->path, NULL, NULL);
    }
    if (ret == AVERROR(EINVAL) || ret == AVERROR_INVALIDDATA)
        return err_set(e, "not a recognised audio format");
    if (ret == AVERROR_EOF) return err_set(e, "truncated file (no audio data)");
    if (ret < 0) return av_err(e, ret);
    /* A format matched only by the file name's extension (random bytes called .mp3) would
     * "decode" to noise from chance frame headers. */
    if (s->fmt->probe_score < AVPROBE_SCORE_RETRY)
        return err_set(e, "not a recognised audio format");
    ret = avformat_find_stream_info(s->fmt, NULL);
    if (ret == AVERROR_EOF) return err_set(e, "truncated file (no audio data)");
    if (ret < 0) return av_err(e, ret);
    const AVCodec *codec = NULL;
    ret = av_find_best_stream(s->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (ret == AVERROR_STREAM_NOT_FOUND) return err_set(e, "no audio stream");
    if (ret == AVERROR_DECODER_NOT_FOUND || !codec) {
        const AVCodecDescriptor *d =
            ret >= 0 ? avcodec_descriptor_get(s->fmt->streams[ret]->codecpar->codec_id) : NULL;
        return err_set(e, "no decoder for %s audio", d ? d->name : "this");
    }
    if (ret < 0) return av_err(e, ret);
    s->si = ret;
    s->st = s->fmt->streams[ret];
    /* The demuxer can drop the cover art and other streams' packets early. */
    for (unsigned i = 0; i < s->fmt->nb_streams; i++)
        if ((int)i != s->si) s->fmt->streams[i]->discard = AVDISCARD_ALL;

    s->dec = avcodec_alloc_context3(codec);
    if (!s->dec) return err_set(e, "out of memory");
    ret = avcodec_parameters_to_context(s->dec, s->st->codecpar);
    if (ret < 0) return av_err(e, ret);
    s->dec->pkt_timebase = s->st->time_base;
    ret = avcodec_open2(s->dec, codec, NULL);
    if (ret < 0) return av_err(e, ret);
    s->in_rate = s->dec->sample_rate;
    if (s->in_rate <= 0) return err_set(e, "unknown sample rate");
    s->pkt = av_packet_alloc();
    s->frame = av_frame_alloc();
    if (!s->pkt || !s->frame) return err_set(e, "out of memory");
    return 0;
}

/* Next decoded frame of the audio stream into s->frame: 1, 0 at the end, -1 on error.
 * Broken packets are skipped (a truncated or damaged file yields what can be decoded) until
 * too many fail in a row. */
static int next_frame(Source *s, ErrMsg *e)
{
    int errors = 0, last_err = 0;
    for (;;) {
        int ret = avcodec_receive_frame(s->dec, s->frame);
        if (ret >= 0) {
            if (s->frame->nb_samples <= 0) {
                av_frame_unref(s->frame);
                continue;
            }
            s->decoded_in += s->frame->nb_samples;
            return 1;
        }
        if (ret == AVERROR_EOF) {
            s->decoder_eof = 1;
            return 0;
        }
        if (ret != AVERROR(EAGAIN)) {
            /* A decode error on one packet: go on with the next. */
            last_err = ret;
            if (++errors > MAX_DECODE_ERRORS) return av_err(e, last_err);
        }
        if (s->demux_eof) {
            if (s->decoder_eof) return 0;
            ret = avcodec_send_packet(s->dec, NULL);
            if (ret < 0 && ret != AVERROR_EOF) return 0;
            continue;
        }
        ret = av_read_frame(s->fmt, s->pkt);
        if (ret < 0) {
            /* A read error in the middle of a file ends it like EOF: keep what we have. */
            s->demux_eof = 1;
            continue;
        }
        if (s->pkt->stream_index == s->si) {
            ret = avcodec_send_packet(s->dec, s->pkt);
            if (ret < 0 && ret != AVERROR(EAGAIN)) {
                last_err = ret;
                if (++errors > MAX_DECODE_ERRORS) {
                    av_packet_unref(s->pkt);
                    return av_err(e, last_err);
                }
            }
        }
        av_packet_unref(s->pkt);
    }
}

static int64_t frame_pts(const AVFrame *f)
{
    return f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
}

/* A fresh resampler for the frame's format, keeping its channels (we average them ourselves:
 * swresample's downmix weights the centre and surrounds, DESIGN.md asks for the plain mean). */
static int swr_setup(Source *s, const AVFrame *f, ErrMsg *e)
{
    AVChannelLayout in = {0};
    int ret;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels <= 0) {
        int nch = f->ch_layout.nb_channels > 0 ? f->ch_layout.nb_channels
                                               : s->dec->ch_layout.nb_channels;
        if (nch <= 0) return err_set(e, "unknown channel count");
        av_channel_layout_default(&in, nch);
    } else if ((ret = av_channel_layout_copy(&in, &f->ch_layout)) < 0) {
        return av_err(e, ret);
    }
    swr_free(&s->swr);
    ret = swr_alloc_set_opts2(&s->swr, &in, AV_SAMPLE_FMT_FLTP, s->out_rate, &in,
                              (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
    if (ret >= 0) ret = swr_init(s->swr);
    if (ret < 0) {
        av_channel_layout_uninit(&in);
        return av_err(e, ret);
    }
    av_channel_layout_uninit(&s->swr_layout);
    s->swr_layout = in;
    s->swr_fmt = f->format;
    s->swr_rate = f->sample_rate;
    return 0;
}

static int swr_matches(const Source *s, const AVFrame *f)
{
    return s->swr && f->format == s->swr_fmt && f->sample_rate == s->swr_rate &&
           f->ch_layout.nb_channels == s->swr_layout.nb_channels;
}

/* Where decoded output samples go: called with global output indices in increasing order. */
typedef struct Sink Sink;
struct Sink {
    void (*put)(Sink *k, int64_t first, const float *x, int n);
    int64_t end; /* a segment's decoding stops once output reaches this index */
};

/* Resamples the frame's samples from offset skip on (NULL frame: flush the resampler) and
 * hands their mono mean to the sink at *pos, advancing it. */
static int resample_put(Source *s, const AVFrame *f, int skip, Sink *k, int64_t *pos, ErrMsg *e)
{
    int n = f ? f->nb_samples - skip : 0;
    int nch = s->swr_layout.nb_channels;
    if (nch > MAX_CHANNELS) return err_set(e, "too many channels (%d)", nch);
    int cap = swr_get_out_samples(s->swr, n);
    if (cap < 0) return av_err(e, cap);
    cap += 16;
    if (nch > s->planes_nch || cap > s->planes_cap) {
        for (int c = 0; c < s->planes_nch; c++) free(s->planes[c]);
        free(s->planes);
        s->planes_nch = nch > s->planes_nch ? nch : s->planes_nch;
        s->planes_cap = cap > s->planes_cap ? cap : s->planes_cap;
        s->planes = xcalloc((size_t)s->planes_nch, sizeof *s->planes);
        for (int c = 0; c < s->planes_nch; c++)
            s->planes[c] = xmalloc((size_t)s->planes_cap * sizeof(float));
        s->mono = xrealloc(s->mono, (size_t)s->planes_cap * sizeof(float));
    }
    const uint8_t *in[MAX_CHANNELS];
    const uint8_t **inp = NULL;
    if (f) {
        int bps = av_get_bytes_per_sample((enum AVSampleFormat)f->format);
        if (av_sample_fmt_is_planar((enum AVSampleFormat)f->format)) {
            for (int c = 0; c < nch; c++) in[c] = f->extended_data[c] + (size_t)skip * bps;
        } else {
            in[0] = f->extended_data[0] + (size_t)skip * bps * nch;
        }
        inp = in;
    }
    int got = swr_convert(s->swr, (uint8_t **)s->planes, s->planes_cap, inp, n);
    if (got < 0) return av_err(e, got);
    if (got == 0) return 0;
    float inv = 1.0f / (float)nch;
    for (int j = 0; j < got; j++) {
        float acc = 0.0f;
        for (int c = 0; c < nch; c++) acc += s->planes[c][j];
        s->mono[j] = nch == 1 ? acc : acc * inv;
    }
    k->put(k, *pos, s->mono, got);
    *pos += got;
    return 0;
}

/* Decodes from the current demuxer position, feeding the resampler from input sample in0
 * (whose output index is out0 = in0 * out_rate / in_rate, exact by construction) until the
 * sink's end or the end of the stream. from_start: the file was just opened (or we are
 * decoding all of it), so frames are placed by counting, not by pts.
 * *at_eof: set when the stream ended before the sink's end (the track is shorter). */
static int decode_segment(Source *s, int64_t in0, int64_t out0, int from_start, Sink *k,
                          int *at_eof, int64_t *out_end, ErrMsg *e)
{
    int64_t pos_in = -1; /* input sample index of the next frame's first sample */
    int64_t pos_out = out0;
    int rc = 0;
    AVRational in_tb = {1, s->in_rate};
    *at_eof = 0;
    swr_free(&s->swr);
    for (;;) {
        if (pos_out >= k->end) break;
        int r = next_frame(s, e);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0) {
            *at_eof = 1;
            break;
        }
        AVFrame *f = s->frame;
        int64_t pts = frame_pts(f);
        if (s->origin_pts == AV_NOPTS_VALUE && from_start)
            s->origin_pts = pts == AV_NOPTS_VALUE ? 0 : pts;
        if (from_start) {
            if (pos_in < 0) pos_in = 0;
        } else {
            if (pts == AV_NOPTS_VALUE) {
                rc = err_set(e, "no timestamps after seeking");
                av_frame_unref(f);
                break;
            }
            int64_t at = av_rescale_q_rnd(pts - s->origin_pts, s->st->time_base, in_tb,
                                          AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
            /* Trust the running count over coarse timestamps (mkv's milliseconds), but follow
             * the pts across a gap such as a frame the decoder dropped. */
            if (pos_in < 0 || llabs(at - pos_in) > s->in_rate / 100) pos_in = at;
            if (pos_in > in0 && pos_out == out0 && !s->swr) {
                rc = err_set(e, "seek landed after its target");
                av_frame_unref(f);
                break;
            }
        }
        if (f->sample_rate != s->in_rate && !from_start) {
            rc = err_set(e, "sample rate changes mid-stream");
            av_frame_unref(f);
            break;
        }
        int n = f->nb_samples;
        int skip = 0;
        if (pos_in + n <= in0) {
            pos_in += n;
            av_frame_unref(f);
            continue;
        }
        if (pos_in < in0) skip = (int)(in0 - pos_in);
        if (!swr_matches(s, f)) {
            /* A format change mid-stream (rare: chained ogg, HE-AAC switching) restarts the
             * resampler; only the first setup of a segment is sample exact. */
            if ((s->swr && resample_put(s, NULL, 0, k, &pos_out, e) < 0) ||
                swr_setup(s, f, e) < 0) {
                rc = -1;
                av_frame_unref(f);
                break;
            }
        }
        if (resample_put(s, f, skip, k, &pos_out, e) < 0) {
            rc = -1;
            av_frame_unref(f);
            break;
        }
        pos_in += n;
        av_frame_unref(f);
    }
    if (rc == 0 && *at_eof && s->swr) rc = resample_put(s, NULL, 0, k, &pos_out, e);
    *out_end = pos_out;
    return rc;
}

/* ---- sinks ---- */

typedef struct BufferSink {
    Sink base;
    float *x;
    int64_t n, cap, limit;
} BufferSink;

static void buffer_put(Sink *k, int64_t first, const float *x, int n)
{
    BufferSink *b = (BufferSink *)k;
    (void)first;
    int64_t take = n;
    if (b->limit > 0 && b->n + take > b->limit) take = b->limit - b->n;
    if (take <= 0) return;
    if (b->n + take > b->cap) {
        b->cap = (b->n + take) * 2 + 4096;
        if (b->limit > 0 && b->cap > b->limit) b->cap = b->limit;
        b->x = xrealloc(b->x, (size_t)b->cap * sizeof *b->x);
    }
    memcpy(b->x + b->n, x, (size_t)take * sizeof *x);
    b->n += take;
}

typedef struct WindowSink {
    Sink base;
    float *out; /* (n, w) */
    const int64_t *starts;
    int n, w;
} WindowSink;

static void window_put(Sink *k, int64_t first, const float *x, int n)
{
    WindowSink *ws = (WindowSink *)k;
    for (int i = 0; i < ws->n; i++) {
        int64_t a = ws->starts[i] > first ? ws->starts[i] : first;
        int64_t b = ws->starts[i] + ws->w < first + n ? ws->starts[i] + ws->w : first + n;
        if (b > a)
            memcpy(ws->out + (size_t)i * ws->w + (a - ws->starts[i]), x + (a - first),
                   (size_t)(b - a) * sizeof *x);
    }
}

/* Decodes the whole track from the start; limit > 0 caps the output. */
static int decode_whole(Source *s, int64_t limit, float **x, int64_t *n, ErrMsg *e)
{
    BufferSink b = {.base = {.put = buffer_put, .end = limit > 0 ? limit : INT64_MAX},
                    .limit = limit};
    int at_eof = 0;
    int64_t end = 0;
    int rc = decode_segment(s, 0, 0, 1, &b.base, &at_eof, &end, e);
    if (rc < 0 && b.n == 0) {
        free(b.x);
        return -1;
    }
    /* An error after some audio (a damaged tail) still leaves a usable track. */
    if (rc < 0) log_debug("decode: %s after %lld samples, keeping them", e->msg, (long long)b.n);
    if (b.n == 0) {
        free(b.x);
        return err_set(e, "no audio samples");
    }
    *x = b.x;
    *n = b.n;
    return 0;
}

DecodeOptions decode_default_options(void)
{
    DecodeOptions o = {.sample_rate = 22050, .window_samples = 88200, .n_windows = 6,
                       .short_policy = DECODE_SHORT_PAD};
    return o;
}

int64_t decode_window_start(int64_t n_track, int w, int i, int n)
{
    if (n_track <= w || n <= 0) return 0;
    /* (N - W) * (2i + 1) stays far below 2^63 for any real track. */
    return (n_track - w) * (2 * (int64_t)i + 1) / (2 * (int64_t)n);
}

/* Track length in output samples from the container, or -1 when it is only an estimate. */
static int64_t estimated_length(const Source *s)
{
    if (s->fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) return -1;
    int64_t n_in = -1;
    if (s->st->duration != AV_NOPTS_VALUE && s->st->duration > 0)
        n_in = av_rescale_q(s->st->duration, s->st->time_base, (AVRational){1, s->in_rate});
    else if (s->fmt->duration != AV_NOPTS_VALUE && s->fmt->duration > 0)
        n_in = av_rescale_q(s->fmt->duration, AV_TIME_BASE_Q, (AVRational){1, s->in_rate});
    if (n_in <= 0) return -1;
    return av_rescale_rnd(n_in, s->out_rate, s->in_rate, AV_ROUND_NEAR_INF);
}

static void fill_windows_from(const float *x, int64_t n, const DecodeOptions *o,
                              DecodeWindows *out)
{
    int w = o->window_samples;
    out->track_samples = n;
    if (n < w) {
        out->n_windows = 1;
        out->window_len = o->short_policy == DECODE_SHORT_WHOLE ? (int)n : w;
        out->samples = xcalloc((size_t)out->window_len, sizeof(float));
        memcpy(out->samples, x, (size_t)n * sizeof(float));
        return;
    }
    out->n_windows = o->n_windows;
    out->window_len = w;
    out->samples = xmalloc((size_t)o->n_windows * w * sizeof(float));
    for (int i = 0; i < o->n_windows; i++)
        memcpy(out->samples + (size_t)i * w, x + decode_window_start(n, w, i, o->n_windows),
               (size_t)w * sizeof(float));
}

/* The fallback: decode everything, then slice. */
static int windows_by_full_decode(const Input *in, const DecodeOptions *o, DecodeWindows *out,
                                  ErrMsg *e)
{
    Source s;
    float *x = NULL;
    int64_t n = 0;
    /* One sample more than allowed tells a track that is too long from one just as long. */
    int64_t limit = o->max_whole_samples > 0 ? o->max_whole_samples + 1 : 0;
    if (source_open(&s, in, o->sample_rate, e) < 0 || decode_whole(&s, limit, &x, &n, e) < 0) {
        source_close(&s);
        return -1;
    }
    if (limit > 0 && n >= limit) {
        free(x);
        source_close(&s);
        return err_set(e, "too long to decode without seeking (over %.0f s and no usable duration)",
                       (double)o->max_whole_samples / o->sample_rate);
    }
    fill_windows_from(x, n, o, out);
    out->decoded_samples =
        av_rescale_rnd(s.decoded_in, o->sample_rate, s.in_rate, AV_ROUND_NEAR_INF);
    free(x);
    source_close(&s);
    return 0;
}

/* Reads one frame to learn which pts is input sample 0 (encoder delay, start offsets).
 * 0, 1 when the stream has no usable timestamps (the caller decodes all), -1 on error. */
static int find_origin(Source *s, ErrMsg *e)
{
    if (s->origin_pts != AV_NOPTS_VALUE) return 0;
    int r = next_frame(s, e);
    if (r <= 0) return r < 0 ? -1 : 1;
    int64_t p = frame_pts(s->frame);
    av_frame_unref(s->frame);
    if (p == AV_NOPTS_VALUE) return 1;
    s->origin_pts = p;
    return 0;
}

/* Seeks to a keyframe SEEK_EXTRA_SECONDS or more before input sample a_in. 0 or -1. */
static int seek_before(Source *s, int64_t a_in)
{
    int64_t back = a_in - (int64_t)(SEEK_EXTRA_SECONDS * s->in_rate);
    if (back < 0) back = 0;
    int64_t ts = s->origin_pts + av_rescale_q(back, (AVRational){1, s->in_rate}, s->st->time_base);
    if (av_seek_frame(s->fmt, s->si, ts, AVSEEK_FLAG_BACKWARD) < 0) {
        log_debug("decode: seek to %lld failed", (long long)ts);
        return -1;
    }
    avcodec_flush_buffers(s->dec);
    s->demux_eof = 0;
    s->decoder_eof = 0;
    return 0;
}

/* The output sample at or before out that starts a resampler run (input and output grids
 * meet there), and its input sample. */
static int64_t align_out(const Source *s, int64_t out, int64_t *in)
{
    int64_t g = av_gcd(s->in_rate, s->out_rate);
    int64_t step_in = s->in_rate / g, step_out = s->out_rate / g;
    int64_t a = out > 0 ? out / step_out * step_out : 0;
    *in = a / step_out * step_in;
    return a;
}

static void null_put(Sink *k, int64_t first, const float *x, int n)
{
    (void)k, (void)first, (void)x, (void)n;
}

/* The exact track length, as a full decode would give it, from decoding only the last
 * seconds: containers count encoder delay and padding (mp3, opus) or whole last frames (aac)
 * differently from what the decoder emits. est: the container's length in output samples.
 * Returns the length, or -1 when it cannot be found this way. */
static int64_t probe_length(Source *s, int64_t est)
{
    int64_t a_in;
    int64_t a = align_out(s, est - (int64_t)(2.0 * s->out_rate), &a_in);
    if (a <= 0 || seek_before(s, a_in) < 0) return -1;
    /* Far more than the 2 s expected: a duration that is badly off is not worth chasing. */
    Sink k = {.put = null_put, .end = a + 60 * (int64_t)s->out_rate};
    int at_eof = 0;
    int64_t end = 0;
    ErrMsg se;
    if (decode_segment(s, a_in, a, 0, &k, &at_eof, &end, &se) < 0) {
        log_debug("decode: %s while finding the length", se.msg);
        return -1;
    }
    if (!at_eof || end <= a) return -1;
    return end;
}

/* Seek-and-decode of the windows for a track of n output samples (n >= W).
 * Returns 0, 1 when the caller should fall back to a full decode (seek failed, the track
 * ended early). *real_n gets the length seen at an early end. */
static int windows_by_seeking(Source *s, const DecodeOptions *o, int64_t n, DecodeWindows *out,
                              int64_t *real_n)
{
    int w = o->window_samples, nw = o->n_windows;
    int64_t *starts = xmalloc((size_t)nw * sizeof *starts);
    for (int i = 0; i < nw; i++) starts[i] = decode_window_start(n, w, i, nw);
    float *buf = xcalloc((size_t)nw * w, sizeof(float));
    WindowSink ws = {.base = {.put = window_put}, .out = buf, .starts = starts, .n = nw, .w = w};

    int64_t preroll = (int64_t)(PREROLL_SECONDS * o->sample_rate);
    int64_t merge = (int64_t)(MERGE_GAP_SECONDS * o->sample_rate);
    int rc = 0;
    *real_n = -1;
    for (int i = 0; i < nw && rc == 0;) {
        int j = i;
        while (j + 1 < nw && starts[j + 1] - (starts[j] + w) < merge) j++;
        int64_t seg_end = starts[j] + w;
        int64_t a_in;
        int64_t a = align_out(s, starts[i] - preroll, &a_in);
        if (seek_before(s, a_in) < 0) {
            rc = 1;
            break;
        }
        ws.base.end = seg_end;
        int at_eof = 0;
        int64_t end = 0;
        ErrMsg se;
        if (decode_segment(s, a_in, a, 0, &ws.base, &at_eof, &end, &se) < 0) {
            log_debug("decode: %s, decoding all", se.msg);
            rc = 1;
            break;
        }
        if (end < seg_end) {
            /* The track ended early: the caller retries with the real length. */
            *real_n = at_eof ? end : -1;
            rc = 1;
            break;
        }
        i = j + 1;
    }
    free(starts);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    out->samples = buf;
    out->n_windows = nw;
    out->window_len = w;
    out->track_samples = n;
    out->decoded_samples =
        av_rescale_rnd(s->decoded_in, o->sample_rate, s->in_rate, AV_ROUND_NEAR_INF);
    return 0;
}

/* Whether seeking decodes clearly less than the whole track of est output samples: windows
 * close together, or a track barely longer than them, are as cheap to decode in one go. */
static int seeking_pays(const DecodeOptions *o, int64_t est)
{
    int w = o->window_samples, nw = o->n_windows;
    int64_t merge = (int64_t)(MERGE_GAP_SECONDS * o->sample_rate);
    int64_t per_seek = (int64_t)((PREROLL_SECONDS + SEEK_EXTRA_SECONDS) * o->sample_rate);
    int64_t cost = (int64_t)(2.0 * o->sample_rate) + per_seek; /* probe_length */
    for (int i = 0; i < nw;) {
        int j = i;
        while (j + 1 < nw && decode_window_start(est, w, j + 1, nw) -
                                     (decode_window_start(est, w, j, nw) + w) < merge)
            j++;
        cost += decode_window_start(est, w, j, nw) + w - decode_window_start(est, w, i, nw) +
                per_seek;
        i = j + 1;
    }
    return cost < est * 9 / 10;
}

static int windows_from(const Input *in, const DecodeOptions *opt, DecodeWindows *out, ErrMsg *e)
{
    DecodeOptions o = opt ? *opt : decode_default_options();
    memset(out, 0, sizeof *out);
    if (o.sample_rate <= 0 || o.window_samples <= 0 || o.n_windows <= 0)
        return err_set(e, "invalid decode options");
    Source s;
    if (source_open(&s, in, o.sample_rate, e) < 0) {
        source_close(&s);
        return -1;
    }
    int64_t decoded_before = 0;
    int64_t est = estimated_length(&s);
    /* Timestamps coarser than a sample (Matroska's and ASF's milliseconds) cannot place a
     * seeked frame exactly; such files are decoded whole. */
    int exact_ts = av_cmp_q(s.st->time_base, (AVRational){1, s.in_rate}) <= 0;
    if (est >= o.window_samples && exact_ts && seeking_pays(&o, est)) {
        int r = find_origin(&s, e);
        if (r < 0) {
            source_close(&s);
            return -1;
        }
        int64_t n = r == 0 ? probe_length(&s, est) : -1;
        if (n < 0) log_debug("decode: no exact length, decoding all");
        for (int attempt = 0; n >= o.window_samples && attempt < 2; attempt++) {
            int64_t real_n = -1;
            int rc = windows_by_seeking(&s, &o, n, out, &real_n);
            if (rc <= 0) {
                source_close(&s);
                return rc;
            }
            /* The stream ended before the length found at its end: retry once with it. */
            n = real_n >= o.window_samples && real_n < n ? real_n : -1;
        }
    }
    decoded_before = av_rescale_rnd(s.decoded_in, o.sample_rate, s.in_rate, AV_ROUND_NEAR_INF);
    source_close(&s);
    /* Unknown or short length, or seeking did not work out: decode it all. */
    if (windows_by_full_decode(in, &o, out, e) < 0) return -1;
    out->decoded_samples += decoded_before;
    return 0;
}

int decode_windows(const char *path, const DecodeOptions *opt, DecodeWindows *out, ErrMsg *e)
{
    Input in = {.path = path};
    return windows_from(&in, opt, out, e);
}

int decode_windows_mem(const void *data, size_t len, const DecodeOptions *opt, DecodeWindows *out,
                       ErrMsg *e)
{
    static const uint8_t none[1];
    /* A zero-length upload still goes the memory way (and is "empty file"), not the path way. */
    Input in = {.data = data ? data : none, .len = data ? len : 0};
    return windows_from(&in, opt, out, e);
}

void decode_windows_free(DecodeWindows *w)
{
    if (!w) return;
    free(w->samples);
    memset(w, 0, sizeof *w);
}

int decode_all(const char *path, int sample_rate, int64_t max_samples, float **samples,
               int64_t *n_samples, ErrMsg *e)
{
    *samples = NULL;
    *n_samples = 0;
    Source s;
    Input in = {.path = path};
    int rc = source_open(&s, &in, sample_rate, e);
    if (rc == 0) rc = decode_whole(&s, max_samples > 0 ? max_samples : 0, samples, n_samples, e);
    source_close(&s);
    return rc;
}

int decode_is_audio_name(const char *path)
{
    static const char *exts[] = {"mp3", "flac", "ogg", "oga", "opus", "m4a", "mp4",
                                 "aac", "wav", "wave", "aif", "aiff", "aifc", "wma",
                                 "ape", "wv",  "mpc", "mka", "webm", "tta"};
    if (!path) return 0;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0) return 1;
    return 0;
}
