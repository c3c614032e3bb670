/* rawtag: Vorbis comments, in FLAC's VORBIS_COMMENT block and in the comment packet of Ogg
 * Vorbis, Opus, Speex and Ogg FLAC streams.
 *
 * Each comment ("KEY=value") is an item, kept with its key's case and its place in the list;
 * the vendor string and whatever follows the list (Vorbis' framing bit, Opus padding or binary
 * data, mutagen's zero padding) are kept byte for byte. genred's GENRE fields are appended as
 * "GENRE=" (one per genre). FLAC: the metadata blocks are rewritten in place, their order kept,
 * the first PADDING block absorbing the change (a file without one gets one when its comments
 * shrink, or GROW_PADDING bytes of it when they grow). Ogg: TagLib repaginates the new packet
 * (Ogg::File::setPacket, then Ogg::File::save on a copy of the file in memory, bypassing the
 * subclasses' save() that would re-render the comment); the edits are what changed. */
#include "rawtag.h"

#include <tbytevectorstream.h>
#include <tiostream.h>

#include <oggfile.h>
#include <oggflacfile.h>
#include <opusfile.h>
#include <speexfile.h>
#include <vorbisfile.h>

#include <memory>

namespace rawtag {
namespace {

const uint64_t GROW_PADDING = 4096;

struct Vc {
    Bytes vendor;
    std::vector<Bytes> comments;
    Bytes trailing;
};

bool parse_vc(const Bytes &b, size_t off, Vc &vc)
{
    vc = Vc();
    if (b.size() < off + 8) return false;
    uint64_t n = get_le(b, off, 4);
    if (n > b.size() - off - 8) return false;
    vc.vendor = b.substr(off + 4, n);
    size_t pos = off + 4 + n;
    uint64_t count = get_le(b, pos, 4);
    pos += 4;
    if (count > (b.size() - pos) / 4) return false;
    for (uint64_t i = 0; i < count; i++) {
        if (b.size() - pos < 4) return false;
        uint64_t len = get_le(b, pos, 4);
        if (len > b.size() - pos - 4) return false;
        vc.comments.push_back(b.substr(pos + 4, len));
        pos += 4 + len;
    }
    vc.trailing = b.substr(pos);
    return true;
}

Bytes render_vc(const Vc &vc, const std::vector<Item> &items)
{
    Bytes out = le(vc.vendor.size(), 4) + vc.vendor;
    uint64_t n = 0;
    for (const Item &it : items) n += it.group == 0;
    out += le(n, 4);
    for (const Item &it : items)
        if (it.group == 0) out += le(it.raw.size(), 4) + it.raw;
    return out + vc.trailing;
}

Item comment_item(const Bytes &c)
{
    size_t eq = c.find('=');
    return Item{0, eq == Bytes::npos ? Role::Other : role_of_key(c.substr(0, eq), "GENRE"), c};
}

class XiphBase : public Tag {
public:
    Vc vc;

    std::string dialect() const override { return "xiph"; }
    bool multi_value() const override { return true; }
    std::vector<std::string> values(const Item &it) const override
    {
        size_t eq = it.raw.find('=');
        if (eq == Bytes::npos) return {};
        return {it.raw.substr(eq + 1)};
    }
    std::vector<Item> make_genre(const std::vector<std::string> &genres) const override
    {
        std::vector<Item> out;
        for (const std::string &g : genres) out.push_back(Item{0, Role::Genre, "GENRE=" + g});
        return out;
    }
    Item make_key(Role role, const std::string &value) const override
    {
        return Item{0, role, std::string(role == Role::Confidence ? KEY_CONFIDENCE : KEY_MODEL) + "=" + value};
    }
    void add_comments()
    {
        for (const Bytes &c : vc.comments) items.push_back(comment_item(c));
    }
};

/* ------------------------------------------------------------------------------------------ */

struct Block {
    int type;
    Bytes data;
};

class FlacTag : public XiphBase {
public:
    uint64_t start = 0, end = 0; /* the metadata blocks, after "fLaC" */
    std::vector<Block> blocks;
    int vc_index = -1;

    int render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const override
    {
        out.clear();
        std::vector<Block> nb = blocks;
        Block vcb{4, render_vc(vc, its)};
        if (vc_index >= 0) {
            nb[(size_t)vc_index] = vcb;
        } else {
            size_t at = nb.size();
            for (size_t i = 1; i < nb.size(); i++)
                if (nb[i].type == 1) {
                    at = i;
                    break;
                }
            nb.insert(nb.begin() + (long)at, vcb);
        }
        int pad = -1;
        uint64_t others = 0;
        for (size_t i = 0; i < nb.size(); i++) {
            if (nb[i].data.size() >= (1u << 24))
                return err_set(e, "FLAC metadata block would exceed 16 MB");
            if (nb[i].type == 1 && pad < 0) pad = (int)i;
            else others += 4 + nb[i].data.size();
        }
        const uint64_t old = end - start;
        if (pad >= 0) {
            uint64_t size = others + 4 <= old ? old - others - 4 : GROW_PADDING;
            nb[(size_t)pad].data.assign(size, '\0');
        } else if (others + 4 <= old) {
            nb.push_back(Block{1, Bytes(old - others - 4, '\0')});
        } else if (others != old) {
            nb.push_back(Block{1, Bytes(GROW_PADDING, '\0')});
        }
        Bytes region;
        for (size_t i = 0; i < nb.size(); i++) {
            region += (char)(nb[i].type | (i + 1 == nb.size() ? 0x80 : 0));
            region += be(nb[i].data.size(), 3);
            region += nb[i].data;
        }
        out.push_back(Edit{start, old, region});
        return 0;
    }
};

/* ------------------------------------------------------------------------------------------ */

/* TagLib reads the file through this, for the packet lookup; nothing can be written. */
class SourceStream : public TagLib::IOStream {
public:
    explicit SourceStream(const Source &s) : src_(s) {}
    TagLib::FileName name() const override { return ""; }
    TagLib::ByteVector readBlock(unsigned long length) override
    {
        uint64_t n = pos_ >= src_.size() ? 0 : std::min<uint64_t>(length, src_.size() - pos_);
        Bytes b;
        if (!src_.read(pos_, n, b)) return TagLib::ByteVector();
        pos_ += n;
        return TagLib::ByteVector(b.data(), (unsigned)b.size());
    }
    void writeBlock(const TagLib::ByteVector &) override {}
    void insert(const TagLib::ByteVector &, unsigned long, unsigned long) override {}
    void removeBlock(unsigned long, unsigned long) override {}
    bool readOnly() const override { return true; }
    bool isOpen() const override { return true; }
    void seek(long offset, Position p) override
    {
        long base = p == Beginning ? 0 : p == Current ? (long)pos_ : (long)src_.size();
        long to = base + offset;
        pos_ = to < 0 ? 0 : (uint64_t)to;
    }
    long tell() const override { return (long)pos_; }
    long length() override { return (long)src_.size(); }
    void truncate(long) override {}

private:
    const Source &src_;
    uint64_t pos_ = 0;
};

std::unique_ptr<TagLib::Ogg::File> ogg_file(Format f, TagLib::IOStream *s)
{
    using namespace TagLib;
    switch (f) {
    case Format::OggVorbis: return std::make_unique<Ogg::Vorbis::File>(s, false);
    case Format::OggOpus: return std::make_unique<Ogg::Opus::File>(s, false);
    case Format::OggSpeex: return std::make_unique<Ogg::Speex::File>(s, false);
    case Format::OggFlac: return std::make_unique<Ogg::FLAC::File>(s, false);
    default: return nullptr;
    }
}

class OggTag : public XiphBase {
public:
    Format format = Format::OggVorbis;
    const Source *src = nullptr;
    unsigned packet_index = 1;
    Bytes prefix; /* before the comment structure: "\x03vorbis", "OpusTags", a FLAC block header */

    int render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const override
    {
        out.clear();
        Bytes body = render_vc(vc, its);
        Bytes pre = prefix;
        if (format == Format::OggFlac) {
            if (body.size() >= (1u << 24)) return err_set(e, "FLAC metadata block would exceed 16 MB");
            put_be(pre, 1, body.size(), 3);
        }
        Bytes whole;
        if (!src->read(0, src->size(), whole)) return err_set(e, "cannot read the file");
        TagLib::ByteVectorStream mem(TagLib::ByteVector(whole.data(), (unsigned)whole.size()));
        std::unique_ptr<TagLib::Ogg::File> f = ogg_file(format, &mem);
        if (!f || !f->isOpen()) return err_set(e, "cannot parse the Ogg stream");
        Bytes packet = pre + body;
        f->setPacket(packet_index, TagLib::ByteVector(packet.data(), (unsigned)packet.size()));
        if (!f->TagLib::Ogg::File::save()) return err_set(e, "repaginating the Ogg stream failed");
        const TagLib::ByteVector &nv = *mem.data();
        Bytes now(nv.data(), nv.size());
        size_t p = 0, n = std::min(whole.size(), now.size());
        while (p < n && whole[p] == now[p]) p++;
        size_t s = 0;
        while (s < n - p && whole[whole.size() - 1 - s] == now[now.size() - 1 - s]) s++;
        if (p == whole.size() && p == now.size()) return 0;
        out.push_back(Edit{p, whole.size() - p - s, now.substr(p, now.size() - p - s)});
        return 0;
    }
};

} // namespace

std::unique_ptr<Tag> open_flac(const Source &src, ErrMsg *e)
{
    auto t = std::make_unique<FlacTag>();
    uint64_t pos = 0;
    Bytes h;
    if (src.read(0, 10, h) && h.compare(0, 3, "ID3") == 0) {
        uint64_t n = 0;
        for (int i = 6; i < 10; i++) n = (n << 7) | ((unsigned char)h[i] & 0x7F);
        pos = 10 + n + (((unsigned char)h[5] & 0x10) ? 10 : 0);
    }
    if (!src.read(pos, 4, h) || h != "fLaC") {
        err_set(e, "no FLAC stream marker where expected");
        return nullptr;
    }
    t->start = pos += 4;
    for (;;) {
        if (!src.read(pos, 4, h)) {
            err_set(e, "FLAC metadata runs past the end of the file");
            return nullptr;
        }
        Block b{(unsigned char)h[0] & 0x7F, Bytes()};
        uint64_t size = get_be(h, 1, 3);
        if (!src.read(pos + 4, size, b.data)) {
            err_set(e, "FLAC metadata runs past the end of the file");
            return nullptr;
        }
        if (b.type == 127) {
            err_set(e, "FLAC metadata block of invalid type 127");
            return nullptr;
        }
        if (b.type == 4 && t->vc_index < 0) {
            if (!parse_vc(b.data, 0, t->vc)) {
                err_set(e, "damaged FLAC VORBIS_COMMENT block");
                return nullptr;
            }
            t->vc_index = (int)t->blocks.size();
        }
        t->blocks.push_back(b);
        pos += 4 + size;
        if ((unsigned char)h[0] & 0x80) break;
    }
    t->end = pos;
    if (t->blocks.empty() || t->blocks[0].type != 0) {
        err_set(e, "FLAC stream does not start with STREAMINFO");
        return nullptr;
    }
    if (t->vc_index < 0) t->vc.vendor = "genred";
    t->add_comments();
    return t;
}

std::unique_ptr<Tag> open_ogg(Format f, const Source &src, ErrMsg *e)
{
    auto t = std::make_unique<OggTag>();
    t->format = f;
    t->src = &src;
    SourceStream in(src);
    std::unique_ptr<TagLib::Ogg::File> file = ogg_file(f, &in);
    if (!file) {
        err_set(e, "tagging this audio format is not supported");
        return nullptr;
    }
    TagLib::ByteVector p;
    if (f == Format::OggFlac) {
        for (unsigned i = 1; i < 64; i++) {
            p = file->packet(i);
            if (p.size() < 4) break;
            if ((p[0] & 0x7F) == 4) {
                t->packet_index = i;
                break;
            }
            if (p[0] & 0x80) {
                p.clear();
                break;
            }
        }
    } else {
        p = file->packet(1);
    }
    Bytes packet(p.data(), p.size());
    size_t off = 0;
    if (f == Format::OggVorbis) off = packet.compare(0, 7, "\x03vorbis") == 0 ? 7 : Bytes::npos;
    else if (f == Format::OggOpus) off = packet.compare(0, 8, "OpusTags") == 0 ? 8 : Bytes::npos;
    else if (f == Format::OggFlac) off = packet.size() >= 4 && (packet[0] & 0x7F) == 4 ? 4 : Bytes::npos;
    if (packet.empty() || off == Bytes::npos || !parse_vc(packet, off, t->vc)) {
        err_set(e, "Ogg stream without a readable comment packet");
        return nullptr;
    }
    t->prefix = packet.substr(0, off);
    t->add_comments();
    return t;
}

} // namespace rawtag
