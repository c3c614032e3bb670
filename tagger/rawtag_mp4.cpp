/* rawtag: MP4 (m4a, m4b, mp4) items: the children of moov/udta/meta/ilst.
 *
 * Each ilst child atom is an item, kept byte for byte and in its place. genred's items are
 * "\xa9gen" (one data atom per genre; a numeric "gnre" atom counts as genre too and goes when
 * genred writes) and the freeform atoms ----:com.apple.iTunes:GENRED_*. Only the moov atom is
 * rewritten: a "free" atom right after ilst absorbs a change in size; otherwise moov grows or
 * shrinks (a growing one gets GROW_PADDING bytes of "free" after ilst for the next time), the
 * sizes of its ancestors follow, and when media data lies after moov every chunk offset
 * (stco/co64) that points past it moves by the same amount. Fragmented files (moof) whose moov
 * would change size are refused: their fragment offsets would need rewriting too. */
#include "rawtag.h"

#include <id3v1genres.h>
#include <tstring.h>

namespace rawtag {
namespace {

const uint64_t GROW_PADDING = 1024;
const char ITUNES[] = "com.apple.iTunes";

struct Atom {
    Bytes type;
    uint64_t off = 0, hdr = 8, total = 0; /* offset within its buffer, header and total size */
};

/* The child atoms in b[start, end); false when one runs past end. */
bool children(const Bytes &b, uint64_t start, uint64_t end, std::vector<Atom> &out)
{
    out.clear();
    uint64_t pos = start;
    while (pos + 8 <= end) {
        Atom a;
        a.off = pos;
        a.type = b.substr(pos + 4, 4);
        a.total = get_be(b, pos, 4);
        if (a.total == 1) {
            if (pos + 16 > end) return false;
            a.total = (uint64_t)get_be(b, pos + 8, 4) << 32 | get_be(b, pos + 12, 4);
            a.hdr = 16;
        } else if (a.total == 0) {
            a.total = end - pos;
        }
        if (a.total < a.hdr || a.total > end - pos) return false;
        out.push_back(a);
        pos += a.total;
    }
    return pos == end || end - pos < 8;
}

const Atom *find(const std::vector<Atom> &v, const char *type)
{
    for (const Atom &a : v)
        if (a.type == type) return &a;
    return nullptr;
}

/* meta is a full box (4 bytes of version and flags before its children), except in some
 * QuickTime files where its first child follows the header at once. */
uint64_t meta_skip(const Bytes &b, const Atom &meta)
{
    if (meta.total >= meta.hdr + 8 && b.compare(meta.off + meta.hdr + 4, 4, "hdlr") == 0) return 0;
    return 4;
}

Bytes atom(const char *type, const Bytes &payload)
{
    return be(8 + payload.size(), 4) + Bytes(type, 4) + payload;
}

Bytes data_atom(uint32_t type, const Bytes &value) { return atom("data", be(type, 4) + be(0, 4) + value); }

/* mean/name of a freeform ilst child. */
void freeform_name(const Bytes &raw, std::string &mean, std::string &name)
{
    std::vector<Atom> ch;
    children(raw, 8, raw.size(), ch);
    for (const Atom &a : ch) {
        if (a.total < a.hdr + 4) continue;
        Bytes v = raw.substr(a.off + a.hdr + 4, a.total - a.hdr - 4);
        if (a.type == "mean") mean = v;
        else if (a.type == "name") name = v;
    }
}

class Mp4Tag : public Tag {
public:
    Bytes moov;                    /* the whole moov atom */
    uint64_t moov_at = 0, file_size = 0;
    bool fragmented = false;
    /* Offsets within moov of the path to ilst, or npos where it is missing. */
    uint64_t udta = Bytes::npos, meta = Bytes::npos, ilst = Bytes::npos;

    std::string dialect() const override { return "mp4"; }
    bool multi_value() const override { return true; }

    std::vector<std::string> values(const Item &it) const override
    {
        std::vector<std::string> out;
        std::vector<Atom> ch;
        children(it.raw, 8, it.raw.size(), ch);
        bool gnre = it.raw.compare(4, 4, "gnre") == 0;
        for (const Atom &a : ch) {
            if (a.type != "data" || a.total < a.hdr + 8) continue;
            uint32_t type = get_be(it.raw, a.off + a.hdr, 4) & 0xFFFFFF;
            Bytes v = it.raw.substr(a.off + a.hdr + 8, a.total - a.hdr - 8);
            if (gnre) {
                if (v.size() >= 2) {
                    int n = (int)get_be(v, 0, 2) - 1;
                    TagLib::String g = TagLib::ID3v1::genre(n);
                    if (!g.isEmpty()) out.push_back(g.to8Bit(true));
                }
            } else if (type == 1) {
                out.push_back(v);
            } else if (type == 2) {
                out.push_back(utf16_to_utf8(v, true));
            }
        }
        return out;
    }
    std::vector<Item> make_genre(const std::vector<std::string> &genres) const override
    {
        Bytes payload;
        for (const std::string &g : genres) payload += data_atom(1, g);
        return {Item{0, Role::Genre, atom("\xa9gen", payload)}};
    }
    Item make_key(Role role, const std::string &value) const override
    {
        const char *key = role == Role::Confidence ? KEY_CONFIDENCE : KEY_MODEL;
        Bytes payload = atom("mean", be(0, 4) + ITUNES) + atom("name", be(0, 4) + key) + data_atom(1, value);
        return Item{0, role, atom("----", payload)};
    }

    int render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const override;

    Role role_of(const Bytes &raw) const
    {
        Bytes type = raw.substr(4, 4);
        if (type == "\xa9gen" || type == "gnre") return Role::Genre;
        if (type != "----") return Role::Other;
        std::string mean, name;
        freeform_name(raw, mean, name);
        return mean == ITUNES ? role_of_key(name, "\x01") : Role::Other;
    }
};

/* Adds d to the size field of the atom at off in b. */
bool grow_size(Bytes &b, uint64_t off, int64_t d)
{
    uint64_t size = get_be(b, off, 4);
    if (size == 1) {
        uint64_t big = (uint64_t)get_be(b, off + 8, 4) << 32 | get_be(b, off + 12, 4);
        put_be(b, off + 8, big + (uint64_t)d, 8);
        return true;
    }
    if (size == 0) return true; /* to the end of its container */
    uint64_t n = size + (uint64_t)d;
    if (n > 0xFFFFFFFFull) return false;
    put_be(b, off, n, 4);
    return true;
}

/* Moves every chunk offset at or past `from` by d, in every stco/co64 of moov m. */
bool shift_chunk_offsets(Bytes &m, uint64_t start, uint64_t end, uint64_t from, int64_t d, ErrMsg *e)
{
    std::vector<Atom> ch;
    if (!children(m, start, end, ch)) return err_set(e, "damaged MP4 atom tree") == 0;
    for (const Atom &a : ch) {
        uint64_t body = a.off + a.hdr;
        if (a.type == "trak" || a.type == "mdia" || a.type == "minf" || a.type == "stbl") {
            if (!shift_chunk_offsets(m, body, a.off + a.total, from, d, e)) return false;
        } else if (a.type == "stco" || a.type == "co64") {
            int w = a.type == "stco" ? 4 : 8;
            if (a.total < a.hdr + 8) continue;
            uint64_t n = get_be(m, body + 4, 4);
            if (n > (a.total - a.hdr - 8) / (uint64_t)w) return err_set(e, "damaged MP4 chunk offset table") == 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t at = body + 8 + i * (uint64_t)w;
                uint64_t v = w == 4 ? get_be(m, at, 4) : (uint64_t)get_be(m, at, 4) << 32 | get_be(m, at + 4, 4);
                if (v < from) continue;
                v += (uint64_t)d;
                if (w == 4 && v > 0xFFFFFFFFull)
                    return err_set(e, "MP4 chunk offsets would exceed 4 GB (stco)") == 0;
                put_be(m, at, v, w);
            }
        }
    }
    return true;
}

int Mp4Tag::render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const
{
    out.clear();
    Bytes payload;
    for (const Item &it : its) payload += it.raw;
    Bytes m = moov;
    std::vector<uint64_t> ancestors{0}; /* atoms whose size grows with the splice */
    uint64_t at, old_len;
    Bytes repl;
    Bytes new_ilst = atom("ilst", payload);
    if (ilst != Bytes::npos) {
        std::vector<Atom> mch;
        Atom ma;
        ma.off = meta;
        ma.total = get_be(m, meta, 4);
        children(m, meta + 8 + meta_skip(m, ma), meta + ma.total, mch);
        const Atom *il = nullptr, *next = nullptr;
        for (size_t i = 0; i < mch.size(); i++)
            if (mch[i].off == ilst) {
                il = &mch[i];
                if (i + 1 < mch.size() && (mch[i + 1].type == "free" || mch[i + 1].type == "skip"))
                    next = &mch[i + 1];
            }
        if (!il) return err_set(e, "damaged MP4 atom tree");
        int64_t d = (int64_t)new_ilst.size() - (int64_t)il->total;
        at = ilst;
        old_len = il->total;
        repl = new_ilst;
        if (next && next->hdr == 8 && ((int64_t)next->total - d == 0 || (int64_t)next->total - d >= 8)) {
            old_len += next->total;
            uint64_t f = (uint64_t)((int64_t)next->total - d);
            if (f) repl += atom("free", Bytes(f - 8, '\0'));
        } else if (d < 0 && -d >= 8) {
            repl += atom("free", Bytes((size_t)(-d - 8), '\0'));
        } else if (d > 0) {
            repl += atom("free", Bytes(GROW_PADDING - 8, '\0'));
        }
        ancestors.push_back(udta);
        ancestors.push_back(meta);
    } else {
        Bytes hdlr = atom("hdlr", be(0, 4) + be(0, 4) + "mdirappl" + Bytes(9, '\0'));
        Bytes body = new_ilst + atom("free", Bytes(GROW_PADDING - 8, '\0'));
        if (meta != Bytes::npos) {
            at = meta + get_be(m, meta, 4);
            ancestors.push_back(udta);
            ancestors.push_back(meta);
            repl = body;
        } else if (udta != Bytes::npos) {
            at = udta + get_be(m, udta, 4);
            ancestors.push_back(udta);
            repl = atom("meta", be(0, 4) + hdlr + body);
        } else {
            at = m.size();
            repl = atom("udta", atom("meta", be(0, 4) + hdlr + body));
        }
        old_len = 0;
    }
    int64_t d = (int64_t)repl.size() - (int64_t)old_len;
    for (uint64_t a : ancestors)
        if (!grow_size(m, a, d)) return err_set(e, "MP4 atom would exceed 4 GB");
    m.replace(at, old_len, repl);
    if (d != 0 && moov_at + moov.size() < file_size) {
        if (fragmented) return err_set(e, "fragmented MP4 whose moov must change size: not supported");
        uint64_t hdr = get_be(m, 0, 4) == 1 ? 16 : 8;
        if (!shift_chunk_offsets(m, hdr, m.size(), moov_at + moov.size(), d, e)) return -1;
    }
    out.push_back(Edit{moov_at, moov.size(), m});
    return 0;
}

} // namespace

std::unique_ptr<Tag> open_mp4(const Source &src, ErrMsg *e)
{
    auto t = std::make_unique<Mp4Tag>();
    t->file_size = src.size();
    uint64_t pos = 0, moov_total = 0;
    bool have = false;
    while (pos + 8 <= src.size()) {
        Bytes h;
        if (!src.read(pos, 8, h)) break;
        uint64_t total = get_be(h, 0, 4);
        if (total == 1) {
            Bytes x;
            if (!src.read(pos + 8, 8, x)) break;
            total = (uint64_t)get_be(x, 0, 4) << 32 | get_be(x, 4, 4);
        } else if (total == 0) {
            total = src.size() - pos;
        }
        if (total < 8 || total > src.size() - pos) {
            err_set(e, "MP4 atom '%.4s' runs past the end of the file", h.c_str() + 4);
            return nullptr;
        }
        if (h.compare(4, 4, "moov") == 0 && !have) {
            have = true;
            t->moov_at = pos;
            moov_total = total;
        } else if (h.compare(4, 4, "moof") == 0) {
            t->fragmented = true;
        }
        pos += total;
    }
    if (!have) {
        err_set(e, "MP4 file without a moov atom");
        return nullptr;
    }
    if (moov_total > (256u << 20)) {
        err_set(e, "MP4 moov atom larger than 256 MB");
        return nullptr;
    }
    if (!src.read(t->moov_at, moov_total, t->moov)) {
        err_set(e, "cannot read the MP4 moov atom");
        return nullptr;
    }
    const Bytes &m = t->moov;
    uint64_t mh = get_be(m, 0, 4) == 1 ? 16 : 8;
    std::vector<Atom> ch;
    if (!children(m, mh, m.size(), ch)) {
        err_set(e, "damaged MP4 atom tree");
        return nullptr;
    }
    if (const Atom *up = find(ch, "udta")) {
        const Atom u0 = *up, *u = &u0; /* ch is reused below */
        t->udta = u->off;
        if (!children(m, u->off + u->hdr, u->off + u->total, ch)) {
            err_set(e, "damaged MP4 atom tree");
            return nullptr;
        }
        if (u->hdr != 8) {
            err_set(e, "MP4 udta atom with a 64-bit size: not supported");
            return nullptr;
        }
        if (const Atom *mp = find(ch, "meta")) {
            const Atom me0 = *mp, *me = &me0;
            t->meta = me->off;
            if (!children(m, me->off + me->hdr + meta_skip(m, me0), me->off + me->total, ch) || me->hdr != 8) {
                err_set(e, "damaged MP4 meta atom");
                return nullptr;
            }
            if (const Atom *ip = find(ch, "ilst")) {
                const Atom il0 = *ip, *il = &il0;
                if (il->hdr != 8 || !children(m, il->off + 8, il->off + il->total, ch)) {
                    err_set(e, "damaged MP4 ilst atom");
                    return nullptr;
                }
                t->ilst = il->off;
                for (const Atom &a : ch) {
                    Bytes raw = m.substr(a.off, a.total);
                    if (a.hdr != 8) {
                        err_set(e, "MP4 tag item with a 64-bit size: not supported");
                        return nullptr;
                    }
                    t->items.push_back(Item{0, t->role_of(raw), raw});
                }
            }
        }
    }
    return t;
}

} // namespace rawtag
