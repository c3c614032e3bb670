#!/usr/bin/python3
"""Driver for the decode tests: makes audio files with ffmpeg/sox in a temp dir, runs
test_decode on them and checks what it returns. One group of checks per ctest test:
    run_tests.py TEST_DECODE_BINARY GROUP
Exit 0 pass, 1 fail, 77 skip (with the reason printed)."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

SR = 22050
# Windows cut after a seek against the same slice of a full decode: the codecs' output after
# a seek is bit-identical once their preroll is discarded, and the resampler restarts at a
# sample where input and output grids meet, far enough back that its transient is gone.
SEEK_TOL = 1e-4

BIN = None
TMP = None
failures = []
FULL_CACHE = {}


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def sh(args, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (args[0], r.stderr.decode()[-500:]))
    return r


def ffmpeg(*args):
    sh(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + list(args))


def path(name):
    return os.path.join(TMP, name)


def signal_src(seconds, rate=44100, channels=2):
    """A lavfi source whose every sample differs from its neighbours' (a chirp with a bit of
    noise), so a window off by one sample cannot pass for the right one."""
    ch = []
    for c in range(channels):
        f0 = 110 * (c + 1)
        ch.append("0.35*sin(2*PI*(%d*t+%f*t*t))*(0.6+0.4*sin(2*PI*0.7*t))+0.05*(random(%d)-0.5)"
                  % (f0, 2500.0 / max(seconds, 1) / 2, c))
    return ["-f", "lavfi", "-i",
            "aevalsrc=%s:s=%d:d=%s" % ("|".join(ch), rate, seconds)]


def make(name, seconds, codec_args, rate=44100, channels=2, extra_in=None):
    p = path(name)
    ffmpeg(*signal_src(seconds, rate, channels), *(extra_in or []), *codec_args, p)
    return p


def run(args):
    r = subprocess.run([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    for line in r.stdout.decode(errors="replace").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    if r.stderr:
        out["stderr"] = r.stderr.decode(errors="replace")
    return r.returncode, out


def decode_all(p, max_samples=0):
    raw = p + ".all.f32"
    rc, out = run(["all", p, raw, str(max_samples)])
    if rc != 0:
        raise RuntimeError("decode_all %s: %s" % (p, out))
    x = np.fromfile(raw, dtype=np.float32)
    os.unlink(raw)
    return x


def decode_windows(p, policy="pad", rate=SR, w=88200, n=6):
    raw = p + ".win.f32"
    rc, out = run(["windows", p, raw, policy, str(rate), str(w), str(n)])
    if rc != 0:
        raise RuntimeError("decode_windows %s: %s" % (p, out))
    info = {k: int(v) for k, v in out.items() if k != "stderr"}
    x = np.fromfile(raw, dtype=np.float32).reshape(info["n_windows"], info["window_len"])
    os.unlink(raw)
    return x, info


def starts(n_track, w, n):
    return [(n_track - w) * (2 * i + 1) // (2 * n) for i in range(n)]


def compare_windows(p, label, w=88200, n=6, max_ratio=None, len_tol=0, tol=SEEK_TOL):
    """Windows from decode_windows against the slices of a full decode."""
    if p not in FULL_CACHE:
        FULL_CACHE[p] = decode_all(p)
    full = FULL_CACHE[p]
    win, info = decode_windows(p, w=w, n=n)
    N = info["track_samples"]
    if abs(N - len(full)) > len_tol:
        fail("%s: track_samples %d but a full decode gives %d" % (label, N, len(full)))
    if win.shape != (n, w):
        fail("%s: windows shape %s" % (label, win.shape))
        return None
    diff = 0.0
    for i, s in enumerate(starts(N, w, n)):
        ref = full[s:s + w]
        if len(ref) != w:
            fail("%s: window %d runs past the full decode" % (label, i))
            return None
        diff = max(diff, float(np.max(np.abs(win[i] - ref))))
    ratio = info["decoded_samples"] / len(full)
    print("%-28s N=%-8d full=%-8d maxdiff=%.3g decoded=%.1f%%"
          % (label, N, len(full), diff, 100 * ratio))
    if diff > tol:
        fail("%s: windows differ from the full decode by %g (> %g)" % (label, diff, tol))
    if max_ratio is not None and ratio > max_ratio:
        fail("%s: decoded %.1f%% of the track (> %.0f%%)" % (label, 100 * ratio, 100 * max_ratio))
    if np.max(np.abs(win)) < 0.05:
        fail("%s: windows are silent" % label)
    return diff


# ---- groups ----

FORMATS = [
    # name, codec args, length tolerance in output samples (codec padding), min correlation
    ("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"], 30, 0.98),
    ("flac", ["-c:a", "flac"], 0, 0.999),
    ("ogg", ["-c:a", "libvorbis", "-q:a", "5"], 30, 0.98),
    ("oga", ["-c:a", "flac"], 0, 0.999),
    ("opus", ["-c:a", "libopus", "-b:a", "128k"], 30, 0.95),
    # FFmpeg trims AAC's priming but not the last frame's padding (mp4 and mkv alike), nor
    # Vorbis' in mkv: up to one frame more than the source.
    ("m4a", ["-c:a", "aac", "-b:a", "192k"], 1024, 0.98),
    ("wav", ["-c:a", "pcm_s16le"], 0, 0.999),
    ("aiff", ["-c:a", "pcm_s16be"], 0, 0.999),
    ("wma", ["-c:a", "wmav2", "-b:a", "192k"], 2048, 0.95),
    ("wv", ["-c:a", "wavpack"], 0, 0.999),
    ("tta", ["-c:a", "tta"], 0, 0.999),
    ("mka", ["-c:a", "libvorbis"], 1024, 0.98),
]


def best_corr(a, b, max_lag=2048):
    """Largest normalised correlation of a and b over small lags (codec delay)."""
    n = min(len(a), len(b)) - 2 * max_lag
    ref = b[max_lag:max_lag + n]
    best = 0.0
    for lag in range(-max_lag, max_lag + 1, 1):
        x = a[max_lag + lag:max_lag + lag + n]
        c = float(np.dot(x, ref) / (np.linalg.norm(x) * np.linalg.norm(ref) + 1e-12))
        best = max(best, c)
        if best > 0.999:
            break
    return best


def g_formats():
    ref = decode_all(make("ref.wav", 8, ["-c:a", "pcm_f32le"]))
    if abs(len(ref) - 8 * SR) > 1:
        fail("ref.wav: %d samples, expected %d" % (len(ref), 8 * SR))
    for ext, args, len_tol, min_corr in FORMATS:
        p = make("f." + ext, 8, args)
        x = decode_all(p)
        c = best_corr(x[:4 * SR], ref[:4 * SR], max_lag=64 if len_tol == 0 else 2048)
        print("%-5s n=%d corr=%.4f" % (ext, len(x), c))
        if abs(len(x) - len(ref)) > len_tol:
            fail("%s: %d samples, expected %d +- %d" % (ext, len(x), len(ref), len_tol))
        if c < min_corr:
            fail("%s: correlation with the source %.4f < %.3f" % (ext, c, min_corr))
        win, info = decode_windows(p, w=SR, n=6)
        if info["n_windows"] != 6 or info["window_len"] != SR:
            fail("%s: windows %s" % (ext, info))
    print("ape: skipped, FFmpeg has no APE encoder and Debian packages none (mac)")


def g_channels():
    # Mean of channels: a tone only in the centre of 5.1 must come out at 1/6 of its level
    # (FFmpeg's default downmix would give it full weight).
    p = path("c51.flac")
    ffmpeg("-f", "lavfi", "-i",
           "aevalsrc=0|0|0.6*sin(2*PI*440*t)|0|0|0:s=48000:d=3:c=5.1", "-c:a", "flac", p)
    x = decode_all(p)
    peak = float(np.max(np.abs(x[SR:2 * SR])))
    print("5.1 centre-only peak %.4f (expect 0.1)" % peak)
    if abs(peak - 0.1) > 0.003:
        fail("5.1 downmix peak %.4f, expected 0.1 (mean of 6 channels)" % peak)
    # Stereo: left +0.4 tone, right the same tone at -0.2 -> mean 0.1 of the tone.
    p = path("st.wav")
    ffmpeg("-f", "lavfi", "-i", "aevalsrc=0.4*sin(2*PI*300*t)|-0.2*sin(2*PI*300*t):s=44100:d=3",
           "-c:a", "pcm_f32le", p)
    x = decode_all(p)
    peak = float(np.max(np.abs(x[SR:2 * SR])))
    print("stereo peak %.4f (expect 0.1)" % peak)
    if abs(peak - 0.1) > 0.002:
        fail("stereo downmix peak %.4f, expected 0.1" % peak)
    # Rates 8 kHz .. 192 kHz, mono and stereo: length and the tone's frequency survive.
    for rate, ch in ((8000, 1), (11025, 1), (44100, 2), (48000, 2), (96000, 2), (192000, 2)):
        p = path("r%d_%d.flac" % (rate, ch))
        expr = "|".join(["0.5*sin(2*PI*1000*t)"] * ch)
        ffmpeg("-f", "lavfi", "-i", "aevalsrc=%s:s=%d:d=12" % (expr, rate), "-c:a", "flac", p)
        x = decode_all(p)
        spec = np.abs(np.fft.rfft(x[SR:3 * SR]))
        f = float(np.argmax(spec)) * SR / (2 * SR)
        print("%6d Hz x%d: n=%d peak freq %.1f Hz amp %.3f"
              % (rate, ch, len(x), f, float(np.max(np.abs(x[SR:3 * SR])))))
        if abs(len(x) - 12 * SR) > 1:
            fail("%d Hz: %d samples, expected %d" % (rate, len(x), 12 * SR))
        if abs(f - 1000) > 1:
            fail("%d Hz: tone at %.1f Hz" % (rate, f))
        if abs(float(np.max(np.abs(x[SR:3 * SR]))) - 0.5) > 0.01:
            fail("%d Hz: amplitude wrong" % rate)
        compare_windows(p, "%d Hz seek" % rate, w=SR // 2, n=3, max_ratio=0.8)


def seek_formats(formats):
    # 30 s files; 1 s windows so the windows are far enough apart to be reached by seeking.
    for ext, args in formats:
        p = make("s30." + ext, 30, args)
        compare_windows(p, "30 s %s, 1 s windows" % ext, w=SR, n=6, max_ratio=0.6)
        if ext in ("flac", "mp3"):
            # The default windows of a 30 s track nearly cover it: decoded whole, same slices.
            compare_windows(p, "30 s %s, 4 s windows" % ext)
            p = make("s60." + ext, 60, args)
            compare_windows(p, "60 s %s, 4 s windows" % ext, max_ratio=0.6)


def g_seek():
    seek_formats((("flac", ["-c:a", "flac"]),
                  ("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),
                  ("ogg", ["-c:a", "libvorbis"]),
                  ("opus", ["-c:a", "libopus"])))


def g_seek_more():
    seek_formats((("m4a", ["-c:a", "aac", "-aac_pns", "0"]),
                  ("wav", ["-c:a", "pcm_s16le"]),
                  ("wv", ["-c:a", "wavpack"])))
    # Matroska and ASF stamp packets in milliseconds, too coarse to place a seek exactly: they
    # must come out right anyway (decoded whole).
    for ext, args in (("mka", ["-c:a", "libvorbis"]), ("webm", ["-c:a", "libopus"]),
                      ("wma", ["-c:a", "wmav2"])):
        p = make("s30." + ext, 30, args)
        compare_windows(p, "30 s %s, 1 s windows" % ext, w=SR, n=6)
    # AAC's perceptual noise substitution draws from the decoder's random generator, whose
    # state after a seek differs from a decode from the start: those bands differ by noise of
    # their (low) level. Encoded without PNS (above) the windows are exact.
    p = make("s30pns.m4a", 30, ["-c:a", "aac"])
    compare_windows(p, "30 s m4a with pns", w=SR, n=6, tol=0.05)


def g_long_mp3():
    # 4 minutes at 22050 Hz mono keeps the encode quick; decoding must touch <= 30 % of it
    # (it is about 12 %: six 4.5 s stretches and the last 2 s to learn the exact length).
    for label, args in (("cbr", ["-b:a", "64k"]), ("vbr", ["-q:a", "4"])):
        p = make("long_%s.mp3" % label, 240, ["-c:a", "libmp3lame"] + args, rate=22050,
                 channels=1)
        compare_windows(p, "4 min mp3 " + label, max_ratio=0.30)
    # VBR without a Xing header: FFmpeg can only estimate the length from the bitrate, so we
    # must not trust it; the windows must still be those of the real length.
    p = make("noxing.mp3", 60, ["-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0"],
             rate=44100)
    compare_windows(p, "vbr mp3 without xing")


def g_cover_art():
    png = path("cover.png")
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64:d=1", "-frames:v", "1", png)
    for ext, args in (("mp3", ["-c:a", "libmp3lame", "-id3v2_version", "3"]),
                      ("flac", ["-c:a", "flac"]),
                      ("m4a", ["-c:a", "aac", "-aac_pns", "0"])):
        p = path("cover." + ext)
        ffmpeg(*signal_src(20), "-i", png, "-map", "0:a", "-map", "1:v", *args,
               "-c:v", "png", "-disposition:v", "attached_pic", p)
        streams = sh(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of",
                      "csv=p=0", p]).stdout.decode().split()
        if "video" not in streams:
            fail("%s: ffmpeg made no cover stream (%s)" % (ext, streams))
        compare_windows(p, "cover art " + ext, w=SR, n=3, max_ratio=0.6)


def g_short():
    for ext, args in (("wav", ["-c:a", "pcm_s16le"]), ("mp3", ["-c:a", "libmp3lame"])):
        for secs in (0.1, 2):
            p = make("short%s.%s" % (secs, ext), secs, args)
            full = decode_all(p)
            n = len(full)
            win, info = decode_windows(p, "pad")
            if info["n_windows"] != 1 or info["window_len"] != 88200 or info["track_samples"] != n:
                fail("%s %s s pad: %s (full %d)" % (ext, secs, info, n))
            elif np.any(win[0, :n] != full) or np.any(win[0, n:] != 0):
                fail("%s %s s pad: not the track followed by zeros" % (ext, secs))
            win, info = decode_windows(p, "whole")
            if info["n_windows"] != 1 or info["window_len"] != n:
                fail("%s %s s whole: %s (full %d)" % (ext, secs, info, n))
            elif np.any(win[0] != full):
                fail("%s %s s whole: not the track" % (ext, secs))
            print("short %s %.1f s: n=%d ok" % (ext, secs, n))
    # decode_all's cap.
    p = make("cap.flac", 5, ["-c:a", "flac"])
    x = decode_all(p, 12345)
    full = decode_all(p)
    if len(x) != 12345 or np.any(x != full[:12345]):
        fail("decode_all max_samples: %d samples" % len(x))


def expect_fail(p, label):
    rc, out = run(["fail", p])
    print("%-26s -> %s | %s" % (label, out.get("windows_error"), out.get("all_error")))
    if rc != 0:
        fail("%s: %s" % (label, out))
    if "stderr" in out and out["stderr"].strip():
        fail("%s: something wrote to stderr: %r" % (label, out["stderr"][:300]))


def g_bad():
    p = path("zero.mp3")
    open(p, "wb").close()
    expect_fail(p, "zero bytes")
    p = path("random.mp3")
    with open(p, "wb") as f:
        f.write(np.random.default_rng(1).integers(0, 256, 200000, dtype=np.uint8).tobytes())
    expect_fail(p, "random bytes .mp3")
    p = path("text.mp3")
    with open(p, "w") as f:
        f.write("this is not audio\n" * 500)
    expect_fail(p, "text file")
    d = path("dir.mp3")
    os.mkdir(d)
    expect_fail(d, "directory")
    expect_fail(path("missing.flac"), "missing file")
    p = path("noaudio.mkv")
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x32:d=1", "-c:v", "ffv1", p)
    expect_fail(p, "video only")
    # Truncated files: what is there is decoded; a header alone is an error.
    for ext, args in (("mp3", ["-c:a", "libmp3lame"]), ("flac", ["-c:a", "flac"])):
        src = make("whole." + ext, 20, args)
        data = open(src, "rb").read()
        p = path("trunc." + ext)
        with open(p, "wb") as f:
            f.write(data[:len(data) // 2])
        x = decode_all(p)
        win, info = decode_windows(p)
        print("truncated %s: %d samples, windows %s" % (ext, len(x), info))
        if not (8 * SR < len(x) < 12 * SR):
            fail("truncated %s: %d samples, expected about 10 s" % (ext, len(x)))
        if info["n_windows"] != 6 or info["track_samples"] > len(x) + 2 * SR:
            fail("truncated %s windows: %s" % (ext, info))
        p = path("header." + ext)
        with open(p, "wb") as f:
            f.write(data[:200])
        expect_fail(p, "%s header only" % ext)
    # Unreadable: root reads anything, so as root run the check as nobody (setpriv).
    p = path("locked.flac")
    shutil.copy(path("whole.flac"), p)
    os.chmod(p, 0)
    if os.geteuid() != 0:
        expect_fail(p, "unreadable")
    elif shutil.which("setpriv"):
        os.chmod(TMP, 0o755)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            BIN, "fail", p], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        print("unreadable (as uid 65534) ->", r.stdout.decode().strip().replace("\n", " | "))
        if r.returncode != 0 or "permission denied" not in r.stdout.decode():
            fail("unreadable file: %r %r" % (r.stdout, r.stderr))
    else:
        print("unreadable file: not checked, running as root without setpriv")


def g_two_hours():
    # 2 h of 8 kHz mono FLAC (quick to make): seeking must keep the decode to a sliver.
    p = path("2h.flac")
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=8000:d=7200", "-c:a", "flac",
           "-compression_level", "0", p)
    win, info = decode_windows(p)
    n_expect = 7200 * SR
    ratio = info["decoded_samples"] / n_expect
    print("2 h flac: %s, decoded %.2f%%" % (info, 100 * ratio))
    if abs(info["track_samples"] - n_expect) > 1:
        fail("2 h: track_samples %d, expected %d" % (info["track_samples"], n_expect))
    if ratio > 0.02:
        fail("2 h: decoded %.2f%% of the track" % (100 * ratio))
    if np.max(np.abs(win)) < 0.1:
        fail("2 h: silent windows")


def decode_mem(p, max_whole=0):
    raw = p + ".mem.f32"
    rc, out = run(["mem", p, raw, str(max_whole)])
    if rc != 0:
        return None, out
    return np.fromfile(raw, dtype=np.float32), out


def g_memory():
    # decode_windows_mem (uploads): the same windows and length as decode_windows of the file,
    # bit for bit, for seekable files, one decoded whole (webm without a duration, as a
    # browser records) and a short one; bad bytes fail with the path's reasons.
    files = [make("m.flac", 30, ["-c:a", "flac"]),
             make("m.mp3", 30, ["-c:a", "libmp3lame", "-b:a", "128k"]),
             make("m.ogg", 30, ["-c:a", "libvorbis"]),
             make("m.m4a", 30, ["-c:a", "aac", "-aac_pns", "0"]),
             make("m.wav", 3, ["-c:a", "pcm_s16le"]),
             make("m.webm", 12, ["-c:a", "libopus", "-live", "1"], channels=1)]
    for p in files:
        win, info = decode_windows(p)
        mwin, minfo = decode_mem(p)
        name = os.path.basename(p)
        print("%s: path %s, memory %s" % (name, info, minfo))
        if mwin is None:
            fail("%s from memory: %s" % (name, minfo))
        elif {k: int(v) for k, v in minfo.items()} != info or not np.array_equal(win.ravel(), mwin):
            fail("%s: memory and path windows differ" % name)
    # The webm has no duration to seek by: decoded whole, within a limit or refused over it.
    p = path("m.webm")
    _, out = decode_mem(p, 11 * SR)
    if "too long to decode without seeking" not in out.get("error", ""):
        fail("webm over max_whole_samples: %s" % out)
    if decode_mem(p, 13 * SR)[0] is None:
        fail("webm under max_whole_samples failed")
    # A seekable file longer than the limit is fine: only its windows are decoded.
    _, out = decode_mem(make("long.flac", 120, ["-c:a", "flac"], channels=1), 20 * SR)
    if out.get("n_windows") != "6" or int(out.get("decoded_samples", 1e9)) > 60 * SR:
        fail("120 s flac over max_whole_samples but seekable: %s" % out)
    bad = {"empty": b"",
           "random": np.random.default_rng(2).integers(0, 256, 100000, dtype=np.uint8).tobytes(),
           "text": b"this is not audio\n" * 500,
           "header": open(path("m.flac"), "rb").read()[:200]}
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x32:d=1", "-c:v", "ffv1", path("video.mkv"))
    bad["video"] = open(path("video.mkv"), "rb").read()
    for name, data in bad.items():
        p = path("bad_" + name)
        with open(p, "wb") as f:
            f.write(data)
        win, out = decode_mem(p)
        print("%s from memory -> %s" % (name, out))
        if win is not None or not out.get("error"):
            fail("%s from memory decoded: %s" % (name, out))
    trunc = open(path("m.mp3"), "rb").read()
    with open(path("trunc.mp3"), "wb") as f:
        f.write(trunc[:len(trunc) // 2])
    win, out = decode_mem(path("trunc.mp3"))
    if win is None or out.get("n_windows") != "6":
        fail("truncated mp3 from memory: %s" % out)


def g_threads():
    # decode shares no state between calls: threads decoding at once agree bit for bit.
    p = make("threads.mp3", 60, ["-c:a", "libmp3lame"])
    rc, out = run(["threads", p])
    print("threads:", out)
    if rc != 0:
        fail("threads: %s" % out)


GROUPS = {"formats": g_formats, "channels": g_channels, "seek": g_seek,
          "seek_more": g_seek_more, "threads": g_threads,
          "long_mp3": g_long_mp3, "cover_art": g_cover_art, "short": g_short, "bad": g_bad,
          "two_hours": g_two_hours, "memory": g_memory}


def main():
    global BIN, TMP
    if len(sys.argv) != 3 or sys.argv[2] not in GROUPS:
        print("usage: run_tests.py TEST_DECODE GROUP (%s)" % ", ".join(GROUPS))
        return 2
    BIN = sys.argv[1]
    for tool in ("ffmpeg", "ffprobe", "sox"):
        if not shutil.which(tool):
            print("skip: %s not found" % tool)
            return 77
    TMP = tempfile.mkdtemp(prefix="genred-decode-")
    try:
        GROUPS[sys.argv[2]]()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("%s: %d failure(s)" % (sys.argv[2], len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
