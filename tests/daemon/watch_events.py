#!/usr/bin/python3
"""The loop's other duties: an idle daemon makes no wakeups (context switches of every thread
unchanged over 2 s), a forced inotify overflow (SIGUSR1 with GENRED_DEBUG_SIGNALS, events of files
copied while the daemon was stopped thrown away) is followed by a rescan that finds every file,
and SIGHUP with files queued reloads the config (a new hook) without losing them."""
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402


def stopped(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T"


dt.need_tools()
L = dt.Lib("events", debounce_ms=200, max_tracks=64, max_wait_ms=3000)
try:
    src = os.path.join(L.tmp, "t.mp3")
    dt.tone(src, 2.0, 440)
    first = [os.path.join(L.lib, f"a{i}.mp3") for i in range(2)]
    for p in first:
        shutil.copy(src, p)
    L.start()
    dt.check(L.wait_rows(first, 30), "start-up files")

    # Idle: no wakeups at all.
    time.sleep(1.0)
    pid = L.proc.pid
    c0 = dt.context_switches(pid)
    time.sleep(2.0)
    c1 = dt.context_switches(pid)
    print(f"idle: {c1 - c0} context switches in 2 s", flush=True)
    dt.check(c1 == c0, f"idle daemon woke up {c1 - c0} times in 2 s")

    # Overflow: events queued while the daemon is stopped are thrown away; the rescan finds them.
    os.kill(pid, signal.SIGSTOP)
    while not stopped(pid):
        time.sleep(0.01)
    lost = []
    os.makedirs(os.path.join(L.lib, "new dir"))
    for i in range(20):
        p = os.path.join(L.lib, "new dir" if i % 2 else "", f"o{i}.mp3")
        shutil.copy(src, p)
        lost.append(p)
    os.kill(pid, signal.SIGUSR1)
    os.kill(pid, signal.SIGCONT)
    L.wait_log("forced overflow", 10)
    dt.check(L.wait_rows(lost, 60), "the rescan after the overflow found every file")
    dt.check("rescanning every library" in L.log_text(), "overflow logged with advice")

    # SIGHUP with files queued (batch.max_wait_ms = 3 s keeps them waiting): a new config
    # (one more hook) is loaded and the queued files are still tagged, each once.
    queued = [os.path.join(L.lib, f"h{i}.mp3") for i in range(5)]
    n_queued = L.log_text().count("queued ")
    for p in queued:
        shutil.copy(src, p)
    L.wait_log("queued ", 10, count=n_queued + len(queued))
    L.write_conf('log = { level = "debug"; };\n')  # an edited file is read again
    L.proc.send_signal(signal.SIGHUP)
    L.wait_log("reloading (SIGHUP)", 10)
    dt.check(L.wait_rows(queued, 60), "files queued before SIGHUP tagged after it")
    rows = L.rows()
    dt.check(all(r[2] == 1 for r in rows.values()), "every file recorded once")
    dt.check(len(rows) == len(first) + len(lost) + len(queued), f"{len(rows)} rows")
    dt.check(L.stop() == 0, "SIGTERM exit 0")
finally:
    L.cleanup()
dt.done()
