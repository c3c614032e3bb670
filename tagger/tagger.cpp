/* tagger: the C interface of tagger.h (DESIGN.md §6).
 *
 * What it is: a small C++17 shim that reads and writes GENRE, GENRED_CONFIDENCE and
 * GENRED_MODEL in the file's own tag: ID3v2 (mp3, wav, aiff), Xiph comments (flac, ogg
 * vorbis/opus/speex/flac), MP4 items (m4a AAC/ALAC), ASF attributes (wma), APE (ape, wavpack).
 * TagLib tells the format apart and refuses what is not audio (its audio properties); the tag
 * itself is split into items by rawtag (rawtag.h), so that every item genred does not own
 * keeps its exact bytes. What it is not: a general tag editor.
 *
 * Invariants:
 * - genred owns the genre items (ID3v2 TCON and the ID3v1 genre byte beside it, GENRE, \xa9gen
 *   and gnre, WM/Genre) and its GENRED_* items. A write removes the owned items and puts its
 *   own where the first of them was (or at the end); nothing else moves. The owned items it
 *   replaced come back to the caller as an undo record (their bytes and places), which
 *   tagger_restore puts back byte for byte.
 * - Deciding is done on a read-only handle; the file is opened for writing only when a write
 *   will happen. A read-write open alone would wake IN_CLOSE_WRITE watchers (the daemon).
 * - A file with no write permission bit is refused even for root: the user marked it
 *   read-only, and a tagger running as root should honour that.
 * - No globals; each call owns its handles, so distinct files may be tagged from distinct
 *   threads. Every C++ exception stops at the extern "C" boundary.
 * - The edits are applied in place (the file keeps its inode, owner, mode, links and extended
 *   attributes). */
#include "tagger.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <iomanip>
#include <locale>
#include <memory>
#include <sstream>
#include <string>

#include <aifffile.h>
#include <apefile.h>
#include <asffile.h>
#include <fileref.h>
#include <flacfile.h>
#include <mp4file.h>
#include <mpegfile.h>
#include <oggflacfile.h>
#include <opusfile.h>
#include <speexfile.h>
#include <tfilestream.h>
#include <vorbisfile.h>
#include <wavfile.h>
#include <wavpackfile.h>

#include "rawtag.h"

namespace {

using rawtag::Bytes;
using rawtag::Item;
using rawtag::Role;

int err_errno(ErrMsg *e, const char *what, int errnum)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", strerror(errnum));
    if (buf[0] >= 'A' && buf[0] <= 'Z') buf[0] = (char)(buf[0] - 'A' + 'a');
    return err_set(e, "%s: %s", what, buf);
}

/* Pre-checks that give the user a precise reason where TagLib would only say "invalid". */
int check_path(const char *path, ErrMsg *e)
{
    if (!path || !*path) return err_set(e, "empty path");
    struct stat st;
    if (stat(path, &st) != 0) return err_errno(e, "cannot open", errno);
    if (S_ISDIR(st.st_mode)) return err_set(e, "is a directory");
    if (!S_ISREG(st.st_mode)) return err_set(e, "not a regular file");
    if (st.st_size == 0) return err_set(e, "empty file");
    if (access(path, R_OK) != 0) return err_errno(e, "cannot open", errno);
    return 0;
}

int check_writable(const char *path, ErrMsg *e)
{
    struct stat st;
    if (stat(path, &st) != 0) return err_errno(e, "cannot open", errno);
    if ((st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0) return err_set(e, "file is read-only");
    if (access(path, W_OK) != 0) return err_errno(e, "cannot write", errno);
    return 0;
}

/* TagLib's verdict on the file: its format, and the artist (for training labels). Audio
 * properties are read (fast style) only to refuse non-audio: TagLib's MPEG reader accepts any
 * bytes as a tagless mp3, and tagging a text file would corrupt it. */
int detect(const char *path, rawtag::Format &fmt, std::string *artist, ErrMsg *e)
{
    if (check_path(path, e) != 0) return -1;
    TagLib::FileStream stream(path, true);
    if (!stream.isOpen()) return err_set(e, "cannot open");
    TagLib::FileRef ref(&stream, true, TagLib::AudioProperties::Fast);
    TagLib::File *f = ref.file();
    if (!f || !f->isValid()) return err_set(e, "not a supported audio file");
    TagLib::AudioProperties *ap = f->audioProperties();
    if (!ap || ap->sampleRate() <= 0 || ap->channels() <= 0) return err_set(e, "not a supported audio file");
    using namespace TagLib;
    using rawtag::Format;
    if (dynamic_cast<MPEG::File *>(f)) fmt = Format::Mpeg;
    else if (dynamic_cast<RIFF::WAV::File *>(f)) fmt = Format::Wav;
    else if (dynamic_cast<RIFF::AIFF::File *>(f)) fmt = Format::Aiff;
    else if (dynamic_cast<FLAC::File *>(f)) fmt = Format::Flac;
    else if (dynamic_cast<Ogg::Vorbis::File *>(f)) fmt = Format::OggVorbis;
    else if (dynamic_cast<Ogg::Opus::File *>(f)) fmt = Format::OggOpus;
    else if (dynamic_cast<Ogg::Speex::File *>(f)) fmt = Format::OggSpeex;
    else if (dynamic_cast<Ogg::FLAC::File *>(f)) fmt = Format::OggFlac;
    else if (dynamic_cast<MP4::File *>(f)) fmt = Format::Mp4;
    else if (dynamic_cast<ASF::File *>(f)) fmt = Format::Asf;
    else if (dynamic_cast<APE::File *>(f) || dynamic_cast<WavPack::File *>(f)) fmt = Format::Ape;
    else return err_set(e, "tagging this audio format is not supported");
    if (artist) {
        TagLib::Tag *t = f->tag();
        *artist = t ? t->artist().to8Bit(true) : "";
    }
    return 0;
}

/* An open file and its parsed tag. */
struct Opened {
    int fd = -1;
    uint64_t size = 0;
    std::unique_ptr<rawtag::Source> src;
    std::unique_ptr<rawtag::Tag> tag;
    ~Opened()
    {
        if (fd >= 0) close(fd);
    }
};

int open_tag(const char *path, rawtag::Format fmt, bool write, Opened &o, ErrMsg *e)
{
    o.fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (o.fd < 0) return err_errno(e, write ? "cannot write" : "cannot open", errno);
    struct stat st;
    if (fstat(o.fd, &st) != 0) return err_errno(e, "cannot open", errno);
    if (!S_ISREG(st.st_mode)) return err_set(e, "not a regular file");
    o.size = (uint64_t)st.st_size;
    o.src = std::make_unique<rawtag::Source>(o.fd, o.size);
    o.tag = rawtag::open_tag(fmt, *o.src, e);
    return o.tag ? 0 : -1;
}

/* The state of genred's fields as the file has them, in UTF-8. */
struct Current {
    std::vector<std::string> genres;
    std::string confidence, model;
    std::string genre() const
    {
        std::string s; /* several values joined with a space, as TagLib 1.13 read them */
        for (const std::string &g : genres) s += (s.empty() ? "" : " ") + g;
        return s;
    }
};

Current read_current(const rawtag::Tag &t)
{
    Current c;
    int max_group = 0;
    for (const Item &it : t.items) max_group = std::max(max_group, it.group);
    for (int g = 0; g <= max_group; g++) {
        if (!c.genres.empty() && !t.merge_groups()) break;
        for (const Item &it : t.items) {
            if (it.group != g || it.role != Role::Genre) continue;
            for (std::string &s : t.values(it))
                if (std::find(c.genres.begin(), c.genres.end(), s) == c.genres.end()) c.genres.push_back(s);
        }
    }
    for (const Item &it : t.items) {
        if ((it.role == Role::Confidence && c.confidence.empty()) || (it.role == Role::Model && c.model.empty())) {
            std::vector<std::string> v = t.values(it);
            if (!v.empty()) (it.role == Role::Confidence ? c.confidence : c.model) = v.front();
        }
    }
    return c;
}

/* items with the owned ones replaced by ours: each group's new items go where its first owned
 * item was, or after its last item. */
std::vector<Item> replace_owned(const std::vector<Item> &items, const std::vector<Item> &ours)
{
    std::vector<Item> out;
    std::vector<int> done;
    auto put = [&](int g) {
        for (const Item &o : ours)
            if (o.group == g) out.push_back(o);
        done.push_back(g);
    };
    for (const Item &it : items) {
        if (it.role == Role::Other) {
            out.push_back(it);
        } else if (std::find(done.begin(), done.end(), it.group) == done.end()) {
            put(it.group);
        }
    }
    for (const Item &o : ours) {
        if (std::find(done.begin(), done.end(), o.group) != done.end()) continue;
        size_t at = out.size();
        for (size_t i = 0; i < out.size(); i++)
            if (out[i].group == o.group) at = i + 1;
        std::vector<Item> mine;
        for (const Item &x : ours)
            if (x.group == o.group) mine.push_back(x);
        out.insert(out.begin() + (long)at, mine.begin(), mine.end());
        done.push_back(o.group);
    }
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Undo records: "genred-undo-1 DIALECT HEX", HEX = per owned item: group (1 byte), its index
 * among its group's items (4, big-endian), length (4) and bytes. */

const char UNDO_MAGIC[] = "genred-undo-1";

std::string make_undo(const rawtag::Tag &t)
{
    Bytes bin;
    std::vector<uint32_t> index(8, 0);
    for (const Item &it : t.items) {
        if (it.group < 0 || it.group >= 8) continue;
        if (it.role != Role::Other) {
            bin += (char)it.group;
            bin += rawtag::be(index[(size_t)it.group], 4) + rawtag::be(it.raw.size(), 4) + it.raw;
        }
        index[(size_t)it.group]++;
    }
    static const char hexd[] = "0123456789abcdef";
    std::string s = std::string(UNDO_MAGIC) + " " + t.dialect() + " ";
    for (unsigned char c : bin) {
        s += hexd[c >> 4];
        s += hexd[c & 15];
    }
    return s;
}

struct UndoItem {
    int group;
    uint32_t index;
    Bytes raw;
};

/* false when the record is not one for this tag's dialect. */
bool parse_undo(const char *undo, const std::string &dialect, std::vector<UndoItem> &out)
{
    out.clear();
    std::istringstream in(undo ? undo : "");
    std::string magic, d, hex;
    in >> magic >> d >> hex;
    if (magic != UNDO_MAGIC || d != dialect || hex.size() % 2) return false;
    Bytes bin;
    for (size_t i = 0; i < hex.size(); i += 2) {
        auto v = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
        int hi = v(hex[i]), lo = v(hex[i + 1]);
        if (hi < 0 || lo < 0) return false;
        bin += (char)(hi << 4 | lo);
    }
    size_t p = 0;
    while (p < bin.size()) {
        if (bin.size() - p < 9) return false;
        UndoItem u{(unsigned char)bin[p], rawtag::get_be(bin, p + 1, 4), Bytes()};
        uint32_t n = rawtag::get_be(bin, p + 5, 4);
        if (n > bin.size() - p - 9) return false;
        u.raw = bin.substr(p + 9, n);
        out.push_back(u);
        p += 9 + n;
    }
    return true;
}

/* items without the owned ones, and the saved ones back at their places. */
std::vector<Item> put_back(const std::vector<Item> &items, std::vector<UndoItem> undo)
{
    std::vector<Item> out;
    for (const Item &it : items)
        if (it.role == Role::Other) out.push_back(it);
    std::stable_sort(undo.begin(), undo.end(), [](const UndoItem &a, const UndoItem &b) {
        return a.group != b.group ? a.group < b.group : a.index < b.index;
    });
    for (const UndoItem &u : undo) {
        size_t first = out.size(), count = 0;
        for (size_t i = 0; i < out.size(); i++)
            if (out[i].group == u.group) {
                if (first == out.size()) first = i;
                count++;
            }
        if (count == 0) { /* keep the groups in their order */
            first = out.size();
            for (size_t i = 0; i < out.size(); i++)
                if (out[i].group > u.group) {
                    first = i;
                    break;
                }
        }
        size_t at = first + std::min<size_t>(u.index, count);
        Item it{u.group, Role::Other, u.raw};
        out.insert(out.begin() + (long)at, it);
    }
    return out;
}

/* ------------------------------------------------------------------------------------------ */

int write_all(int fd, const char *p, size_t n, uint64_t off, ErrMsg *e)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return err_errno(e, "cannot write", w < 0 ? errno : EIO);
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Applies sorted, non-overlapping edits to the open file. */
int apply_edits(Opened &o, const rawtag::Edits &edits, ErrMsg *e)
{
    uint64_t first_resize = UINT64_MAX;
    for (const rawtag::Edit &ed : edits)
        if (ed.data.size() != ed.old_len) {
            first_resize = ed.offset;
            break;
        }
    for (const rawtag::Edit &ed : edits) {
        if (ed.offset >= first_resize) break;
        if (write_all(o.fd, ed.data.data(), ed.data.size(), ed.offset, e) != 0) return -1;
    }
    if (first_resize == UINT64_MAX) return 0;
    /* Everything from the first change of size on is rewritten. */
    Bytes tail;
    if (!o.src->read(first_resize, o.size - first_resize, tail)) return err_set(e, "cannot read the file");
    Bytes now;
    uint64_t pos = first_resize;
    for (const rawtag::Edit &ed : edits) {
        if (ed.offset < first_resize) continue;
        now.append(tail, pos - first_resize, ed.offset - pos);
        now += ed.data;
        pos = ed.offset + ed.old_len;
    }
    now.append(tail, pos - first_resize, std::string::npos);
    if (write_all(o.fd, now.data(), now.size(), first_resize, e) != 0) return -1;
    if (first_resize + now.size() < o.size && ftruncate(o.fd, (off_t)(first_resize + now.size())) != 0)
        return err_errno(e, "cannot write", errno);
    return 0;
}

int check_edits(const rawtag::Edits &edits, uint64_t size, ErrMsg *e)
{
    uint64_t end = 0;
    for (const rawtag::Edit &ed : edits) {
        if (ed.offset < end || ed.offset > size || ed.old_len > size - ed.offset)
            return err_set(e, "internal error: bad edit list");
        end = ed.offset + ed.old_len;
    }
    return 0;
}

int save(Opened &o, const std::vector<Item> &items, ErrMsg *e)
{
    rawtag::Edits edits;
    if (o.tag->render(items, edits, e) != 0) return -1;
    if (check_edits(edits, o.size, e) != 0) return -1;
    return apply_edits(o, edits, e);
}

/* ------------------------------------------------------------------------------------------ */

void copy_out(char *dst, size_t cap, const std::string &s)
{
    /* Truncate on a UTF-8 character boundary so the C side never sees half a character. */
    size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    if (n < s.size())
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    memcpy(dst, s.data(), n);
    dst[n] = '\0';
}

/* "%.3f" in the C locale whatever setlocale() the program did: a German locale must not
 * write "0,873" into the file. */
std::string format_confidence(double c)
{
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os << std::fixed << std::setprecision(3) << c;
    return os.str();
}

int validate_write(const TaggerWrite *w, ErrMsg *e)
{
    if (!w) return err_set(e, "no tag values given");
    if (!w->genre || !*w->genre) return err_set(e, "empty genre");
    if (strlen(w->genre) >= sizeof(((TaggerInfo *)nullptr)->genre)) return err_set(e, "genre too long");
    if (!std::isfinite(w->confidence) || w->confidence < 0.0 || w->confidence > 1.0)
        return err_set(e, "confidence not in [0, 1]");
    if (!w->model_id || !*w->model_id) return err_set(e, "empty model id");
    size_t n = strlen(w->model_id);
    if (n >= sizeof(((TaggerInfo *)nullptr)->model)) return err_set(e, "model id too long");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w->model_id[i] <= ' ' || (unsigned char)w->model_id[i] > '~')
            return err_set(e, "model id must be printable ascii");
    return 0;
}

int decide(const Current &c, const TaggerWrite *w, const std::string &conf)
{
    if (c.genre() == w->genre && c.model == w->model_id && c.confidence == conf) return TAGGER_UNCHANGED;
    if (!c.genres.empty() && c.confidence.empty() && !w->force) return TAGGER_KEPT;
    return TAGGER_WRITTEN;
}

std::vector<Item> our_items(const rawtag::Tag &t, const std::string &genre, const std::string &conf,
                            const std::string &model)
{
    std::vector<Item> ours = t.make_genre({genre});
    /* GENRED_* right after the main group's genre item. */
    size_t at = 0;
    while (at < ours.size() && ours[at].group == 0) at++;
    ours.insert(ours.begin() + (long)at, {t.make_key(Role::Confidence, conf), t.make_key(Role::Model, model)});
    return ours;
}

int write_impl(const char *path, const TaggerWrite *w, int *outcome, char **undo, ErrMsg *e)
{
    if (undo) *undo = nullptr;
    if (validate_write(w, e) != 0) return -1;
    const std::string conf = format_confidence(w->confidence);
    rawtag::Format fmt;
    if (detect(path, fmt, nullptr, e) != 0) return -1;
    int result;
    {
        Opened o;
        if (open_tag(path, fmt, false, o, e) != 0) return -1;
        result = decide(read_current(*o.tag), w, conf);
    }
    if (result == TAGGER_WRITTEN) {
        /* A dry run reports an error the real run would hit. */
        if (check_writable(path, e) != 0) return -1;
        if (!w->dry_run) {
            Opened o;
            if (open_tag(path, fmt, true, o, e) != 0) return -1;
            /* Decide again on what this handle sees: the file may have changed meanwhile. */
            Current c = read_current(*o.tag);
            result = decide(c, w, conf);
            if (result == TAGGER_WRITTEN) {
                std::string record = c.confidence.empty() ? make_undo(*o.tag) : "";
                std::vector<Item> items = replace_owned(o.tag->items, our_items(*o.tag, w->genre, conf, w->model_id));
                if (save(o, items, e) != 0) return -1;
                if (undo && !record.empty()) *undo = strdup(record.c_str());
            }
        }
    }
    if (outcome) *outcome = result;
    return 0;
}

int restore_impl(const char *path, const char *previous_genre, const char *undo, ErrMsg *e)
{
    const std::string prev = previous_genre ? previous_genre : "";
    rawtag::Format fmt;
    if (detect(path, fmt, nullptr, e) != 0) return -1;
    std::vector<UndoItem> saved;
    {
        Opened o;
        if (open_tag(path, fmt, false, o, e) != 0) return -1;
        Current c = read_current(*o.tag);
        if (!parse_undo(undo, o.tag->dialect(), saved) && c.genre() == prev && c.confidence.empty() &&
            c.model.empty())
            return 0; /* nothing to undo */
    }
    if (check_writable(path, e) != 0) return -1;
    Opened o;
    if (open_tag(path, fmt, true, o, e) != 0) return -1;
    std::vector<Item> items;
    if (parse_undo(undo, o.tag->dialect(), saved)) {
        items = put_back(o.tag->items, saved);
    } else {
        /* No record of the exact items (a file tagged before genred kept them, or converted
         * since): the previous genre as a plain value. */
        std::vector<Item> ours;
        if (!prev.empty()) ours = o.tag->make_genre({prev});
        items = replace_owned(o.tag->items, ours);
    }
    return save(o, items, e);
}

int read_impl(const char *path, TaggerInfo *out, ErrMsg *e)
{
    if (!out) return err_set(e, "no output given");
    memset(out, 0, sizeof *out);
    rawtag::Format fmt;
    std::string artist;
    if (detect(path, fmt, &artist, e) != 0) return -1;
    Opened o;
    if (open_tag(path, fmt, false, o, e) != 0) return -1;
    Current c = read_current(*o.tag);
    copy_out(out->genre, sizeof out->genre, c.genre());
    copy_out(out->artist, sizeof out->artist, artist);
    copy_out(out->confidence, sizeof out->confidence, c.confidence);
    copy_out(out->model, sizeof out->model, c.model);
    return 0;
}

template <typename F> int guarded(ErrMsg *e, F f)
{
    try {
        return f();
    } catch (const std::exception &ex) {
        return err_set(e, "internal error: %s", ex.what());
    } catch (...) {
        return err_set(e, "internal error");
    }
}

const char *const extensions[] = {"mp3", "flac", "ogg", "oga", "opus", "spx", "m4a", "m4b", "mp4",
                                  "wma", "asf", "ape", "wv",  "wav", "aif", "aiff", "aifc", nullptr};

} // namespace

extern "C" {

int tagger_read(const char *path, TaggerInfo *out, ErrMsg *e)
{
    return guarded(e, [&] { return read_impl(path, out, e); });
}

int tagger_write(const char *path, const TaggerWrite *w, int *outcome, char **undo, ErrMsg *e)
{
    return guarded(e, [&] { return write_impl(path, w, outcome, undo, e); });
}

int tagger_restore(const char *path, const char *previous_genre, const char *undo, ErrMsg *e)
{
    return guarded(e, [&] { return restore_impl(path, previous_genre, undo, e); });
}

int tagger_set_hand_genre(const char *path, const char *genre, ErrMsg *e)
{
    if (!genre || !*genre) return err_set(e, "empty genre");
    return guarded(e, [&] { return restore_impl(path, genre, nullptr, e); });
}

const char *const *tagger_extensions(void) { return extensions; }

const char *tagger_outcome_name(int outcome)
{
    switch (outcome) {
    case TAGGER_WRITTEN: return "written";
    case TAGGER_UNCHANGED: return "unchanged";
    case TAGGER_KEPT: return "kept";
    default: return "unknown";
    }
}

} /* extern "C" */
