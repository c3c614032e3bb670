"""`genred watch` with web.listen serves the page from the daemon's own process: the tracks it
tags show up in /api/stats and /api/tracks, a correction made on the page is written, recorded
and announced to the hooks (GENRED_EVENT=corrected), and the daemon does not tag the corrected
file again when the write's inotify events reach it. A non-loopback web.listen without a token
keeps the daemon from starting. SIGTERM stops both.
Usage: GENRED_BIN=... GENRED_SOURCE_DIR=... web_daemon.py"""
import json
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
import daemontest as dt  # noqa: E402

dt.need_tools()
L = dt.Lib("web", extra_conf='web = { listen = "127.0.0.1:0"; max_jobs = 1; };\n')
try:
    L.start()
    m = re.search(r"web: serving (http://127\.0\.0\.1:\d+/)", L.log_text())
    dt.check(m, "the daemon does not say where the page is")
    url = m.group(1) if m else "http://127.0.0.1:1/"
    files = [os.path.join(L.lib, n) for n in ("a.flac", "b.mp3")]
    for i, p in enumerate(files):
        dt.tone(p, 5.0, 330 + 110 * i)
    L.wait_rows(files, 60)
    L.wait_log("tagged ", 30, count=2)

    def get(path):
        with urllib.request.urlopen(url + path.lstrip("/"), timeout=30) as r:
            return json.load(r)

    def post(path, body):
        csrf = get("/api/session")["csrf"]
        req = urllib.request.Request(url + path.lstrip("/"), data=body, method="POST",
                                     headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)

    stats = get("/api/stats")
    dt.check(stats.get("total") == 2 and stats.get("ok") == 2, f"stats {stats}")
    tracks = get("/api/tracks?sort=path")["tracks"]
    dt.check([t["path"] for t in tracks] == [os.path.realpath(p) for p in files], f"tracks {tracks}")
    runs_before = L.rows()[os.fsencode(os.path.realpath(files[0]))][2]
    st, j = post(f"/api/tracks/{tracks[0]['id']}/genre", json.dumps({"genre": "Bossa Nova"}).encode())
    dt.check(st == 200 and j.get("genre") == "Bossa Nova" and j.get("corrected"), f"correction {j}")
    dt.check(dt.genred_tags(files[0])[0] == "Bossa Nova" and dt.genred_tags(files[0])[1] is None,
             f"tags after the correction: {dt.genred_tags(files[0])}")
    # the write's inotify events: debounced (300 ms), found done, not tagged again
    time.sleep(2.0)
    row = L.rows()[os.fsencode(os.path.realpath(files[0]))]
    dt.check(row[2] == runs_before, f"the daemon classified the corrected file again: {row}")
    dt.check(("corrected", os.fsencode(os.path.realpath(files[0]))) in L.hook_runs(),
             f"no corrected hook run: {L.hook_runs()}")
    dt.check(get("/api/info")["library"] is True, "info")
    rc = L.stop()
    dt.check(rc == 0, f"watch exit status {rc}")
    log = L.log_text()
    dt.check("AddressSanitizer" not in log and "runtime error:" not in log, "sanitizer report")

    # a page for other machines needs a token: the daemon refuses to start without one
    L.write_conf('web = { listen = "0.0.0.0:0"; };\n')
    r = __import__("subprocess").run([dt.GENRED, "watch", "--config", L.conf, "--model", L.model],
                                     capture_output=True, timeout=60)
    dt.check(r.returncode == 1 and b"not a loopback address" in r.stderr,
             f"watch with web.listen 0.0.0.0 and no token: {r.returncode} {r.stderr[-300:]!r}")
finally:
    L.cleanup()
dt.done()
