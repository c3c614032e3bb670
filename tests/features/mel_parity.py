#!/usr/bin/python3
"""Drives the features/mel tests on audio that sox makes in a temp dir.

  mel_parity.py parity  MEL_TOOL   music-like mix, the six DESIGN.md §2 windows vs mel_ref.py
  mel_parity.py edges   MEL_TOOL   silence, a loud clipped square, 1000 samples, 512*k samples,
                                   one sample, a very quiet passage
  mel_parity.py threads THREADS_TOOL  feeds the mix to test_mel_threads

Pass: every window's max |dB difference| <= 0.01 (printed) and power within 1e-6 relative.
Exit 77 (skip) when sox is missing.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mel_ref  # noqa: E402

SR = 22050
TOL_DB = 0.01
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg)


def sox(*args):
    subprocess.run(["sox", "-R", *map(str, args)], check=True, stderr=subprocess.DEVNULL)


def to_f32(wav, out):
    """Any sox-readable file to raw float32 mono 22050 Hz samples."""
    sox(wav, "-r", SR, "-c", 1, "-e", "floating-point", "-b", 32, "-t", "raw", out)
    return np.fromfile(out, dtype="<f4")


def make_music(d, seconds=10):
    """A mix of plucked notes, a sawtooth bass, a square lead sweeping in pitch, pink noise and
    a noise-burst drum pattern, so the spectrogram has tones, transients and a noise floor."""
    gen = ["-n", "-r", SR, "-c", 1]
    notes = []
    for i, hz in enumerate([262, 330, 392, 523, 440, 349, 294, 247]):
        f = os.path.join(d, "note%d.wav" % i)
        sox(*gen, f, "synth", 0.25, "pluck", hz, "fade", 0, 0.25, 0.1)
        notes.append(f)
    phrase = os.path.join(d, "phrase.wav")
    sox(*notes, phrase)  # 2 s
    melody = os.path.join(d, "melody.wav")
    sox(phrase, melody, "repeat", seconds // 2 - 1)
    bass = os.path.join(d, "bass.wav")
    sox(*gen, bass, "synth", seconds, "sawtooth", 55, "vol", 0.5, "tremolo", 2, 60)
    lead = os.path.join(d, "lead.wav")
    sox(*gen, lead, "synth", seconds, "square", "440:880", "vol", 0.15, "tremolo", 6, 40)
    noise = os.path.join(d, "noise.wav")
    sox(*gen, noise, "synth", seconds, "pinknoise", "vol", 0.1)
    hit = os.path.join(d, "hit.wav")
    sox(*gen, hit, "synth", 0.09, "brownnoise", "fade", 0, 0.09, 0.08, "pad", 0, 0.16)
    drums = os.path.join(d, "drums.wav")
    sox(hit, drums, "repeat", seconds * 4 - 1)  # 4 hits a second
    mix = os.path.join(d, "mix.wav")
    sox("-m", "-v", 0.6, melody, "-v", 0.4, bass, "-v", 0.5, lead, "-v", 0.5, noise,
        "-v", 0.9, drums, mix, "trim", 0, seconds)
    return mix


def run_tool(tool, mode, x, d, tag):
    inp = os.path.join(d, tag + ".in.f32")
    out = os.path.join(d, tag + ".out.f32")
    np.asarray(x, dtype="<f4").tofile(inp)
    subprocess.run([tool, mode, inp, out], check=True)
    got = np.fromfile(out, dtype="<f4")
    frames = 1 + len(x) // 512
    if got.size != 64 * frames:
        fail("%s: %d values, want 64 x %d" % (tag, got.size, frames))
        return None
    return got.reshape(64, frames).astype(np.float64)


def compare(tool, x, d, tag):
    """Returns max |dB difference|; also checks range and the power spectrogram."""
    want = mel_ref.mel_db(x)
    got = run_tool(tool, "db", x, d, tag)
    if got is None:
        return float("inf")
    diff = float(np.max(np.abs(got - want)))
    print("%-28s frames %4d  max |ddB| %.3g  (ref range %.2f..%.2f)"
          % (tag, got.shape[1], diff, want.min(), want.max()))
    if not diff <= TOL_DB:
        fail("%s: max |ddB| %.4g > %g" % (tag, diff, TOL_DB))
    if got.min() < -80.0 or got.max() > 0.0:
        fail("%s: values outside [-80, 0]: %g..%g" % (tag, got.min(), got.max()))

    pw_want = mel_ref.mel_power(x)
    pw = run_tool(tool, "power", x, d, tag + ".power")
    if pw is not None:
        scale = max(float(pw_want.max()), 1e-30)
        rel = float(np.max(np.abs(pw - pw_want))) / scale
        if not rel <= 1e-6:
            fail("%s: power differs by %.3g of the max" % (tag, rel))
    return diff


def parity(tool, d):
    x = to_f32(make_music(d), os.path.join(d, "mix.f32"))
    if len(x) < 88200 * 2:
        fail("mix too short: %d samples" % len(x))
        return
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    print("mix: %d samples, rms %.3f, peak %.3f" % (len(x), rms, float(np.max(np.abs(x)))))
    if rms < 0.01:
        fail("mix is nearly silent")
    worst = 0.0
    wins = mel_ref.windows(x)
    if len(wins) != 6 or any(len(w) != 88200 for w in wins):
        fail("window rule gave %s" % [len(w) for w in wins])
    for i, w in enumerate(wins):
        worst = max(worst, compare(tool, w, d, "window %d" % i))
    print("parity: worst window max |ddB| = %.3g (limit %g)" % (worst, TOL_DB))

    # the script form the CLI tests use: mel_ref.py IN.f32 OUT.npy
    npy = os.path.join(d, "ref.npy")
    subprocess.run([sys.executable, mel_ref.__file__, os.path.join(d, "mix.f32"), npy], check=True)
    ref = np.load(npy)
    if ref.shape != (6, 64, 173) or not np.array_equal(ref, mel_ref.track_mel_db(x)):
        fail("mel_ref.py script gave shape %s or different values" % (ref.shape,))
    short = os.path.join(d, "short.f32")
    x[:30000].tofile(short)
    for mode, frames in (("pad", 173), ("whole", 1 + 30000 // 512)):
        subprocess.run([sys.executable, mel_ref.__file__, "--short", mode, short, npy], check=True)
        if np.load(npy).shape != (1, 64, frames):
            fail("mel_ref.py --short %s on 30000 samples gave %s" % (mode, np.load(npy).shape))


def edges(tool, d):
    music = to_f32(make_music(d, 4), os.path.join(d, "mix.f32"))

    silence_wav = os.path.join(d, "silence.wav")
    sox("-n", "-r", SR, "-c", 1, silence_wav, "trim", 0, 4)
    silence = to_f32(silence_wav, os.path.join(d, "silence.f32"))[:88200]
    if np.any(silence != 0):
        fail("sox silence is not digital silence")
    got = run_tool(tool, "db", silence, d, "silence")
    # librosa: S all zero -> ref clamps to amin -> 0 dB everywhere, not -80
    if got is not None and np.any(got != 0.0):
        fail("silence: want 0 dB everywhere, got %g..%g" % (got.min(), got.max()))
    compare(tool, silence, d, "silence")

    loud_wav = os.path.join(d, "loud.wav")
    sox("-n", "-r", SR, "-c", 1, loud_wav, "synth", 4, "square", 150, "gain", 20)
    loud = to_f32(loud_wav, os.path.join(d, "loud.f32"))[:88200]
    print("loud square: peak %.3f, %.0f%% of samples at full scale"
          % (float(np.max(np.abs(loud))), 100.0 * float(np.mean(np.abs(loud) >= 0.999))))
    compare(tool, loud, d, "loud clipped square")

    compare(tool, music[5000:6000], d, "1000 samples")
    compare(tool, music[:512 * 100], d, "512*100 samples")
    compare(tool, music[:512 * 3], d, "512*3 samples")
    compare(tool, music[7000:7001], d, "1 sample")
    compare(tool, music[:88200] * np.float32(1e-4), d, "quiet (-80 dBFS)")
    # a window that ends in digital silence: part of it clips at the -80 floor
    half = music[:88200].copy()
    half[44100:] = 0
    compare(tool, half, d, "half silence")


def threads(tool, d):
    f = to_f32(make_music(d, 6), os.path.join(d, "mix.f32"))
    if len(f) < 88200:
        fail("mix too short")
        return
    r = subprocess.run([tool, os.path.join(d, "mix.f32")])
    if r.returncode != 0:
        fail("test_mel_threads exited %d" % r.returncode)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("parity", "edges", "threads"):
        print(__doc__)
        return 2
    if not shutil.which("sox"):
        print("skip: sox not found on PATH")
        return 77
    with tempfile.TemporaryDirectory(prefix="genred-mel-") as d:
        {"parity": parity, "edges": edges, "threads": threads}[sys.argv[1]](sys.argv[2], d)
    print("%s: %d failures" % ("FAIL" if failures else "ok", failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
