#!/usr/bin/python3
"""kill -9 during a batch, restart: nothing lost, nothing tagged twice. Also the crash window
between a tag write and its state record, made on purpose: a file that already carries this
model's GENRED_MODEL tag but has no row is recorded without being classified or written again.
And SIGTERM during a batch: the batch finishes and is recorded, exit 0."""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402

dt.need_tools()
N = 40
L = dt.Lib("kill", debounce_ms=200, max_tracks=4, max_wait_ms=100)
try:
    src = os.path.join(L.tmp, "t.mp3")
    dt.tone(src, 6.0, 440)
    files = []
    for i in range(N):
        p = os.path.join(L.lib, f"{i:03d}.mp3")
        shutil.copy(src, p)
        files.append(p)
    # The crash window, by hand: tagged by this model (genred tag), never recorded.
    pre = os.path.join(L.lib, "pretagged.flac")
    dt.tone(pre, 5.0, 660)
    t = subprocess.run([dt.GENRED, "tag", "-q", "--model", L.model, pre], capture_output=True,
                       env=dict(os.environ, XDG_STATE_HOME=os.path.join(L.tmp, "other-state")))
    dt.check(t.returncode == 0, f"genred tag: {t.stderr!r}")
    pre_mtime = os.stat(pre).st_mtime_ns
    files.append(pre)

    L.start()
    # Kill -9 in the middle: some rows recorded, not all.
    t0 = time.time()
    while len(L.rows()) < 9 and time.time() - t0 < 60:
        time.sleep(0.05)
    L.proc.send_signal(signal.SIGKILL)
    L.proc.wait()
    n_before = len(L.rows())
    print(f"killed with {n_before} of {len(files)} recorded", flush=True)
    dt.check(0 < n_before < len(files), "the kill landed mid-run")

    # Restart, then SIGTERM while a batch runs.
    L.start()
    L.wait_log("batch of", 30, count=L.log_text().count("batch of") + 1)
    rc = L.stop(signal.SIGTERM)
    dt.check(rc == 0, f"SIGTERM during a batch: exit {rc}")
    dt.check("stopping after the running batch" in L.log_text(), "stop waited for the batch")

    # And once more to finish.
    L.start()
    dt.check(L.wait_rows(files, 120), "every file recorded after the restarts")
    time.sleep(1.0)
    rows = L.rows()
    for p in files:
        r = rows.get(os.fsencode(p))
        if dt.check(r is not None, f"row for {p}"):
            dt.check(r[0] == 0 and r[2] == 1, f"{p} recorded once, ok: {r}")
            tags = dt.genred_tags(p)
            dt.check(tags and tags[0] == r[1] and tags[2] == r[3], f"{p} tags {tags} vs {r}")
    dt.check(os.stat(pre).st_mtime_ns == pre_mtime, "pre-tagged file not written again")
    dt.check("recorded without re-tagging" in L.log_text(), "pre-tagged file recognised")
    # Hooks run after the record: a kill may lose hook runs of a finished batch, but never
    # repeats one.
    per = {}
    for ev, p in L.hook_runs():
        per[p] = per.get(p, 0) + 1
    dt.check(all(v == 1 for v in per.values()), "no hook ran twice for a file")
    dt.check(L.stop() == 0, "final SIGTERM")
finally:
    L.cleanup()
dt.done()
