/* rawtag: ID3v2 (2.2, 2.3, 2.4) split into raw frames, in an mp3 (with ID3v1 beside it) and in
 * a WAV or AIFF chunk.
 *
 * A frame is kept as its bytes on disk: with ID3v2.2/2.3 whole-tag unsynchronisation, the
 * on-disk slice of the frame (the tag is decoded once with a map back to disk offsets); with
 * ID3v2.4, frames carry their own flags. genred's frames (TCON, TXXX:GENRED_*) are rendered by
 * TagLib for 2.3 or 2.4 and then given the tag's own conventions: 2.2 frame headers (TCO,
 * TXX), unsynchronisation when the tag uses it, and the non-syncsafe frame sizes old iTunes
 * wrote into 2.4 tags. The header keeps its version and flags; an extended header is kept
 * (its ID3v2.3 padding size follows the padding); a CRC in it is refused (none is written in
 * practice, and recomputing it is not worth a dependency). Padding absorbs changes in size; a
 * tag that must grow gets GROW_PADDING bytes of padding, so the next write does not move the
 * audio again. A tag left with no frame (genred's own, removed) is removed. */
#include "rawtag.h"

#include <id3v1genres.h>
#include <id3v2frame.h>
#include <id3v2framefactory.h>
#include <id3v2header.h>
#include <textidentificationframe.h>

#include <algorithm>
#include <memory>

namespace rawtag {
namespace {

const uint64_t GROW_PADDING = 1024;
const uint32_t MAX_ID3_SIZE = (1u << 28) - 1; /* 28 bits of syncsafe size */

uint32_t syncsafe_get(const Bytes &b, size_t off, bool *ok)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = (unsigned char)b[off + i];
        if (c & 0x80) *ok = false;
        v = (v << 7) | (c & 0x7F);
    }
    return v;
}

Bytes syncsafe(uint32_t v)
{
    Bytes b(4, '\0');
    for (int i = 3; i >= 0; i--, v >>= 7) b[i] = (char)(v & 0x7F);
    return b;
}

Bytes unsync_encode(const Bytes &in)
{
    Bytes out;
    out.reserve(in.size() + in.size() / 64);
    for (size_t i = 0; i < in.size(); i++) {
        out += in[i];
        if ((unsigned char)in[i] == 0xFF &&
            (i + 1 == in.size() || (unsigned char)in[i + 1] >= 0xE0 || in[i + 1] == 0))
            out += '\0';
    }
    return out;
}

/* out[i] came from in[start + ...]; map[i] is its offset in `in`, map[out.size()] = in.size(). */
void unsync_decode(const Bytes &in, size_t start, Bytes &out, std::vector<size_t> &map)
{
    out.clear();
    map.clear();
    for (size_t i = start; i < in.size(); i++) {
        out += in[i];
        map.push_back(i);
        if ((unsigned char)in[i] == 0xFF && i + 1 < in.size() && in[i + 1] == 0) i++;
    }
    map.push_back(in.size());
}

Bytes unsync_decode(const Bytes &in)
{
    Bytes out;
    std::vector<size_t> map;
    unsync_decode(in, 0, out, map);
    return out;
}

bool frame_id_ok(const Bytes &b, size_t off, int n)
{
    for (int i = 0; i < n; i++) {
        char c = b[off + i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
    }
    return true;
}

/* One parsed ID3v2 tag. */
struct Id3 {
    bool exists = false;
    int version = 4, revision = 0;
    unsigned flags = 0;
    bool plain_sizes = false; /* 2.4 with plain 32-bit frame sizes (old iTunes) */
    Bytes ext;                /* extended header; 2.3: decoded (size field included) */
    uint32_t body_size = 0;   /* the header's size field: extended header + frames + padding */
    uint64_t total = 0;       /* bytes on disk: header + body + footer */
    std::vector<Bytes> frames;

    bool unsync_tag() const { return version <= 3 && (flags & 0x80); }
    bool unsync_frames() const { return version == 4 && (flags & 0x80); }
    bool footer() const { return version == 4 && (flags & 0x10); }
    int header_size() const { return version == 2 ? 6 : 10; }
};

/* Splits the frames of body[pos, end) with 2.4 sizes syncsafe or plain. */
bool split_frames(const Id3 &t, const Bytes &body, size_t pos, size_t end, bool plain,
                  std::vector<std::pair<size_t, size_t>> &spans)
{
    const size_t hs = (size_t)t.header_size();
    const int idlen = t.version == 2 ? 3 : 4;
    spans.clear();
    while (pos + hs <= end) {
        if (body[pos] == 0) break; /* padding */
        if (!frame_id_ok(body, pos, idlen)) return false;
        uint64_t size;
        if (t.version == 2) {
            size = get_be(body, pos + 3, 3);
        } else if (t.version == 3 || plain) {
            size = get_be(body, pos + 4, 4);
        } else {
            bool ok = true;
            size = syncsafe_get(body, pos + 4, &ok);
            if (!ok) return false;
        }
        if (size > end - pos - hs) return false;
        spans.emplace_back(pos, pos + hs + size);
        pos += hs + size;
    }
    return true;
}

/* data: the whole tag from "ID3". */
int parse_id3(const Bytes &data, Id3 &t, ErrMsg *e)
{
    t = Id3();
    if (data.size() < 10 || data.compare(0, 3, "ID3") != 0) return err_set(e, "no ID3v2 header");
    t.exists = true;
    t.version = (unsigned char)data[3];
    t.revision = (unsigned char)data[4];
    t.flags = (unsigned char)data[5];
    if (t.version < 2 || t.version > 4) return err_set(e, "ID3v2.%d tag: unknown version", t.version);
    bool ok = true;
    t.body_size = syncsafe_get(data, 6, &ok);
    if (!ok) return err_set(e, "ID3v2 tag: damaged size field");
    t.total = 10 + (uint64_t)t.body_size + (t.footer() ? 10 : 0);
    if (data.size() < t.total) return err_set(e, "ID3v2 tag runs past the end of the file");
    if (t.version == 2 && (t.flags & 0x40)) return err_set(e, "compressed ID3v2.2 tag: not supported");

    Bytes raw = data.substr(10, t.body_size);
    Bytes body;
    std::vector<size_t> map;
    if (t.unsync_tag()) {
        unsync_decode(raw, 0, body, map);
    } else {
        body = raw;
        map.resize(body.size() + 1);
        for (size_t i = 0; i <= body.size(); i++) map[i] = i;
    }

    size_t pos = 0;
    if ((t.flags & 0x40) && t.version == 3) {
        if (body.size() < 4) return err_set(e, "ID3v2 tag: damaged extended header");
        if (!frame_id_ok(body, 0, 4)) { /* the flag without a header, as some taggers write */
            uint64_t n = get_be(body, 0, 4);
            if (n < 6 || n > body.size() - 4) return err_set(e, "ID3v2 tag: damaged extended header");
            t.ext = body.substr(0, 4 + n);
            if (get_be(t.ext, 4, 2) & 0x8000)
                return err_set(e, "ID3v2 tag has a CRC in its extended header: not supported");
            pos = 4 + n;
        }
    } else if ((t.flags & 0x40) && t.version == 4) {
        if (body.size() < 6) return err_set(e, "ID3v2 tag: damaged extended header");
        bool sok = true;
        uint64_t n = syncsafe_get(body, 0, &sok);
        if (!sok || n < 6 || n > body.size()) return err_set(e, "ID3v2 tag: damaged extended header");
        if ((unsigned char)body[5] & 0x20)
            return err_set(e, "ID3v2 tag has a CRC in its extended header: not supported");
        t.ext = body.substr(0, n);
        pos = n;
    }

    std::vector<std::pair<size_t, size_t>> spans;
    if (!split_frames(t, body, pos, body.size(), false, spans)) {
        if (t.version != 4 || !split_frames(t, body, pos, body.size(), true, spans))
            return err_set(e, "ID3v2 tag: damaged frame list");
        t.plain_sizes = true;
    }
    for (auto &s : spans) t.frames.push_back(raw.substr(map[s.first], map[s.second] - map[s.first]));
    return 0;
}

/* A frame as TagLib's frame factory expects it: whole-tag unsynchronisation undone, a 2.4 size
 * syncsafe. */
Bytes frame_for_taglib(const Id3 &t, const Bytes &raw)
{
    Bytes f = t.unsync_tag() ? unsync_decode(raw) : raw;
    if (t.version == 4 && t.plain_sizes && f.size() >= 10) {
        Bytes s = syncsafe((uint32_t)(f.size() - 10));
        f.replace(4, 4, s);
    }
    return f;
}

std::unique_ptr<TagLib::ID3v2::Frame> taglib_frame(const Id3 &t, const Bytes &raw)
{
    Bytes f = frame_for_taglib(t, raw);
    TagLib::ID3v2::Header h;
    h.setMajorVersion((unsigned)t.version);
    return std::unique_ptr<TagLib::ID3v2::Frame>(TagLib::ID3v2::FrameFactory::instance()->createFrame(
        TagLib::ByteVector(f.data(), (unsigned)f.size()), &h));
}

Role role_of_frame(const Id3 &t, const Bytes &raw)
{
    const bool v2 = t.version == 2;
    Bytes id = raw.substr(0, v2 ? 3 : 4);
    if (id == "TCON" || id == "TCO") return Role::Genre;
    if (id != "TXXX" && id != "TXX") return Role::Other;
    std::unique_ptr<TagLib::ID3v2::Frame> fr = taglib_frame(t, raw);
    auto *u = dynamic_cast<TagLib::ID3v2::UserTextIdentificationFrame *>(fr.get());
    if (!u) return Role::Other; /* compressed, encrypted or damaged: not one genred wrote */
    return role_of_key(u->description().to8Bit(true), "\x01");
}

std::vector<std::string> frame_values(const Id3 &t, const Item &it)
{
    std::vector<std::string> out;
    std::unique_ptr<TagLib::ID3v2::Frame> fr = taglib_frame(t, it.raw);
    if (auto *u = dynamic_cast<TagLib::ID3v2::UserTextIdentificationFrame *>(fr.get())) {
        TagLib::StringList f = u->fieldList(); /* [description, values...] */
        for (unsigned i = 1; i < f.size(); i++) out.push_back(f[i].to8Bit(true));
    } else if (auto *tf = dynamic_cast<TagLib::ID3v2::TextIdentificationFrame *>(fr.get())) {
        /* TCON: numbers are ID3v1 genres, as TagLib's ID3v2::Tag::genre() reads them. */
        for (const TagLib::String &s : tf->fieldList()) {
            if (s.isEmpty()) continue;
            bool ok = false;
            int n = s.toInt(&ok);
            std::string v = (ok && n >= 0 && n <= 255) ? TagLib::ID3v1::genre(n).to8Bit(true) : s.to8Bit(true);
            if (!v.empty() && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
        }
    }
    return out;
}

/* TagLib renders frames for the version its header says; the header is protected. */
template <class F> struct Versioned : F {
    using F::F;
    TagLib::ByteVector render_as(unsigned version)
    {
        this->header()->setVersion(version);
        return this->render();
    }
};

TagLib::String::Type text_encoding(const TagLib::StringList &values, int version)
{
    for (const TagLib::String &s : values)
        if (!s.isLatin1()) return version == 4 ? TagLib::String::UTF8 : TagLib::String::UTF16;
    return TagLib::String::Latin1;
}

/* A frame rendered by TagLib for 2.3/2.4, given the tag's own conventions. */
Bytes finish_frame(const Id3 &t, const TagLib::ByteVector &r)
{
    Bytes f(r.data(), r.size());
    if (t.version == 2) {
        Bytes id = f.substr(0, 4) == "TCON" ? "TCO" : "TXX";
        Bytes payload = f.substr(10);
        f = id + be(payload.size(), 3) + payload;
    } else if (t.version == 4 && t.unsync_frames()) {
        Bytes payload = f.substr(10);
        Bytes enc = (t.plain_sizes ? be(payload.size(), 4) : syncsafe((uint32_t)payload.size())) +
                    unsync_encode(payload);
        f = f.substr(0, 4) + (t.plain_sizes ? be(enc.size(), 4) : syncsafe((uint32_t)enc.size())) +
            f.substr(8, 2) + enc;
        f[9] = (char)((unsigned char)f[9] | 0x03); /* unsynchronised, data length indicator */
    } else if (t.version == 4 && t.plain_sizes) {
        put_be(f, 4, f.size() - 10, 4);
    }
    if (t.unsync_tag()) f = unsync_encode(f);
    return f;
}

Bytes make_tcon(const Id3 &t, const std::vector<std::string> &genres)
{
    TagLib::StringList values;
    for (const std::string &g : genres) values.append(TagLib::String(g, TagLib::String::UTF8));
    const unsigned v = t.version == 2 ? 3 : (unsigned)t.version;
    Versioned<TagLib::ID3v2::TextIdentificationFrame> f("TCON", text_encoding(values, (int)v));
    f.setText(values);
    return finish_frame(t, f.render_as(v));
}

Bytes make_txxx(const Id3 &t, const char *key, const std::string &value)
{
    const unsigned v = t.version == 2 ? 3 : (unsigned)t.version;
    /* Latin-1: our values are ASCII and every ID3v2.3 reader handles it. */
    Versioned<TagLib::ID3v2::UserTextIdentificationFrame> f(
        key, TagLib::StringList(TagLib::String(value, TagLib::String::UTF8)), TagLib::String::Latin1);
    return finish_frame(t, f.render_as(v));
}

/* The tag with these frames; empty when there are none (the tag goes). */
int render_id3(const Id3 &t, const std::vector<const Bytes *> &frames, Bytes &out, ErrMsg *e)
{
    out.clear();
    if (frames.empty()) return 0;
    uint64_t flen = 0;
    for (const Bytes *f : frames) flen += f->size();
    Bytes ext = t.ext;
    const bool v3_ext = t.version == 3 && ext.size() >= 10; /* has a padding size field */
    uint64_t need = flen + (t.unsync_tag() ? unsync_encode(ext).size() : ext.size());
    uint64_t pad;
    if (t.footer()) pad = 0;
    else if (t.exists && need <= t.body_size) pad = t.body_size - need;
    else pad = GROW_PADDING;
    if (v3_ext) put_be(ext, 6, pad, 4);
    /* (Unsynchronising the new padding size may lengthen the header by a byte: the tag then
     * grows by that byte, which is harmless.) */
    if (t.unsync_tag()) ext = unsync_encode(ext);
    uint64_t size = ext.size() + flen + pad;
    if (size > MAX_ID3_SIZE) return err_set(e, "ID3v2 tag would exceed 256 MB");
    out.reserve(size + 20);
    out += "ID3";
    out += (char)t.version;
    out += (char)t.revision;
    out += (char)t.flags;
    out += syncsafe((uint32_t)size);
    out += ext;
    for (const Bytes *f : frames) out += *f;
    out.append(pad, '\0');
    if (t.footer()) out += "3DI" + out.substr(3, 7);
    return 0;
}

/* The part every ID3v2 carrier shares. */
class Id3Base : public Tag {
public:
    Id3 id3;

    std::string dialect() const override { return "id3v2." + std::to_string(id3.version); }
    bool multi_value() const override { return id3.version == 4; }
    std::vector<std::string> values(const Item &it) const override { return frame_values(id3, it); }
    std::vector<Item> make_genre(const std::vector<std::string> &genres) const override
    {
        return {Item{0, Role::Genre, make_tcon(id3, genres)}};
    }
    Item make_key(Role role, const std::string &value) const override
    {
        return Item{0, role, make_txxx(id3, role == Role::Confidence ? KEY_CONFIDENCE : KEY_MODEL, value)};
    }
    void add_frames()
    {
        for (const Bytes &f : id3.frames) items.push_back(Item{0, role_of_frame(id3, f), f});
    }

protected:
    int render_group0(const std::vector<Item> &its, Bytes &out, ErrMsg *e) const
    {
        std::vector<const Bytes *> frames;
        for (const Item &it : its)
            if (it.group == 0) frames.push_back(&it.raw);
        return render_id3(id3, frames, out, e);
    }
};

/* mp3: ID3v2 at the start, ID3v1 (its genre byte, group 1) in the last 128 bytes. APE and
 * Lyrics3 tags are not genred's and stay as they are. */
class MpegTag : public Id3Base {
public:
    bool has_v1 = false;
    uint64_t v1_genre_at = 0;

    std::vector<std::string> values(const Item &it) const override
    {
        if (it.group == 1) {
            int b = it.raw.empty() ? 255 : (unsigned char)it.raw[0];
            if (b == 255) return {};
            TagLib::String g = TagLib::ID3v1::genre(b);
            return g.isEmpty() ? std::vector<std::string>{} : std::vector<std::string>{g.to8Bit(true)};
        }
        return Id3Base::values(it);
    }
    std::vector<Item> make_genre(const std::vector<std::string> &genres) const override
    {
        std::vector<Item> out = Id3Base::make_genre(genres);
        if (has_v1) {
            /* ID3v1 holds only its fixed list; an unknown name becomes "no genre" there. */
            int n = TagLib::ID3v1::genreIndex(TagLib::String(genres.front(), TagLib::String::UTF8));
            out.push_back(Item{1, Role::Genre, Bytes(1, (char)(n < 0 || n > 255 ? 255 : n))});
        }
        return out;
    }
    int render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const override
    {
        out.clear();
        Bytes tag;
        if (render_group0(its, tag, e) != 0) return -1;
        if (id3.exists || !tag.empty()) out.push_back(Edit{0, id3.exists ? id3.total : 0, tag});
        if (has_v1) {
            Bytes b(1, (char)255);
            for (const Item &it : its)
                if (it.group == 1 && it.raw.size() == 1) b = it.raw;
            out.push_back(Edit{v1_genre_at, 1, b});
        }
        return 0;
    }
};

/* WAV ('id3 ' or 'ID3 ' chunk in RIFF, little-endian sizes) and AIFF ('ID3 ' in FORM). */
class RiffTag : public Id3Base {
public:
    bool aiff = false;
    uint64_t form_size = 0, chunk_at = 0, chunk_total = 0, append_at = 0;
    Bytes chunk_id = "ID3 ";

    int render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const override
    {
        out.clear();
        Bytes tag;
        if (render_group0(its, tag, e) != 0) return -1;
        Bytes chunk;
        if (!tag.empty()) {
            chunk = chunk_id + (aiff ? be(tag.size(), 4) : le(tag.size(), 4)) + tag;
            if (tag.size() & 1) chunk += '\0';
        }
        if (!id3.exists && chunk.empty()) return 0;
        uint64_t nsize = form_size - chunk_total + chunk.size();
        if (nsize > 0xFFFFFFFFull) return err_set(e, "file would exceed 4 GB");
        out.push_back(Edit{4, 4, aiff ? be(nsize, 4) : le(nsize, 4)});
        out.push_back(id3.exists ? Edit{chunk_at, chunk_total, chunk} : Edit{append_at, 0, chunk});
        return 0;
    }
};

int read_id3_at(const Source &src, uint64_t off, uint64_t limit, Id3 &t, ErrMsg *e)
{
    Bytes head;
    if (!src.read(off, 10, head) || head.compare(0, 3, "ID3") != 0) return err_set(e, "no ID3v2 header");
    bool ok = true;
    uint64_t total = 10 + (uint64_t)syncsafe_get(head, 6, &ok) + (((unsigned char)head[5] & 0x10) ? 10 : 0);
    if (!ok) return err_set(e, "ID3v2 tag: damaged size field");
    if (total > limit - off) return err_set(e, "ID3v2 tag runs past the end of its container");
    Bytes data;
    if (!src.read(off, total, data)) return err_set(e, "cannot read the ID3v2 tag");
    return parse_id3(data, t, e);
}

} // namespace

std::unique_ptr<Tag> open_mpeg(const Source &src, ErrMsg *e)
{
    auto t = std::make_unique<MpegTag>();
    Bytes head;
    if (src.read(0, 3, head) && head == "ID3") {
        if (read_id3_at(src, 0, src.size(), t->id3, e) != 0) return nullptr;
    }
    t->add_frames();
    Bytes v1;
    if (src.size() >= 128 + t->id3.total && src.read(src.size() - 128, 128, v1) && v1.compare(0, 3, "TAG") == 0) {
        t->has_v1 = true;
        t->v1_genre_at = src.size() - 1;
        t->items.push_back(Item{1, Role::Genre, v1.substr(127, 1)});
    }
    return t;
}

std::unique_ptr<Tag> open_riff(const Source &src, bool aiff, ErrMsg *e)
{
    auto t = std::make_unique<RiffTag>();
    t->aiff = aiff;
    Bytes h;
    if (!src.read(0, 12, h) || h.compare(0, 4, aiff ? "FORM" : "RIFF") != 0) {
        err_set(e, aiff ? "not an AIFF file" : "not a RIFF WAVE file");
        return nullptr;
    }
    t->form_size = aiff ? get_be(h, 4, 4) : get_le(h, 4, 4);
    if (8 + t->form_size > src.size()) {
        err_set(e, "%s size field (%llu bytes) is larger than the file: damaged or still being written",
                aiff ? "FORM" : "RIFF", (unsigned long long)t->form_size);
        return nullptr;
    }
    uint64_t end = 8 + t->form_size, pos = 12;
    while (pos + 8 <= end) {
        Bytes c;
        if (!src.read(pos, 8, c)) break;
        uint64_t size = aiff ? get_be(c, 4, 4) : get_le(c, 4, 4);
        uint64_t total = 8 + size + (size & 1);
        if (size > end - pos - 8) {
            err_set(e, "chunk '%.4s' runs past the end of the file", c.c_str());
            return nullptr;
        }
        if (!t->id3.exists && (c.compare(0, 4, "id3 ") == 0 || c.compare(0, 4, "ID3 ") == 0)) {
            if (read_id3_at(src, pos + 8, pos + 8 + size, t->id3, e) != 0) return nullptr;
            t->chunk_at = pos;
            t->chunk_total = total > end - pos ? end - pos : total;
            t->chunk_id = c.substr(0, 4);
        }
        pos += total > end - pos ? end - pos : total;
    }
    t->append_at = pos > end ? end : pos;
    t->add_frames();
    return t;
}

} // namespace rawtag
