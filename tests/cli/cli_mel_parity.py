#!/usr/bin/python3
"""`genred mel` against the numpy reference (tests/features/mel_ref.py) for every format:
music-like audio is encoded to each format; decode_dump gives the samples decode_windows
produces for it, mel_ref computes the reference dB from those same samples, and genred mel's
.npy must match within 0.01 dB per window. Also: the .npy header and shape, --png, a short
file (one padded window).
    cli_mel_parity.py GENRED SOURCE_DIR DECODE_DUMP"""
import os
import sys

import numpy as np

from clitest import Genred, check, ffmpeg, finish, make_model, music, need_tools, sh, skip, tmpdir

TOL_DB = 0.01


def main():
    genred, src, dump = sys.argv[1], sys.argv[2], sys.argv[3]
    need_tools("sox", "ffmpeg")
    sys.path.insert(0, os.path.join(src, "tests", "features"))
    try:
        import mel_ref
    except ImportError:
        skip("tests/features/mel_ref.py not there yet")
    t = tmpdir()
    g = Genred(genred)
    model = make_model(src, os.path.join(t, "seed.safetensors"))
    wav = music(os.path.join(t, "src.wav"), seconds=30)

    formats = {
        "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
        "flac": ["-c:a", "flac"],
        "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
        "opus": ["-c:a", "libopus", "-b:a", "128k"],
        "m4a": ["-c:a", "aac", "-b:a", "192k"],
        "wav": ["-c:a", "pcm_s16le"],
        "aiff": ["-c:a", "pcm_s16be"],
        "wma": ["-c:a", "wmav2", "-b:a", "192k"],
        "wv": ["-c:a", "wavpack"],
    }
    print("ape: skipped (no encoder for Monkey's Audio in Debian)")
    for ext, args in formats.items():
        f = os.path.join(t, "music." + ext)
        ffmpeg("-i", wav, *args, f)
        out = os.path.join(t, ext + ".npy")
        r = g.run("mel", "--model", model, f, "-o", out)
        if not check(r.returncode == 0, "%s: genred mel exit %d: %s" % (ext, r.returncode,
                                                                        r.stderr.decode())):
            continue
        got = np.load(out)
        raw = os.path.join(t, ext + ".f32")
        info = sh([dump, f, raw]).stdout.decode().split()
        nw, wl = int(info[0]), int(info[1])
        samples = np.fromfile(raw, dtype="<f4").reshape(nw, wl)
        check(got.dtype == np.float32, "%s: dtype %s" % (ext, got.dtype))
        if not check(got.shape == (6, 64, 173), "%s: shape %s" % (ext, got.shape)):
            continue
        diffs = []
        for w in range(nw):
            ref = mel_ref.mel_db(samples[w].astype(np.float64))
            diffs.append(float(np.max(np.abs(got[w].astype(np.float64) - ref))))
        print("%-5s max |delta| per window (dB): %s" % (ext, " ".join("%.1e" % d for d in diffs)))
        check(max(diffs) <= TOL_DB, "%s: max |delta| %.5f dB > %.2f" % (ext, max(diffs), TOL_DB))
        check(got.min() >= -80.0001 and got.max() <= 0.0001, "%s: values outside [-80, 0]" % ext)

    # npy header: version 1.0, 64-byte aligned, as numpy writes it.
    with open(os.path.join(t, "flac.npy"), "rb") as fh:
        head = fh.read(10)
    check(head[:8] == b"\x93NUMPY\x01\x00", "npy magic/version: %r" % head[:8])
    hl = head[8] | head[9] << 8
    check((10 + hl) % 64 == 0, "npy header not 64-byte aligned (%d)" % (10 + hl))

    # A 1 s track: one zero-padded window of 173 frames (seed-cnn rule); and --png.
    short = os.path.join(t, "short.flac")
    sh(["sox", "-n", "-r", "44100", "-c", "1", short, "synth", "1", "pluck", "A3"])
    png = os.path.join(t, "short.png")
    r = g.run("mel", "--model", model, short, "-o", os.path.join(t, "short.npy"), "--png", png)
    if check(r.returncode == 0, "short: exit %d %s" % (r.returncode, r.stderr.decode())):
        s = np.load(os.path.join(t, "short.npy"))
        check(s.shape == (1, 64, 173), "short: shape %s" % (s.shape,))
        raw = os.path.join(t, "short.f32")
        sh([dump, short, raw])
        x = np.fromfile(raw, dtype="<f4")
        d = float(np.max(np.abs(s[0] - mel_ref.mel_db(x.astype(np.float64)))))
        print("short max |delta| (dB): %.1e" % d)
        check(d <= TOL_DB, "short: max |delta| %.5f" % d)
        with open(png, "rb") as fh:
            check(fh.read(8) == b"\x89PNG\r\n\x1a\n", "--png did not write a PNG")

    # Usage errors.
    check(g.run("mel", short).returncode == 2, "mel without -o/--png must exit 2")
    check(g.run("mel", "--model", model, os.path.join(t, "missing.mp3"), "-o",
                os.path.join(t, "x.npy")).returncode == 1, "mel of a missing file must exit 1")
    finish()


main()
