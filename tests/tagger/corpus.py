"""corpus: real-world tag layouts made by independent writers, and a raw-level reader.

build(dir) writes one short track per layout (DESIGN.md §6, issue 19): ID3v2.2/2.3/2.4 with
the frames real libraries carry (split and joined dates, numeric and multiple genres, COMM, USLT,
SYLT, a 2 MB APIC, PRIV, GEOB, UFID, RVA2, replay-gain and MusicBrainz TXXX, CHAP/CTOC, POPM
with and without a counter, PCNT, unsynchronisation, extended headers, padding and none), ID3v1
and APEv2 beside ID3v2, FLAC (PICTURE, SEEKTABLE, APPLICATION, padding and none, an ID3v2 tag in
front), Ogg Vorbis and Opus (METADATA_BLOCK_PICTURE), MP4 (covr, lyrics, freeform atoms,
chapters), WMA, WAV (LIST INFO and id3), AIFF and WavPack. The writers are mutagen, ffmpeg,
metaflac, vorbiscomment, opusenc and wavpack, and hand-built bytes where none of them writes a
layout (ID3v2.2, unsynchronisation, extended headers); never genred or TagLib.

snapshot(path) reads a file back at the raw level, independently of genred: every tag item as
its bytes on disk (ID3v2 frames as mutagen splits them, Vorbis comments as "KEY=value" bytes, MP4
ilst atoms, APE items, ASF attributes with their types), split into the items genred owns
(the genre and GENRED_*) and all the others, plus the container structure around them (ID3v2
header and extended header, FLAC blocks, Ogg codec packets, MP4 atoms outside the tag, RIFF/IFF
chunks). audio_md5(path) is ffmpeg's md5 of the audio stream copied out (decoded where copy
fails).

Needs /usr/bin/python3 with mutagen, and ffmpeg; the other writers are used when present.
"""
import base64
import io
import os
import shutil
import struct
import subprocess

import mutagen
from mutagen import apev2, asf, flac, id3, mp4
from mutagen.id3._tags import ID3Header, read_frames
from mutagen.id3._util import BitPaddedInt, unsynch

OURS = ("GENRED_CONFIDENCE", "GENRED_MODEL")
BIG_COVER = b"\xff\xd8\xff\xe0" + bytes((i * 7 + (i >> 8)) & 0xFF for i in range(2 * 1024 * 1024))
COVER = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + b"\xff\x00\xff\xe0\xff"


def run(*cmd, **kw):
    subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.DEVNULL, **kw)


def ffmpeg(*args):
    run("ffmpeg", "-nostdin", "-v", "error", "-y", *args)


def tone(path, codec, seconds=1, rate=44100, extra=()):
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}:sample_rate={rate}",
           "-ac", "2", "-map_metadata", "-1", "-fflags", "+bitexact", *codec, *extra, path)


def syncsafe(n):
    return bytes([(n >> 21) & 127, (n >> 14) & 127, (n >> 7) & 127, n & 127])


# ---------------------------------------------------------------------------------------------
# ID3v2 building. mutagen renders the frames (so their payloads are a real writer's); layouts
# mutagen does not write (2.2, unsynchronisation, extended headers) are assembled around them.

def mutagen_frames(frames, version):
    """The raw frames (header + payload) mutagen writes for version 3 or 4, in its order."""
    bio = io.BytesIO()
    t = id3.ID3()
    for fr in frames:
        t.add(fr)
    t.save(bio, v2_version=version, padding=lambda info: 0)
    return raw_id3(bio.getvalue())["frames"]


def assemble_id3(version, frames, padding=512, unsync=False, ext=False):
    body = b"".join(frames)
    flags = 0x80 if unsync else 0
    extb = b""
    if ext:
        flags |= 0x40
        if version == 3:
            extb = struct.pack(">IHI", 6, 0, padding)  # size, flags (no CRC), padding size
        else:
            extb = syncsafe(6) + b"\x01\x00"  # size incl. itself, one flag byte, no flags
    data = extb + body + b"\0" * padding
    if unsync and version == 3:
        data = unsynch.encode(data)  # ID3v2.3 unsynchronises the whole tag
    return b"ID3" + bytes([version, 0, flags]) + syncsafe(len(data)) + data


def unsync_frame_24(frame):
    """An ID3v2.4 frame with frame-level unsynchronisation and a data length indicator."""
    fid, payload = frame[:4], frame[10:]
    enc = syncsafe(len(payload)) + unsynch.encode(payload)
    return fid + syncsafe(len(enc)) + b"\x00\x03" + enc


def frame22(fid, payload):
    return fid.encode() + struct.pack(">I", len(payload))[1:] + payload


def put_id3_front(path, tag):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(tag + data)


def id3v1(genre_byte=17):
    def field(text, n):
        return text.encode("latin-1")[:n].ljust(n, b"\0")
    return (b"TAG" + field("V1 Title", 30) + field("V1 Artist", 30) + field("V1 Album", 30)
            + b"1999" + field("v1 comment", 28) + b"\0" + bytes([5, genre_byte]))


def commercial_v23():
    """What a store-bought ID3v2.3 mp3 carries: UTF-16 text, split date, rating, art, lyrics."""
    E = 1  # UTF-16 with BOM, as v2.3 writers use
    return [id3.TIT2(encoding=E, text="Song Title"), id3.TPE1(encoding=E, text="The Artist"),
            id3.TALB(encoding=E, text="The Album"), id3.TPE2(encoding=E, text="Album Artist"),
            id3.TRCK(encoding=E, text="4/12"), id3.TPOS(encoding=E, text="1/1"),
            id3.TYER(encoding=E, text="2021"), id3.TDAT(encoding=E, text="0403"),
            id3.TIME(encoding=E, text="1130"), id3.TCON(encoding=E, text="Pop"),
            id3.TCOP(encoding=E, text="(C) 2021 Label"), id3.TPUB(encoding=E, text="Label"),
            id3.COMM(encoding=E, lang="eng", desc="", text="store comment"),
            id3.USLT(encoding=E, lang="eng", desc="", text="la la la\nla la"),
            id3.POPM(email="Windows Media Player 9 Series", rating=196),
            id3.PRIV(owner="AverageLevel", data=b"\x01\x02\x00\x00"),
            id3.PRIV(owner="PeakValue", data=b"\xff\x7f\x00\x00"),
            id3.APIC(encoding=0, mime="image/jpeg", type=3, desc="", data=BIG_COVER)]


def full_v24():
    E = 3
    return [id3.TIT2(encoding=E, text="Titel \u00e4\u00f6\u00fc"), id3.TPE1(encoding=E, text=["A", "B"]),
            id3.TALB(encoding=E, text="Album"), id3.TDRC(encoding=E, text="2019-11-02"),
            id3.TDOR(encoding=E, text="2018"), id3.TCON(encoding=E, text=["Rock", "Pop"]),
            id3.TRCK(encoding=E, text="7"),
            id3.COMM(encoding=E, lang="eng", desc="", text="c"),
            id3.COMM(encoding=E, lang="deu", desc="ID3v1 Comment", text="d"),
            id3.USLT(encoding=E, lang="eng", desc="", text="words"),
            id3.SYLT(encoding=E, lang="eng", format=2, type=1, desc="",
                     text=[("one", 0), ("two", 1500)]),
            id3.GEOB(encoding=E, mime="application/octet-stream", filename="x.bin", desc="blob",
                     data=b"\x00\xff\x00geob"),
            id3.UFID(owner="http://musicbrainz.org", data=b"5d4a0c3e-0000-4000-8000-000000000001"),
            id3.RVA2(desc="track", channel=1, gain=-3.5, peak=0.9),
            id3.TXXX(encoding=E, desc="replaygain_track_gain", text="-7.12 dB"),
            id3.TXXX(encoding=E, desc="replaygain_track_peak", text="0.988"),
            id3.TXXX(encoding=E, desc="MusicBrainz Album Id", text="11111111-2222-3333-4444-555555555555"),
            id3.TXXX(encoding=E, desc="MusicBrainz Artist Id", text="66666666-2222-3333-4444-555555555555"),
            id3.CTOC(element_id="toc", flags=3, child_element_ids=["ch0", "ch1"],
                     sub_frames=[id3.TIT2(encoding=E, text="TOC")]),
            id3.CHAP(element_id="ch0", start_time=0, end_time=500, start_offset=0xFFFFFFFF,
                     end_offset=0xFFFFFFFF, sub_frames=[id3.TIT2(encoding=E, text="Intro")]),
            id3.CHAP(element_id="ch1", start_time=500, end_time=1000, start_offset=0xFFFFFFFF,
                     end_offset=0xFFFFFFFF, sub_frames=[id3.TIT2(encoding=E, text="Outro")]),
            id3.PRIV(owner="www.example.com", data=b"private"),
            id3.POPM(email="rating@example.com", rating=255, count=42),
            id3.PCNT(count=17),
            id3.APIC(encoding=E, mime="image/png", type=3, desc="front", data=COVER),
            id3.APIC(encoding=E, mime="image/png", type=4, desc="back", data=COVER[::-1])]


def v23_variant():
    """Latin-1 text, a TRDA date and numeric genres; POPM with a counter and a PCNT."""
    return [id3.TIT2(encoding=0, text="Latin"), id3.TPE1(encoding=0, text="Artist"),
            id3.TYER(encoding=0, text="1997"), id3.TRDA(encoding=0, text="March 4th-5th"),
            id3.TCON(encoding=0, text="(17)(31)Eurobeat"), id3.TKEY(encoding=0, text="Am"),
            id3.TBPM(encoding=0, text="128"),
            id3.POPM(email="foobar", rating=128, count=3), id3.PCNT(count=9),
            id3.COMM(encoding=0, lang="eng", desc="iTunNORM", text=" 0000044E 00000373"),
            id3.WXXX(encoding=0, desc="", url="http://example.com/"),
            id3.TXXX(encoding=0, desc="MusicBrainz Album Id", text="aa-bb")]


def make_mp3(path, tag=b"", tail=b""):
    tone(path, ["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0", "-write_xing", "0"])
    if tag:
        put_id3_front(path, tag)
    if tail:
        with open(path, "ab") as f:
            f.write(tail)


def build_id3_files(d):
    out = {}
    fr23 = mutagen_frames(commercial_v23(), 3)
    p = os.path.join(d, "v23_commercial.mp3")
    make_mp3(p, assemble_id3(3, fr23, padding=1024))
    out["v23_commercial"] = p
    p = os.path.join(d, "v23_nopad_v1.mp3")
    small = [f for f in fr23 if not f.startswith(b"APIC")]
    make_mp3(p, assemble_id3(3, small, padding=0), tail=id3v1(13))
    out["v23_nopad_v1"] = p
    p = os.path.join(d, "v23_trda_numeric.mp3")
    make_mp3(p, assemble_id3(3, mutagen_frames(v23_variant(), 3), padding=64))
    out["v23_trda_numeric"] = p
    p = os.path.join(d, "v23_unsync.mp3")
    unsync_frames = small + mutagen_frames([id3.APIC(encoding=0, mime="image/png", type=3,
                                                     desc="", data=COVER)], 3)
    make_mp3(p, assemble_id3(3, unsync_frames, padding=300, unsync=True))
    out["v23_unsync"] = p
    p = os.path.join(d, "v23_exthdr.mp3")
    make_mp3(p, assemble_id3(3, small, padding=200, ext=True))
    out["v23_exthdr"] = p
    fr24 = mutagen_frames(full_v24(), 4)
    p = os.path.join(d, "v24_full.mp3")
    make_mp3(p, assemble_id3(4, fr24, padding=2048))
    out["v24_full"] = p
    p = os.path.join(d, "v24_nopad_ape.mp3")
    make_mp3(p, assemble_id3(4, fr24[:8], padding=0))
    a = apev2.APEv2()
    a["Title"], a["MyApeKey"] = "ape title", "ape value"
    a["Cover Art (Front)"] = apev2.APEValue(b"c.png\x00" + COVER, apev2.BINARY)
    a.save(p)
    with open(p, "ab") as f:
        f.write(id3v1(255))
    out["v24_nopad_ape_v1"] = p
    p = os.path.join(d, "v24_unsync_ext.mp3")
    make_mp3(p, assemble_id3(4, [unsync_frame_24(f) for f in fr24[:6]] + fr24[6:9], padding=100,
                             unsync=False, ext=True))
    out["v24_unsync_ext"] = p
    p = os.path.join(d, "v24_notcon.mp3")
    make_mp3(p, assemble_id3(4, [f for f in fr24[:9] if not f.startswith(b"TCON")], padding=10))
    out["v24_notcon"] = p
    # ID3v2.2, as iTunes wrote it: 3-character frame IDs.
    fr22 = [frame22("TT2", b"\x00Old Title"), frame22("TP1", b"\x01\xff\xfeA\x00r\x00t\x00"),
            frame22("TAL", b"\x00Old Album"), frame22("TYE", b"\x002004"),
            frame22("TCO", b"\x00(13)"), frame22("COM", b"\x00engiTunPGAP\x000"),
            frame22("PIC", b"\x00PNG\x03cover\x00" + COVER)]
    p = os.path.join(d, "v22.mp3")
    make_mp3(p, assemble_id3(2, fr22, padding=128))
    out["v22"] = p
    p = os.path.join(d, "v1_only.mp3")
    make_mp3(p, tail=id3v1(8))
    out["v1_only"] = p
    p = os.path.join(d, "untagged.mp3")
    make_mp3(p)
    out["untagged"] = p
    return out


def build_flac_files(d):
    out = {}
    p = os.path.join(d, "flac_full.flac")
    tone(p, ["-c:a", "flac"])
    f = flac.FLAC(p)
    if f.tags is None:
        f.add_tags()
    f.tags.clear()
    for k, v in (("TITLE", "T"), ("artist", "a1"), ("ARTIST", "a2"), ("Album", "Al"),
                 ("GENRE", "Jazz"), ("genre", "Fusion"), ("DATE", "2001-02-03"),
                 ("REPLAYGAIN_TRACK_GAIN", "-6.00 dB"), ("MUSICBRAINZ_TRACKID", "x-y"),
                 ("LYRICS", "line1\nline2"), ("COMMENT", "=equals= in value")):
        f.tags.append((k, v))
    for t in (3, 4):
        pic = flac.Picture()
        pic.type, pic.mime, pic.desc, pic.data = t, "image/png", f"pic{t}", COVER
        pic.width, pic.height, pic.depth = 16, 16, 24
        f.add_picture(pic)
    f.save(padding=lambda info: 4096)
    if shutil.which("metaflac"):
        run("metaflac", "--add-seekpoint=0.5s", p)
    f = flac.FLAC(p)  # metaflac adds no APPLICATION block: mutagen does
    blk = flac.MetadataBlock(b"ATST" + b"application payload")
    blk.code = 2
    f.metadata_blocks.insert(2, blk)
    f.save(padding=lambda info: 4096)
    out["flac_full"] = p
    p = os.path.join(d, "flac_nopad.flac")
    tone(p, ["-c:a", "flac"])
    f = flac.FLAC(p)
    if f.tags is None:
        f.add_tags()
    f["title"], f["album"] = "No Padding", "Al"
    f.save(padding=lambda info: 0)
    out["flac_nopad"] = p
    p = os.path.join(d, "flac_id3front.flac")
    tone(p, ["-c:a", "flac"])
    f = flac.FLAC(p)
    if f.tags is None:
        f.add_tags()
    f["title"] = "With ID3"
    f.save(padding=lambda info: 100)
    put_id3_front(p, assemble_id3(3, mutagen_frames([id3.TIT2(encoding=1, text="id3 title"),
                                                     id3.TYER(encoding=0, text="2020"),
                                                     id3.TDAT(encoding=0, text="0101")], 3),
                                  padding=50))
    out["flac_id3front"] = p
    if shutil.which("flac") and shutil.which("metaflac"):
        wav = os.path.join(d, "src.wav")
        tone(wav, ["-c:a", "pcm_s16le"])
        p = os.path.join(d, "flac_reference.flac")
        run("flac", "-s", "-f", "-o", p, wav)
        run("metaflac", "--set-tag=TITLE=ref", "--set-tag=Genre=Blues", "--set-tag=genre=Soul", p)
        os.unlink(wav)
        out["flac_reference"] = p
    return out


def build_ogg_files(d):
    out = {}
    pic = flac.Picture()
    pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "front", COVER
    mbp = base64.b64encode(pic.write()).decode("ascii")
    if shutil.which("oggenc") and shutil.which("vorbiscomment"):
        wav = os.path.join(d, "src.wav")
        tone(wav, ["-c:a", "pcm_s16le"])
        p = os.path.join(d, "vorbis.ogg")
        run("oggenc", "-Q", "-q", "1", "-o", p, wav)
        os.unlink(wav)
        run("vorbiscomment", "-w", "-t", "title=Vorbis", "-t", "Artist=Someone", "-t",
            "genre=Ambient", "-t", "GENRE=Drone", "-t", "tracknumber=2",
            "-t", f"METADATA_BLOCK_PICTURE={mbp}", p)
        out["vorbis"] = p
    p = os.path.join(d, "vorbis_ffmpeg.ogg")
    tone(p, ["-c:a", "libvorbis", "-q:a", "1"])
    f = mutagen.File(p)
    f["title"], f["comment"] = "ff", "x"
    f["metadata_block_picture"] = [base64.b64encode(
        flac.Picture(pic.write()).write()).decode("ascii")]
    f.save()
    out["vorbis_ffmpeg"] = p
    if shutil.which("opusenc"):
        wav = os.path.join(d, "src.wav")
        tone(wav, ["-c:a", "pcm_s16le"], rate=48000)
        png = os.path.join(d, "cover.png")
        with open(png, "wb") as fh:
            fh.write(COVER)
        p = os.path.join(d, "opusenc.opus")
        run("opusenc", "--quiet", "--title", "Opus", "--artist", "Op", "--genre", "Chill",
            "--comment", "lowercase=yes", "--picture", png, wav, p)
        os.unlink(wav)
        out["opusenc"] = p
    p = os.path.join(d, "opus_ffmpeg.opus")
    tone(p, ["-c:a", "libopus", "-b:a", "32k"], rate=48000)
    f = mutagen.File(p)
    f["title"], f["ARTIST"] = "Opus ff", "A"
    f["metadata_block_picture"] = [mbp]
    f.save()
    out["opus_ffmpeg"] = p
    return out


def build_mp4_files(d):
    out = {}
    meta = os.path.join(d, "chapters.txt")
    with open(meta, "w") as fh:
        fh.write(";FFMETADATA1\ntitle=From ffmpeg\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\n"
                 "title=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Two\n")
    for name, codec, extra in (("m4a_aac", ["-c:a", "aac", "-b:a", "64k"], []),
                               ("m4a_alac_faststart", ["-c:a", "alac"], ["-movflags", "+faststart"])):
        p = os.path.join(d, name + ".m4a")
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=1", "-i", meta, "-map", "0:a",
               "-map_metadata", "1", "-map_chapters", "1", "-ac", "2", *codec, *extra, p)
        f = mp4.MP4(p)
        f["\xa9nam"], f["\xa9ART"], f["\xa9lyr"] = "Title", "Artist", "Some lyrics\nmore"
        f["\xa9day"], f["trkn"], f["disk"], f["tmpo"] = "2011-05-06", [(3, 9)], [(1, 2)], [120]
        f["cpil"] = False
        f["\xa9gen"] = "Jazz"
        f["----:com.apple.iTunes:iTunSMPB"] = [mp4.MP4FreeForm(b" 00000000 00000840 0000")]
        f["----:com.apple.iTunes:MusicBrainz Track Id"] = [mp4.MP4FreeForm(b"mbid")]
        f["----:org.example:Custom"] = [mp4.MP4FreeForm(b"\x00\x01", dataformat=0)]
        f["covr"] = [mp4.MP4Cover(COVER, imageformat=mp4.MP4Cover.FORMAT_PNG),
                     mp4.MP4Cover(BIG_COVER[:300000], imageformat=mp4.MP4Cover.FORMAT_JPEG)]
        f.save()
        out[name] = p
    os.unlink(meta)
    return out


def build_other_files(d):
    out = {}
    p = os.path.join(d, "wma.wma")
    tone(p, ["-c:a", "wmav2", "-b:a", "64k"])
    f = asf.ASF(p)
    f["Title"], f["Author"] = "Wma Title", "Wma Artist"
    f["WM/AlbumTitle"], f["WM/Genre"] = "Wma Album", ["Classical", "Baroque"]
    f["WM/TrackNumber"] = [asf.ASFDWordAttribute(5)]
    f["WM/Year"], f["MusicBrainz/Track Id"] = "1990", "mb"
    f["WM/IsCompilation"] = [asf.ASFBoolAttribute(True)]
    f["Big/QWord"] = [asf.ASFQWordAttribute(2 ** 40)]
    f["WM/Picture"] = [asf.ASFByteArrayAttribute(b"\x03" + struct.pack("<I", len(COVER))
                                                 + "image/png\0".encode("utf-16-le")
                                                 + "\0".encode("utf-16-le") + COVER)]
    f.save()
    out["wma"] = p
    p = os.path.join(d, "wav_info_id3.wav")
    tone(p, ["-c:a", "pcm_s16le", "-metadata", "title=Info Title", "-metadata", "artist=Info Artist",
             "-metadata", "genre=Info Genre"])
    w = mutagen.File(p)
    w.add_tags()
    for fr in commercial_v23()[:10]:
        w.tags.add(fr)
    w.save(v2_version=3)
    out["wav_info_id3"] = p
    p = os.path.join(d, "aiff_id3.aiff")
    tone(p, ["-c:a", "pcm_s16be", "-write_id3v2", "0", "-metadata", "title=aiff name"])
    w = mutagen.File(p)
    w.add_tags()
    for fr in full_v24()[:12]:
        w.tags.add(fr)
    w.save(v2_version=4)
    out["aiff_id3"] = p
    p = os.path.join(d, "wavpack.wv")
    if shutil.which("wavpack"):
        wav = os.path.join(d, "src.wav")
        tone(wav, ["-c:a", "pcm_s16le"])
        run("wavpack", "-q", "-y", "-w", "Title=WV title", "-w", "Genre=Noise", wav, "-o", p)
        os.unlink(wav)
    else:
        tone(p, ["-c:a", "wavpack"])
    a = apev2.APEv2(p) if apev2_present(p) else apev2.APEv2()
    a["Artist"], a["Year"] = "WV artist", "1988"
    a["Cover Art (Front)"] = apev2.APEValue(b"front.png\x00" + COVER, apev2.BINARY)
    a["Link"] = apev2.APEValue("http://example.com", apev2.EXTERNAL)
    a.save(p)
    out["wavpack"] = p
    return out


def apev2_present(path):
    try:
        apev2.APEv2(path)
        return True
    except apev2.APENoHeaderError:
        return False


def build(d):
    """Writes the corpus into d; returns {layout name: path}."""
    out = {}
    for b in (build_id3_files, build_flac_files, build_ogg_files, build_mp4_files, build_other_files):
        out.update(b(d))
    return out


# ---------------------------------------------------------------------------------------------
# Reading back at the raw level. A snapshot is a dict:
#   kind: the container; items: [(key, raw bytes)] of every tag item genred does not own, in
#   file order; owned: the same for genred's items; struct: everything around the tag that must
#   not change (headers, other blocks/chunks/atoms), as comparable values.

def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def id3_payload(frame, version):
    """A frame's payload with v2.4 frame-level unsynchronisation and length indicator undone."""
    if version == 2:
        return frame[6:]
    data = frame[10:]
    if version == 4:
        flags = frame[9]
        if flags & 0x01:
            data = data[4:]
        if flags & 0x02:
            data = unsynch.decode(data)
    return data


def txxx_desc(payload):
    enc, rest = payload[0], payload[1:]
    if enc in (1, 2):
        for i in range(0, len(rest) - 1, 2):
            if rest[i:i + 2] == b"\0\0":
                return rest[:i].decode("utf-16" if enc == 1 else "utf-16-be", "replace")
        return rest.decode("utf-16", "replace")
    return rest.split(b"\0")[0].decode("latin-1" if enc == 0 else "utf-8", "replace")


def id3_owned(frame, version):
    fid = frame[:3] if version == 2 else frame[:4]
    if fid in (b"TCON", b"TCO"):
        return True
    if fid in (b"TXXX", b"TXX"):
        return txxx_desc(id3_payload(frame, version)).upper() in OURS
    return False


def raw_id3(data):
    """Splits an ID3v2 tag (bytes starting with 'ID3') with mutagen's own parser."""
    bio = io.BytesIO(data)
    hdr = ID3Header(bio)
    body = data[bio.tell():hdr.size]
    _, frames, _ = read_frames(hdr, body, {})  # no known frames: every frame comes back raw
    return {"version": hdr.version, "flags": hdr._flags & 0xE0, "ext": getattr(hdr, "_extdata", b""),
            "frames": frames}


def id3_snapshot(data, what="id3"):
    r = raw_id3(data)
    v = r["version"][1]
    items = [(f"{what}:{f[:3 if v == 2 else 4].decode('latin-1')}", f) for f in r["frames"]
             if not id3_owned(f, v)]
    owned = [(f"{what}:{f[:3 if v == 2 else 4].decode('latin-1')}", f) for f in r["frames"]
             if id3_owned(f, v)]
    ext = r["ext"]
    if v == 3 and len(ext) >= 6:
        ext = ext[:2]  # the padding size field follows the padding, which may change
    return items, owned, {f"{what}.version": r["version"], f"{what}.flags": r["flags"],
                          f"{what}.ext": ext}


def id3_size(data):
    return 10 + BitPaddedInt(data[6:10]) + (10 if data[5] & 0x10 else 0)


def mp3_snapshot(path):
    data = file_bytes(path)
    items, owned, st = [], [], {}
    if data.startswith(b"ID3"):
        items, owned, st = id3_snapshot(data)
    st["id3v2"] = data.startswith(b"ID3")
    end = len(data)
    if data[-128:-125] == b"TAG":
        items.append(("id3v1", data[-128:-1]))
        owned.append(("id3v1.genre", data[-1:]))
        end -= 128
    try:
        a = apev2.APEv2(path)
        items += [(f"ape:{k}", (v.kind, bytes(v.value) if v.kind == apev2.BINARY else str(v)))
                  for k, v in a.items()]
    except apev2.APENoHeaderError:
        pass
    return items, owned, st


def flac_blocks(data):
    pos = id3_size(data) if data.startswith(b"ID3") else 0
    assert data[pos:pos + 4] == b"fLaC", "not a FLAC stream"
    pos += 4
    blocks = []
    while True:
        hdr = data[pos]
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        blocks.append((hdr & 0x7F, data[pos + 4:pos + 4 + size]))
        pos += 4 + size
        if hdr & 0x80:
            return blocks, pos


def vorbis_comments(packet):
    """(vendor, [raw comment bytes], trailing bytes) of a Vorbis comment structure."""
    n = struct.unpack("<I", packet[:4])[0]
    vendor = packet[4:4 + n]
    pos = 4 + n
    count = struct.unpack("<I", packet[pos:pos + 4])[0]
    pos += 4
    comments = []
    for _ in range(count):
        ln = struct.unpack("<I", packet[pos:pos + 4])[0]
        comments.append(packet[pos + 4:pos + 4 + ln])
        pos += 4 + ln
    return vendor, comments, packet[pos:]


def xiph_split(comments):
    items, owned = [], []
    for c in comments:
        key = c.split(b"=", 1)[0].decode("ascii", "replace").upper()
        (owned if key == "GENRE" or key in OURS else items).append((f"vc:{key}", c))
    return items, owned


def flac_snapshot(path):
    data = file_bytes(path)
    blocks, _ = flac_blocks(data)
    st = {"id3_front": data[:id3_size(data)] if data.startswith(b"ID3") else b""}
    vc = [b for t, b in blocks if t == 4]
    items, owned = [], []
    if vc:
        vendor, comments, _ = vorbis_comments(vc[0])
        st["vendor"] = vendor
        items, owned = xiph_split(comments)
    st["vc_blocks"] = len(vc)
    st["blocks"] = [(t, b) for t, b in blocks if t not in (1, 4)]  # all but padding and comments
    return items, owned, st


def ogg_packets(path, count):
    from mutagen.ogg import OggPage
    pages = []
    with open(path, "rb") as f:
        while True:
            try:
                pg = OggPage(f)
            except EOFError:
                break
            if pages and pg.serial != pages[0].serial:
                continue
            pages.append(pg)
            if len(OggPage.to_packets(pages, strict=False)) >= count + 1 or not pg.packets:
                pass
            if sum(len(p.packets) for p in pages) > count + 2:
                break
    return OggPage.to_packets(pages, strict=False)[:count]


def ogg_snapshot(path):
    pkts = ogg_packets(path, 3)
    st = {"id": pkts[0]}
    c = pkts[1]
    if c.startswith(b"\x03vorbis"):
        vendor, comments, trail = vorbis_comments(c[7:])
        st["setup"] = pkts[2]
    else:
        assert c.startswith(b"OpusTags"), c[:8]
        vendor, comments, trail = vorbis_comments(c[8:])
    st["vendor"], st["trailing"] = vendor, trail
    items, owned = xiph_split(comments)
    return items, owned, st


def mp4_atoms(path):
    from mutagen.mp4._atom import Atoms
    with open(path, "rb") as f:
        return Atoms(f), file_bytes(path)


def mp4_freeform_name(raw):
    """'----:mean:name' of a freeform ilst atom."""
    pos, mean, name = 8, "", ""
    while pos + 8 <= len(raw):
        ln, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        if kind == b"mean":
            mean = raw[pos + 12:pos + ln].decode("utf-8", "replace")
        elif kind == b"name":
            name = raw[pos + 12:pos + ln].decode("utf-8", "replace")
        pos += max(ln, 8)
    return f"----:{mean}:{name}"


def mp4_snapshot(path):
    atoms, data = mp4_atoms(path)
    items, owned, leaves = [], [], []

    def walk(atom, trail):
        name = atom.name.decode("latin-1")
        here = trail + "/" + name
        if atom.name == b"ilst":
            for ch in atom.children:
                raw = data[ch.offset:ch.offset + ch.length]
                key = ch.name.decode("latin-1")
                if ch.name == b"----":
                    key = mp4_freeform_name(raw)
                is_ours = key in ("\xa9gen", "gnre") or (
                    key.startswith("----:com.apple.iTunes:") and key.split(":", 2)[2].upper() in OURS)
                (owned if is_ours else items).append((f"mp4:{key}", raw))
            return
        if atom.children is None:
            if atom.name not in (b"free", b"skip", b"stco", b"co64", b"mdat"):
                leaves.append((here, data[atom.offset + 8:atom.offset + atom.length]))
            return
        if atom.name == b"meta":
            leaves.append((here + "[hdr]", data[atom.offset + 8:atom.offset + 12]))
        for ch in atom.children:
            walk(ch, here)

    for a in atoms.atoms:
        walk(a, "")
    return items, owned, {"atoms": leaves, "chapters": ffprobe_chapters(path)}


def ffprobe_chapters(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-of", "compact", path],
                       capture_output=True, text=True, timeout=60)
    return r.stdout


def asf_snapshot(path):
    f = asf.ASF(path)
    items, owned = [], []
    for k, v in list(f.tags):  # (name, value) pairs in file order
        rec = (f"asf:{k}", (type(v).__name__, bytes(v.value) if isinstance(v.value, bytes) else v.value,
                            getattr(v, "language", None), getattr(v, "stream", None)))
        (owned if k == "WM/Genre" or k.upper() in OURS else items).append(rec)
    return items, owned, {}


def chunks(data, big_endian, start, end):
    out, pos = [], start
    while pos + 8 <= end:
        cid = data[pos:pos + 4]
        size = struct.unpack(">I" if big_endian else "<I", data[pos + 4:pos + 8])[0]
        out.append((cid, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def riff_snapshot(path):
    data = file_bytes(path)
    big = data[:4] == b"FORM"
    items, owned, st = [], [], {"form": data[8:12]}
    other = []
    for cid, body in chunks(data, big, 12, len(data)):
        if cid in (b"id3 ", b"ID3 "):
            i, o, s = id3_snapshot(body)
            items += i
            owned += o
            st.update(s)
            st["id3_chunk"] = cid
        elif cid == b"SSND" or cid == b"data":
            continue  # the audio md5 covers it
        elif cid == b"COMM":
            other.append((cid, body))
        else:
            other.append((cid, body))
    st["chunks"] = other
    return items, owned, st


def ape_snapshot(path):
    items, owned = [], []
    try:
        a = apev2.APEv2(path)
    except apev2.APENoHeaderError:
        return items, owned, {}
    for k, v in a.items():
        rec = (f"ape:{k}", (v.kind, bytes(v.value) if v.kind == apev2.BINARY else str(v)))
        (owned if k.upper() == "GENRE" or k.upper() in OURS else items).append(rec)
    return items, owned, {}


def snapshot(path):
    f = mutagen.File(path)
    name = type(f).__name__ if f is not None else None
    if name in ("MP3", "EasyMP3"):
        kind, (items, owned, st) = "mp3", mp3_snapshot(path)
    elif name == "FLAC":
        kind, (items, owned, st) = "flac", flac_snapshot(path)
    elif name in ("OggVorbis", "OggOpus"):
        kind, (items, owned, st) = name, ogg_snapshot(path)
    elif name == "MP4":
        kind, (items, owned, st) = "mp4", mp4_snapshot(path)
    elif name == "ASF":
        kind, (items, owned, st) = "asf", asf_snapshot(path)
    elif name in ("WAVE", "AIFF"):
        kind, (items, owned, st) = name, riff_snapshot(path)
    elif name == "WavPack":
        kind, (items, owned, st) = "wavpack", ape_snapshot(path)
    else:
        raise ValueError(f"{path}: no snapshot for {name}")
    return {"kind": kind, "items": items, "owned": owned, "struct": st}


def audio_md5_many(paths):
    """{path: audio_md5(path)} from one ffmpeg run (each ffmpeg start costs a quarter second)."""
    import tempfile
    if not paths:
        return {}
    with tempfile.TemporaryDirectory(prefix="genred-md5-") as d:
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        for p in paths:
            cmd += ["-i", p]
        for i in range(len(paths)):
            cmd += ["-map", f"{i}:a", "-c", "copy", "-f", "md5", os.path.join(d, f"{i}.md5")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            out = {}
            for i, p in enumerate(paths):
                with open(os.path.join(d, f"{i}.md5")) as f:
                    out[p] = f.read().strip()
            return out
    return {p: audio_md5(p) for p in paths}


def audio_md5(path):
    for extra in (["-c", "copy"], []):
        r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a", *extra,
                            "-f", "md5", "-"], capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and r.stdout.startswith("MD5="):
            return r.stdout.strip()
    return None


def short(v, n=60):
    r = repr(v)
    return r if len(r) <= n else r[:n] + f"...({len(r)} chars)"


def diff(before, after, with_owned=False):
    """Human-readable differences (empty when equal) between two snapshots."""
    out = []
    if before["kind"] != after["kind"]:
        return [f"container {before['kind']} -> {after['kind']}"]
    a_items, b_items = before["items"], after["items"]
    if with_owned:
        a_items, b_items = a_items + before["owned"], b_items + after["owned"]
    if a_items != b_items:
        ka, kb = [k for k, _ in a_items], [k for k, _ in b_items]
        if sorted(a_items, key=repr) == sorted(b_items, key=repr):
            out.append(f"items reordered: {ka} -> {kb}")
        else:
            for x in a_items:
                if x not in b_items:
                    same_key = [v for k, v in b_items if k == x[0]]
                    out.append(f"{x[0]} changed or lost: {short(x[1])} -> "
                               f"{short(same_key[0]) if same_key else 'gone'}")
            for x in b_items:
                if x not in a_items and not any(k == x[0] for k, _ in a_items):
                    out.append(f"{x[0]} appeared: {short(x[1])}")
    for k in sorted(set(before["struct"]) | set(after["struct"])):
        va, vb = before["struct"].get(k), after["struct"].get(k)
        if va != vb:
            if isinstance(va, list) and isinstance(vb, list):
                gone = [x for x in va if x not in vb]
                new = [x for x in vb if x not in va]
                out.append(f"{k}: lost {short(gone, 120)}, gained {short(new, 120)}"
                           if gone or new else f"{k}: reordered")
            else:
                out.append(f"{k}: {short(va)} -> {short(vb)}")
    return out
