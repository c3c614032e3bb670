#!/usr/bin/python3
"""Benchmark of `genred serve` (not a test): upload-to-answer time of a 30 s clip and of a 5 s
recording (webm/opus without a duration, as a browser records it), against `genred classify`
of the same file in the same run; and the library API's answer time with 100,000 tracks in the
state database (generated rows), deep pages against the first page.

    /usr/bin/python3 bench/web_bench.py build/cli/genred [--tracks 100000] [--runs 7]

Medians of --runs requests, one at a time, over loopback. The model is the shipped one."""
import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.dirname(here)
sys.path.insert(0, os.path.join(src, "tests", "web"))
from webtest import Server, ffmpeg, music  # noqa: E402


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out), max(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("genred")
    ap.add_argument("--tracks", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    model = os.path.join(src, "models", "genred.safetensors")
    tmp = tempfile.mkdtemp(prefix="genred-webbench-")
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, "xdg"), XDG_CONFIG_HOME=os.path.join(tmp, "xdg"))
    env.pop("GENRED_MODEL", None)

    # the clips
    music(os.path.join(tmp, "c.wav"), seconds=30, seed=3)
    clip = os.path.join(tmp, "clip30.mp3")
    ffmpeg("-i", os.path.join(tmp, "c.wav"), "-b:a", "192k", clip)
    music(os.path.join(tmp, "r.wav"), seconds=5, rate=48000, channels=1, seed=1)
    rec = os.path.join(tmp, "rec5.webm")
    ffmpeg("-i", os.path.join(tmp, "r.wav"), "-c:a", "libopus", "-b:a", "64k", "-live", "1", rec)

    # a state database of N generated rows (made by genred itself, filled in by sqlite3)
    db = os.path.join(tmp, "state.db")
    subprocess.run([a.genred, "tag", "--quiet", "--state", db, "--model", model, "--no-hooks",
                    os.path.join(tmp, "c.wav")], env=env, check=True)
    rng = random.Random(1)
    genres = ["Blues", "Classical", "Country", "Disco", "Hip-Hop", "Jazz", "Metal", "Pop",
              "Reggae", "Rock"]
    rows = []
    for i in range(a.tracks):
        st = 1 if i % 50 == 0 else 0
        probs = ",".join("%s:%.3f" % (g.lower(), rng.random() / 10) for g in genres)
        rows.append((("/home/user/Music/Artist %d/Album %d/%02d Track %d.flac"
                      % (i % 3000, i % 700, i % 20, i)).encode(), 5_000_000 + i,
                     1_700_000_000 * 10**9 + i, "%032x" % i, st, None if st else rng.choice(genres),
                     None if st else rng.random(), None if st else probs, "87c18eade4d0",
                     "decode error" if st else None, 1.7e9 + i, "Artist %d" % (i % 3000)))
    c = sqlite3.connect(db)
    c.executemany("INSERT INTO tracks (path, size, mtime_ns, fingerprint, status, genre,"
                  " confidence, probs, model, error, time, artist)"
                  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    c.commit()
    # the cursor of the page that starts half-way down the least-sure list
    conf, rid = c.execute("SELECT confidence, id FROM tracks WHERE status = 0 AND untagged = 0"
                          " AND confidence IS NOT NULL ORDER BY confidence, id LIMIT 1 OFFSET ?",
                          (a.tracks // 2,)).fetchone()
    c.close()

    S = Server(a.genred, ["--state", db, "--model", model, "--max-jobs", "1"], env=env,
               log=os.path.join(tmp, "serve.log"))
    try:
        print("genred serve on %s, %d rows in the state database, %d runs each (median, max ms)"
              % (S.url, a.tracks + 1, a.runs))
        print("\nupload to answer (POST /api/classify, raw body; the server's own classify time"
              " from Server-Timing)")
        print("%-34s %9s %9s %13s %12s" % ("", "median", "max", "server part", "vs CLI"))
        for name, path, ctype in (("30 s clip (mp3 192k, %d kB)" % (os.path.getsize(clip) // 1000),
                                   clip, "audio/mpeg"),
                                  ("5 s recording (webm/opus)", rec, "audio/webm")):
            data = open(path, "rb").read()
            cli_ms, _ = timed(lambda: subprocess.run([a.genred, "classify", "--json", "--model",
                                                      model, path], env=env, check=True,
                                                     capture_output=True), a.runs)
            for q in ("", "?mel=1"):
                server = []

                def one():
                    st, h, j = S.post("/api/classify" + q, data, ctype)
                    assert st == 200, (st, j)
                    server.append(float(h["server-timing"].split("classify;dur=")[1].split(",")[0]))
                med, mx = timed(one, a.runs)
                print("%-34s %9.1f %9.1f %10.1f ms %11.2fx" % (
                    name + (" + mel picture" if q else ""), med, mx, statistics.median(server),
                    med / cli_ms))
            print("%-34s %9.1f %9s %13s %12s" % ("  genred classify --json (process)", cli_ms, "",
                                               "", "1.00x"))

        print("\nlibrary API with %d tracks" % (a.tracks + 1))
        print("%-52s %9s %9s %10s" % ("", "median", "max", "vs page 1"))
        cases = [
            ("GET /api/tracks (least sure first, page 1)", "/api/tracks?limit=50"),
            ("  + total count", "/api/tracks?limit=50&total=1"),
            ("  page from the middle (after=KEY:ID)", "/api/tracks?limit=50&after=%.17g:%d" % (conf, rid)),
            ("one genre, least sure first", "/api/tracks?limit=50&genre=Jazz"),
            ("newest first", "/api/tracks?limit=50&sort=recent&filter=all"),
            ("errors", "/api/tracks?limit=50&filter=error"),
            ("by path", "/api/tracks?limit=50&sort=path&filter=all"),
            ("search, 1 match ('Track 77777.')", "/api/tracks?limit=50&filter=all&q=Track%2077777."),
            ("search, many ('Artist 12')", "/api/tracks?limit=50&filter=all&q=Artist%2012"),
            ("GET /api/stats (counts, per genre)", "/api/stats"),
            ("GET /api/tracks/ID", "/api/tracks/%d" % rid),
        ]
        first = None
        for name, path in cases:
            def one():
                st, _, body = S.request("GET", path)
                assert st == 200, (st, body[:200])
            S.request("GET", path)  # warm the page cache
            med, mx = timed(one, a.runs)
            first = first or med
            print("%-52s %9.1f %9.1f %9.2fx" % (name, med, mx, med / first))
    finally:
        S.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
