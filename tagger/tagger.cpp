/* tagger: the C interface of tagger.h over TagLib 1.13 (DESIGN.md §6).
 *
 * What it is: one small C++17 shim that reads and writes GENRE, GENRED_CONFIDENCE and
 * GENRED_MODEL in the file's own tag: ID3v2 (mp3, wav, aiff), Xiph comments (flac, ogg
 * vorbis/opus/speex/flac), MP4 items (m4a AAC/ALAC), ASF attributes (wma), APE (ape, wavpack).
 * What it is not: a general tag editor. It touches only those three fields and lets TagLib's
 * save() rewrite the tag region; audio data is never re-encoded.
 *
 * Invariants:
 * - Our two keys go through each container's native key/value API, which is exactly what the
 *   property map would produce for ID3v2 (TXXX), Xiph and APE; TagLib 1.13's MP4 and ASF
 *   property maps drop unknown keys, so there we set the freeform atom / attribute directly.
 *   Going direct also means no round trip of the whole property map, so nothing else moves.
 * - Deciding is done on a read-only handle; the file is opened for writing only when a write
 *   will happen. A read-write open alone would wake IN_CLOSE_WRITE watchers (the daemon).
 * - mp3/wav/aiff keep the ID3v2 version they have (2.3 or 2.4); a file with no ID3v2 tag, or
 *   a 2.2 tag (TagLib cannot write 2.2), gets 2.4. Existing ID3v1 and APE tags are never
 *   stripped; an mp3's ID3v1 genre is kept in step with GENRE.
 * - A file with no write permission bit is refused even for root: the user marked it
 *   read-only, and a tagger running as root should honour that.
 * - No globals; each call owns its TagLib objects, so distinct files may be tagged from
 *   distinct threads. Every C++ exception stops at the extern "C" boundary.
 * - save() rewrites the tag region in place (TagLib has no write-to-temp-and-rename); a crash
 *   in the middle of a save can damage that file's tags. That is TagLib's contract, not ours. */
#include "tagger.h"

#include <sys/stat.h>
#include <unistd.h>

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
#include <apetag.h>
#include <asffile.h>
#include <asftag.h>
#include <fileref.h>
#include <flacfile.h>
#include <id3v1tag.h>
#include <id3v2tag.h>
#include <mp4file.h>
#include <mp4tag.h>
#include <mpegfile.h>
#include <oggflacfile.h>
#include <opusfile.h>
#include <speexfile.h>
#include <tfilestream.h>
#include <textidentificationframe.h>
#include <vorbisfile.h>
#include <wavfile.h>
#include <wavpackfile.h>
#include <xiphcomment.h>

namespace {

const char KEY_CONF[] = "GENRED_CONFIDENCE";
const char KEY_MODEL[] = "GENRED_MODEL";
const char MP4_FREEFORM[] = "----:com.apple.iTunes:";

enum class Kind { Id3v2, Xiph, Ape, Mp4, Asf };
enum class Saver { Plain, Mpeg, Wav, Aiff };

/* An open file and the one tag of it that holds our fields. The FileRef owns the TagLib file
 * and the stream must outlive it, hence the declaration order. */
struct Target {
    std::unique_ptr<TagLib::FileStream> stream;
    TagLib::FileRef ref;
    TagLib::File *file = nullptr;
    Kind kind = Kind::Xiph;
    Saver saver = Saver::Plain;
    TagLib::ID3v2::Tag *id3v2 = nullptr;
    TagLib::Ogg::XiphComment *xiph = nullptr;
    TagLib::APE::Tag *ape = nullptr;
    TagLib::MP4::Tag *mp4 = nullptr;
    TagLib::ASF::Tag *asf = nullptr;
    TagLib::ID3v1::Tag *id3v1 = nullptr; /* mp3 only, and only when the file has one on disk */
    TagLib::ID3v2::Version id3v2_version = TagLib::ID3v2::v4;
};

/* The state of our fields as the file has them, in UTF-8. */
struct Current {
    std::string genre, artist, confidence, model;
};

std::string utf8(const TagLib::String &s) { return s.to8Bit(true); }
TagLib::String tstr(const std::string &s) { return TagLib::String(s, TagLib::String::UTF8); }

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

TagLib::ID3v2::Version id3v2_version_of(TagLib::ID3v2::Tag *tag, bool on_disk)
{
    if (on_disk && tag->header()->majorVersion() == 3) return TagLib::ID3v2::v3;
    return TagLib::ID3v2::v4;
}

/* Opens path (read-only or read-write) and picks the tag our fields live in. */
int open_target(const char *path, bool read_only, Target &t, ErrMsg *e)
{
    if (check_path(path, e) != 0) return -1;
    t.stream.reset(new TagLib::FileStream(path, read_only));
    if (!t.stream->isOpen()) return err_set(e, "cannot open");
    if (!read_only && t.stream->readOnly()) return err_set(e, "file is read-only");
    /* Audio properties are read (fast style) only to refuse non-audio: TagLib's MPEG reader
     * accepts any bytes as a tagless mp3, and tagging a text file would corrupt it. */
    t.ref = TagLib::FileRef(t.stream.get(), true, TagLib::AudioProperties::Fast);
    t.file = t.ref.file();
    if (!t.file || !t.file->isValid()) return err_set(e, "not a supported audio file");
    TagLib::AudioProperties *ap = t.file->audioProperties();
    if (!ap || ap->sampleRate() <= 0 || ap->channels() <= 0)
        return err_set(e, "not a supported audio file");

    using namespace TagLib;
    if (auto *f = dynamic_cast<MPEG::File *>(t.file)) {
        t.kind = Kind::Id3v2;
        t.saver = Saver::Mpeg;
        t.id3v2 = f->ID3v2Tag(true);
        t.id3v2_version = id3v2_version_of(t.id3v2, f->hasID3v2Tag());
        if (f->hasID3v1Tag()) t.id3v1 = f->ID3v1Tag(false);
    } else if (auto *f = dynamic_cast<RIFF::WAV::File *>(t.file)) {
        t.kind = Kind::Id3v2;
        t.saver = Saver::Wav;
        t.id3v2 = f->ID3v2Tag();
        t.id3v2_version = id3v2_version_of(t.id3v2, f->hasID3v2Tag());
    } else if (auto *f = dynamic_cast<RIFF::AIFF::File *>(t.file)) {
        t.kind = Kind::Id3v2;
        t.saver = Saver::Aiff;
        t.id3v2 = f->tag();
        t.id3v2_version = id3v2_version_of(t.id3v2, f->hasID3v2Tag());
    } else if (auto *f = dynamic_cast<FLAC::File *>(t.file)) {
        t.kind = Kind::Xiph;
        t.xiph = f->xiphComment(true);
    } else if (auto *f = dynamic_cast<Ogg::Vorbis::File *>(t.file)) {
        t.kind = Kind::Xiph;
        t.xiph = f->tag();
    } else if (auto *f = dynamic_cast<Ogg::Opus::File *>(t.file)) {
        t.kind = Kind::Xiph;
        t.xiph = f->tag();
    } else if (auto *f = dynamic_cast<Ogg::Speex::File *>(t.file)) {
        t.kind = Kind::Xiph;
        t.xiph = f->tag();
    } else if (auto *f = dynamic_cast<Ogg::FLAC::File *>(t.file)) {
        t.kind = Kind::Xiph;
        t.xiph = f->tag();
    } else if (auto *f = dynamic_cast<MP4::File *>(t.file)) {
        t.kind = Kind::Mp4;
        t.mp4 = f->tag();
    } else if (auto *f = dynamic_cast<ASF::File *>(t.file)) {
        t.kind = Kind::Asf;
        t.asf = f->tag();
    } else if (auto *f = dynamic_cast<APE::File *>(t.file)) {
        t.kind = Kind::Ape;
        t.ape = f->APETag(true);
    } else if (auto *f = dynamic_cast<WavPack::File *>(t.file)) {
        t.kind = Kind::Ape;
        t.ape = f->APETag(true);
    } else {
        return err_set(e, "tagging this audio format is not supported");
    }
    if (!t.id3v2 && !t.xiph && !t.ape && !t.mp4 && !t.asf) return err_set(e, "file has no usable tag");
    return 0;
}

TagLib::ID3v2::FrameList id3v2_user_frames(TagLib::ID3v2::Tag *tag, const char *key)
{
    TagLib::ID3v2::FrameList found;
    const TagLib::String want(key);
    for (TagLib::ID3v2::Frame *fr : tag->frameList("TXXX")) {
        auto *u = dynamic_cast<TagLib::ID3v2::UserTextIdentificationFrame *>(fr);
        if (u && u->description().upper() == want) found.append(fr);
    }
    return found;
}

std::string get_key(const Target &t, const char *key)
{
    switch (t.kind) {
    case Kind::Id3v2: {
        TagLib::ID3v2::FrameList l = id3v2_user_frames(t.id3v2, key);
        if (l.isEmpty()) return "";
        auto *u = dynamic_cast<TagLib::ID3v2::UserTextIdentificationFrame *>(l.front());
        TagLib::StringList f = u->fieldList(); /* [description, value, ...] */
        return f.size() >= 2 ? utf8(f[1]) : "";
    }
    case Kind::Xiph: {
        const TagLib::Ogg::FieldListMap &m = t.xiph->fieldListMap();
        auto it = m.find(key);
        return it == m.end() || it->second.isEmpty() ? "" : utf8(it->second.front());
    }
    case Kind::Ape: {
        const TagLib::APE::ItemListMap &m = t.ape->itemListMap();
        auto it = m.find(key);
        if (it == m.end() || it->second.type() != TagLib::APE::Item::Text) return "";
        TagLib::StringList v = it->second.values();
        return v.isEmpty() ? "" : utf8(v.front());
    }
    case Kind::Mp4: {
        const TagLib::String k = TagLib::String(MP4_FREEFORM) + key;
        if (!t.mp4->contains(k)) return "";
        TagLib::MP4::Item item = t.mp4->item(k);
        TagLib::StringList v = item.toStringList();
        if (!v.isEmpty()) return utf8(v.front());
        TagLib::ByteVectorList b = item.toByteVectorList(); /* freeform atom not typed as text */
        return b.isEmpty() ? "" : std::string(b.front().data(), b.front().size());
    }
    case Kind::Asf: {
        if (!t.asf->contains(key)) return "";
        TagLib::ASF::AttributeList l = t.asf->attribute(key);
        return l.isEmpty() ? "" : utf8(l.front().toString());
    }
    }
    return "";
}

/* Sets key to value, or removes it when value is empty. */
void set_key(Target &t, const char *key, const std::string &value)
{
    switch (t.kind) {
    case Kind::Id3v2:
        for (TagLib::ID3v2::Frame *fr : id3v2_user_frames(t.id3v2, key)) t.id3v2->removeFrame(fr, true);
        if (!value.empty())
            /* Latin1: our values are ASCII and every ID3v2.3 reader handles it. */
            t.id3v2->addFrame(new TagLib::ID3v2::UserTextIdentificationFrame(
                key, TagLib::StringList(tstr(value)), TagLib::String::Latin1));
        break;
    case Kind::Xiph:
        t.xiph->removeFields(key);
        if (!value.empty()) t.xiph->addField(key, tstr(value), true);
        break;
    case Kind::Ape:
        t.ape->removeItem(key);
        if (!value.empty()) t.ape->addValue(key, tstr(value), true);
        break;
    case Kind::Mp4: {
        const TagLib::String k = TagLib::String(MP4_FREEFORM) + key;
        t.mp4->removeItem(k);
        if (!value.empty()) t.mp4->setItem(k, TagLib::MP4::Item(TagLib::StringList(tstr(value))));
        break;
    }
    case Kind::Asf:
        t.asf->removeItem(key);
        if (!value.empty()) t.asf->setAttribute(key, TagLib::ASF::Attribute(tstr(value)));
        break;
    }
}

void set_genre(Target &t, const std::string &genre)
{
    const TagLib::String g = tstr(genre);
    switch (t.kind) {
    case Kind::Id3v2: t.id3v2->setGenre(g); break; /* empty removes TCON */
    case Kind::Xiph: t.xiph->setGenre(g); break;   /* empty removes GENRE */
    case Kind::Ape: t.ape->setGenre(g); break;     /* empty removes Genre */
    case Kind::Mp4:
        /* A numeric gnre atom beside ©gen would be a second, contradicting genre. */
        t.mp4->removeItem("gnre");
        t.mp4->setGenre(g); /* empty removes ©gen */
        break;
    case Kind::Asf:
        if (genre.empty()) t.asf->removeItem("WM/Genre");
        else t.asf->setGenre(g);
        break;
    }
    /* ID3v1 holds only its fixed list; an unknown name becomes "no genre" there. */
    if (t.id3v1) t.id3v1->setGenre(g);
}

std::string get_genre(const Target &t)
{
    switch (t.kind) {
    case Kind::Id3v2:
        /* An mp3 with an ID3v1 genre and no TCON still has a genre the user set. */
        if (t.id3v2->genre().isEmpty() && t.id3v1) return utf8(t.id3v1->genre());
        return utf8(t.id3v2->genre());
    case Kind::Xiph: return utf8(t.xiph->genre());
    case Kind::Ape: return utf8(t.ape->genre());
    case Kind::Mp4: return utf8(t.mp4->genre());
    case Kind::Asf: return utf8(t.asf->genre());
    }
    return "";
}

Current read_current(const Target &t)
{
    Current c;
    c.genre = get_genre(t);
    TagLib::Tag *all = t.file->tag();
    if (all) c.artist = utf8(all->artist());
    c.confidence = get_key(t, KEY_CONF);
    c.model = get_key(t, KEY_MODEL);
    return c;
}

int save_target(Target &t, ErrMsg *e)
{
    using namespace TagLib;
    bool ok = false;
    switch (t.saver) {
    case Saver::Mpeg: {
        auto *f = static_cast<MPEG::File *>(t.file);
        /* Only the tags we changed; StripNone keeps an APE tag, DoNotDuplicate stops TagLib
         * from creating an ID3v1 tag the file never had. */
        int tags = MPEG::File::ID3v2 | (t.id3v1 ? MPEG::File::ID3v1 : 0);
        ok = f->save(tags, File::StripNone, t.id3v2_version, File::DoNotDuplicate);
        break;
    }
    case Saver::Wav:
        /* StripNone keeps the RIFF INFO chunk. */
        ok = static_cast<RIFF::WAV::File *>(t.file)->save(RIFF::WAV::File::ID3v2, File::StripNone,
                                                           t.id3v2_version);
        break;
    case Saver::Aiff: ok = static_cast<RIFF::AIFF::File *>(t.file)->save(t.id3v2_version); break;
    case Saver::Plain: ok = t.file->save(); break;
    }
    return ok ? 0 : err_set(e, "saving the tags failed");
}

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
    if (c.genre == w->genre && c.model == w->model_id && c.confidence == conf) return TAGGER_UNCHANGED;
    if (!c.genre.empty() && c.confidence.empty() && !w->force) return TAGGER_KEPT;
    return TAGGER_WRITTEN;
}

int write_impl(const char *path, const TaggerWrite *w, int *outcome, ErrMsg *e)
{
    if (validate_write(w, e) != 0) return -1;
    const std::string conf = format_confidence(w->confidence);
    int result;
    {
        Target t;
        if (open_target(path, true, t, e) != 0) return -1;
        result = decide(read_current(t), w, conf);
    }
    if (result == TAGGER_WRITTEN) {
        /* A dry run reports an error the real run would hit. */
        if (check_writable(path, e) != 0) return -1;
        if (!w->dry_run) {
            Target t;
            if (open_target(path, false, t, e) != 0) return -1;
            /* Decide again on what this handle sees: the file may have changed meanwhile. */
            result = decide(read_current(t), w, conf);
            if (result == TAGGER_WRITTEN) {
                set_genre(t, w->genre);
                set_key(t, KEY_CONF, conf);
                set_key(t, KEY_MODEL, w->model_id);
                if (save_target(t, e) != 0) return -1;
            }
        }
    }
    if (outcome) *outcome = result;
    return 0;
}

int restore_impl(const char *path, const char *previous_genre, ErrMsg *e)
{
    const std::string prev = previous_genre ? previous_genre : "";
    {
        Target t;
        if (open_target(path, true, t, e) != 0) return -1;
        Current c = read_current(t);
        if (c.genre == prev && c.confidence.empty() && c.model.empty()) return 0; /* nothing to undo */
    }
    if (check_writable(path, e) != 0) return -1;
    Target t;
    if (open_target(path, false, t, e) != 0) return -1;
    set_key(t, KEY_CONF, "");
    set_key(t, KEY_MODEL, "");
    set_genre(t, prev);
    return save_target(t, e);
}

int read_impl(const char *path, TaggerInfo *out, ErrMsg *e)
{
    if (!out) return err_set(e, "no output given");
    memset(out, 0, sizeof *out);
    Target t;
    if (open_target(path, true, t, e) != 0) return -1;
    Current c = read_current(t);
    copy_out(out->genre, sizeof out->genre, c.genre);
    copy_out(out->artist, sizeof out->artist, c.artist);
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

int tagger_write(const char *path, const TaggerWrite *w, int *outcome, ErrMsg *e)
{
    return guarded(e, [&] { return write_impl(path, w, outcome, e); });
}

int tagger_restore(const char *path, const char *previous_genre, ErrMsg *e)
{
    return guarded(e, [&] { return restore_impl(path, previous_genre, e); });
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
