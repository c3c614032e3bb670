#!/usr/bin/python3
"""`genred untag` while the daemon runs: the untagged file is left alone (no re-classification,
no re-tag, no hook) until its content changes; then it is tagged again. `genred status` counts
and lists it as untagged (state schema v3's mark)."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402

dt.need_tools()
L = dt.Lib("untag", debounce_ms=200, max_tracks=4, max_wait_ms=100)
try:
    a = os.path.join(L.lib, "a.mp3")
    b = os.path.join(L.lib, "b.flac")
    dt.tone(a, 5.0, 330)
    dt.tone(b, 5.0, 550)
    L.start()
    L.wait_log("tagged ", 60, count=2)
    dt.check(dt.genred_tags(a)[2] is not None, "a.mp3 not tagged by the daemon")
    runs0 = len(L.hook_runs())

    u = subprocess.run([dt.GENRED, "untag", "--state", L.state, a], capture_output=True,
                       env=L.env())
    dt.check(u.returncode == 0, f"untag exit {u.returncode}: {u.stderr.decode()[-300:]}")
    # Give the daemon its debounce and a batch wait, and more, to (wrongly) react.
    time.sleep(2.0)
    tags = dt.genred_tags(a)
    dt.check(tags is None or (tags[1] is None and tags[2] is None),
             f"a.mp3 tagged again after untag: {tags}")
    dt.check(L.log_text().count("tagged " + a) == 1, "the daemon classified a.mp3 again")
    dt.check(len(L.hook_runs()) == runs0, "a hook ran for the untagged file")

    st = subprocess.run([dt.GENRED, "status", "--state", L.state, "--json"], capture_output=True)
    j = json.loads(st.stdout)
    dt.check(j.get("untagged") == 1 and j.get("ok") == 1,
             f"status counts: untagged {j.get('untagged')}, ok {j.get('ok')}")
    dt.check([r["path"] for r in j.get("recent_untagged", [])] == [a] and
             any(r["path"] == a and r["status"] == "untagged" for r in j.get("recent", [])),
             "status does not list a.mp3 as untagged")
    st = subprocess.run([dt.GENRED, "status", "--state", L.state], capture_output=True)
    dt.check(b"1 untagged" in st.stdout and b"(untagged)" in st.stdout,
             "text status does not show the untagged file: " + st.stdout.decode()[-400:])

    # New content at the same path: classified and tagged again, the mark gone.
    tmp = os.path.join(L.tmp, "new.mp3")
    dt.tone(tmp, 5.0, 880)
    os.rename(tmp, a)
    L.wait_log("tagged " + a, 60, count=2)
    dt.check(dt.genred_tags(a)[2] is not None, "changed a.mp3 not tagged again")
    st = subprocess.run([dt.GENRED, "status", "--state", L.state, "--json"], capture_output=True)
    j = json.loads(st.stdout)
    dt.check(j.get("untagged") == 0 and j.get("ok") == 2, f"status after change: {j}")
    dt.check(L.stop() == 0, "daemon did not exit 0")
finally:
    L.cleanup()
dt.done()
