#!/usr/bin/python3
"""Checks plot/'s pictures, made from audio that sox generates in a temp dir.

  plot_check.py mel PLOT_TOOL [KEEP_DIR]
      window 1: a loud 150 Hz tone for 2 s then 2 s of digital silence; window 2: a mix of
      plucked notes, a saw bass and pink noise. Checks the PNG signature and size, decodes it
      with ffmpeg, and checks the panels use only colour-bar colours, that the silent half is
      the -80 dB colour, that the tone is bright at the bottom (low Hz) and dark at the top,
      and that the music panel has many colours.
  plot_check.py confusion PLOT_TOOL [KEEP_DIR]
      PNG (signature, size, colours) and SVG (parses as XML, has the title and every label,
      one needing XML escaping).
KEEP_DIR, when given, keeps copies of the pictures there for looking at.
Exits 77 when sox or ffmpeg is missing.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np

SR = 22050
failures = 0
# plot.c's layout for a titled mel picture: panels of 720 x 256 at x 80, the first at y 68,
# one every 318 px; the colour bar 18 px wide at x 816 spanning all panels.
PANEL_X, PANEL_Y, PANEL_W, PANEL_H, PANEL_STEP, BAR_X, BAR_W = 80, 68, 720, 256, 318, 816, 18


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg)


def sox(*args):
    subprocess.run(["sox", "-R", *map(str, args)], check=True, stderr=subprocess.DEVNULL)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        fail("%s: not a PNG" % path)
        return None
    return struct.unpack(">II", head[16:24])


def png_pixels(path, w, h):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], check=True, stdout=subprocess.PIPE).stdout
    if len(raw) != w * h * 3:
        fail("%s: ffmpeg decoded %d bytes, want %d" % (path, len(raw), w * h * 3))
        return None
    return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)


def colours(a):
    a = a.reshape(-1, 3).astype(np.int64)
    return set((a[:, 0] << 16 | a[:, 1] << 8 | a[:, 2]).tolist())


def mel(tool, d, keep):
    gen = ["-n", "-r", SR, "-c", 1, "-e", "floating-point", "-b", 32]
    tone = os.path.join(d, "tone.f32")
    sox(*gen, "-t", "raw", tone, "synth", 2, "sine", 150, "vol", 0.8, "pad", 0, 2)
    notes = []
    for i, hz in enumerate([330, 392, 494, 587, 659, 523, 440, 349]):
        f = os.path.join(d, "n%d.wav" % i)
        sox(*gen, f, "synth", 0.5, "pluck", hz)
        notes.append(f)
    melody = os.path.join(d, "melody.wav")
    sox(*notes, melody)
    bass = os.path.join(d, "bass.wav")
    sox(*gen, bass, "synth", 4, "sawtooth", 82, "vol", 0.3)
    noise = os.path.join(d, "noise.wav")
    sox(*gen, noise, "synth", 4, "pinknoise", "vol", 0.05)
    music = os.path.join(d, "music.f32")
    sox("-m", melody, bass, noise, "-r", SR, "-c", 1, "-e", "floating-point", "-b", 32, "-t", "raw",
        music)

    png = os.path.join(d, "mel.png")
    subprocess.run([tool, "mel", png, "Mel spectrogram: tone then silence; music", tone, music],
                   check=True)
    if keep:
        shutil.copy(png, keep)
    size = png_size(png)
    if not size:
        return
    w, h = size
    print("mel.png: %d x %d, %d bytes" % (w, h, os.path.getsize(png)))
    if w != PANEL_X + PANEL_W + 120 or h < PANEL_Y + PANEL_STEP + PANEL_H:
        fail("mel.png: unexpected size %d x %d" % (w, h))
        return
    px = png_pixels(png, w, h)
    if px is None:
        return
    if tuple(px[2, 2]) != (255, 255, 255):
        fail("background is not white: %s" % (px[2, 2],))

    bar = px[PANEL_Y + 1:PANEL_Y + PANEL_STEP + PANEL_H - 1, BAR_X + 2:BAR_X + BAR_W - 2]
    palette = colours(bar)
    bottom = tuple(int(v) for v in px[PANEL_Y + PANEL_STEP + PANEL_H - 2, BAR_X + BAR_W // 2])
    top = tuple(int(v) for v in px[PANEL_Y + 1, BAR_X + BAR_W // 2])
    print("colour bar: %d colours, -80 dB = %s, 0 dB = %s" % (len(palette), bottom, top))
    if len(palette) < 200:
        fail("colour bar has only %d colours" % len(palette))
    if not (sum(top) > 3 * 200 and sum(bottom) < 3 * 20):
        fail("colour bar is not dark at -80 dB and bright at 0 dB")

    for k in range(2):
        y0 = PANEL_Y + k * PANEL_STEP
        panel = px[y0 + 2:y0 + PANEL_H - 2, PANEL_X + 2:PANEL_X + PANEL_W - 2]
        cs = colours(panel)
        flat = panel.reshape(-1, 3).astype(np.int64)
        codes = flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]
        inside = float(np.isin(codes, np.array(sorted(palette))).mean())
        print("panel %d: %d colours, %.2f%% of pixels on the colour bar" % (k + 1, len(cs),
                                                                          100 * inside))
        if inside < 0.99:
            fail("panel %d: %.2f%% of pixels are not colour-bar colours" % (k + 1, 100 * inside))
        if k == 1 and len(cs) < 40:
            fail("music panel has only %d colours" % len(cs))
        if k == 0:
            right = panel[:, -PANEL_W // 4:]
            if not np.all(right == np.array(bottom, dtype=np.uint8)):
                fail("silent half is not the -80 dB colour everywhere")
            left = panel[:, 20:PANEL_W // 3].astype(np.float64).sum(axis=2)
            low, high = left[-30:].mean(), left[:60].mean()
            print("tone panel brightness: low bands %.0f, top bands %.0f" % (low, high))
            if not low > high + 150:
                fail("tone is not bright at the bottom: low %.0f, top %.0f" % (low, high))


def confusion(tool, d, keep):
    png = os.path.join(d, "confusion.png")
    svg = os.path.join(d, "confusion.svg")
    subprocess.run([tool, "confusion", png], check=True)
    subprocess.run([tool, "confusion", svg], check=True)
    if keep:
        shutil.copy(png, keep)
        shutil.copy(svg, keep)
    size = png_size(png)
    if size:
        w, h = size
        print("confusion.png: %d x %d" % (w, h))
        if not (300 < w < 2000 and 300 < h < 2000):
            fail("confusion.png: odd size %d x %d" % (w, h))
        px = png_pixels(png, w, h)
        if px is not None:
            cs = colours(px)
            darkest = px.reshape(-1, 3).astype(np.int64)
            blue = np.any((darkest[:, 2] > 90) & (darkest[:, 0] < 40))
            print("confusion.png: %d colours, dark blue cells: %s" % (len(cs), bool(blue)))
            if len(cs) < 10 or not blue:
                fail("confusion.png does not look like a shaded matrix")
    try:
        root = ET.parse(svg).getroot()
    except ET.ParseError as ex:
        fail("confusion.svg does not parse: %s" % ex)
        return
    if not root.tag.endswith("svg"):
        fail("confusion.svg root is %s" % root.tag)
    text = " ".join(t.strip() for t in root.itertext())
    want = ["Confusion (test split)", "blues", "classical", "hip-hop", "reggae",
            "rock & roll <live>"]
    missing = [s for s in want if s not in text]
    print("confusion.svg: %d bytes, %d elements, missing texts: %s"
          % (os.path.getsize(svg), sum(1 for _ in root.iter()), missing))
    if missing:
        fail("confusion.svg lacks %s" % missing)
    if sum(1 for e in root.iter() if e.tag.endswith("path") or e.tag.endswith("rect")) < 100:
        fail("confusion.svg has too few shapes for 100 cells")


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("mel", "confusion"):
        print(__doc__)
        return 2
    for prog in ("sox", "ffmpeg"):
        if not shutil.which(prog):
            print("skip: %s not found on PATH" % prog)
            return 77
    keep = sys.argv[3] if len(sys.argv) == 4 else None
    with tempfile.TemporaryDirectory(prefix="genred-plot-") as d:
        {"mel": mel, "confusion": confusion}[sys.argv[1]](sys.argv[2], d, keep)
    print("%s: %d failures" % ("FAIL" if failures else "ok", failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
