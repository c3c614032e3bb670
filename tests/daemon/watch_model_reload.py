#!/usr/bin/python3
"""The daemon notices a replaced model file by itself (inotify on the model's folder) and
switches between batches. N tracks are queued at start-up and go through in small batches; while
some are still queued, a different valid model is written to a temp file beside the configured
one and renamed over it. The log must name the new model id (the file's SHA-256, which must differ
from the first model's), every file must end up recorded and tagged (GENRED_MODEL, read back with
mutagen) by the new model, the ones tagged before the switch tagged again, none lost, and the
daemon still running. Then a truncated model is written in place over the path: one error line,
the last good model keeps running and tags a file added afterwards. A third model written in place
in pieces (pauses shorter than the debounce) is read once, whole. Idle after all that: no
wakeups. Then, on a one-file library: a model path that is a symlink (re-pointed like `ln -sfn`,
or its target replaced in the target's own folder) and a model path changed in the config on
SIGHUP (the new path is watched, the old one no longer)."""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402

N = int(os.environ.get("GENRED_MODEL_RELOAD_TRACKS", "60"))


def make_model(path, seed, brk=None):
    cmd = ["/usr/bin/python3", os.path.join(dt.SRC, "tests/nn/make_model.py"), "--arch",
           "seed-cnn", "--seed", str(seed), path]
    if brk:
        cmd[2:2] = ["--break", brk]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def model_id(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def wait_all_by(L, paths, mid, timeout):
    """Waits until every path is recorded ok by model mid; returns the rows."""
    want = {os.fsencode(p) for p in paths}
    t0 = time.time()
    while time.time() - t0 < timeout and L.proc.poll() is None:
        rows = L.rows()
        if all(rows.get(p, (None,))[0] == 0 and rows[p][3] == mid for p in want):
            return rows
        time.sleep(0.25)
    rows = L.rows()
    bad = [p for p in want if rows.get(p, (None,))[0] != 0 or rows[p][3] != mid]
    print(L.log_text()[-3000:])
    dt.check(False, f"{len(bad)} files not recorded by model {mid}, e.g. {sorted(bad)[:2]}")
    return rows


dt.need_tools()
L = dt.Lib("modelreload", debounce_ms=200, max_tracks=2, max_wait_ms=100)
try:
    src = os.path.join(L.tmp, "t.mp3")
    dt.tone(src, 8.0, 440)
    tracks = [os.path.join(L.lib, f"{i:02d}.mp3") for i in range(N)]
    for p in tracks:
        shutil.copy(src, p)
    old_id = model_id(L.model)
    new_model = os.path.join(L.tmp, "seed2.safetensors")
    make_model(new_model, 2)
    new_id = model_id(new_model)
    dt.check(new_id != old_id, f"the second model has its own id ({old_id} vs {new_id})")

    L.start("--jobs", "1")
    dt.check(f"ready: {N} files queued" in L.log_text(), f"start-up queued the {N} files")
    L.wait_log("tagged ", 60, count=2)  # the first batch is done: the old model is running

    # Replaced the usual way: a temp file in the same folder renamed over the configured path.
    tmp = os.path.join(os.path.dirname(L.model), ".m.safetensors.tmp")
    shutil.copy(new_model, tmp)
    os.rename(tmp, L.model)
    L.wait_log(f"model file changed: new model {new_id}", 30)
    log = L.log_text()
    before = log[:log.index("model file changed: new model")]
    n_before = len(re.findall(r"^.*\btagged /", before, re.M))
    print(f"{n_before} files tagged by the first model before the switch", flush=True)
    dt.check(0 < n_before < N, f"the switch came while files were still queued ({n_before}/{N})")

    rows = wait_all_by(L, tracks, new_id, 240)
    dt.check(len(rows) == N, f"{len(rows)} rows for {N} files: none lost, none extra")
    retagged = 0
    for p in tracks:
        r = rows.get(os.fsencode(p))
        if not dt.check(r is not None, f"row for {p}"):
            continue
        tags = dt.genred_tags(p)
        dt.check(tags is not None and tags[2] == new_id and tags[0] == r[1],
                 f"{p}: tags {tags} are the new model's ({r[1]}, {new_id})")
        retagged += r[2] >= 2
    dt.check(retagged >= n_before,
             f"the {n_before} files tagged by the first model were tagged again ({retagged})")
    dt.check(L.proc.poll() is None, "the daemon still runs after the switch")

    # A truncated model written in place: one error, the last good model keeps tagging.
    broken = os.path.join(L.tmp, "broken.safetensors")
    make_model(broken, 3, "truncated")
    n_err = L.log_text().count("keeping the running model")
    with open(L.model, "wb") as f, open(broken, "rb") as g:
        f.write(g.read())
    L.wait_log("keeping the running model", 30, count=n_err + 1)
    time.sleep(1.0)  # a second error line would come within the debounce
    log = L.log_text()
    dt.check(log.count("keeping the running model") == n_err + 1,
             "one error line for one broken write")
    dt.check(log.count("model file changed: new model") == 1, "no model switch for a broken file")
    dt.check(L.proc.poll() is None, "the daemon still runs after a broken model file")
    late = os.path.join(L.lib, "late.mp3")
    shutil.copy(src, late)
    rows = wait_all_by(L, [late], new_id, 60)
    tags = dt.genred_tags(late)
    dt.check(tags is not None and tags[2] == new_id,
             f"a file added after the broken model is tagged by the last good one: {tags}")

    # A third model written in place in pieces, each pause shorter than the 500 ms debounce:
    # read once, when whole (no error line for a half-written file).
    third = os.path.join(L.tmp, "seed4.safetensors")
    make_model(third, 4)
    third_id = model_id(third)
    data = open(third, "rb").read()
    with open(L.model, "wb") as f:
        step = len(data) // 4 + 1
        for k in range(0, len(data), step):
            f.write(data[k:k + step])
            f.flush()
            time.sleep(0.2)
    L.wait_log(f"model file changed: new model {third_id}", 30)
    dt.check(L.log_text().count("keeping the running model") == n_err + 1,
             "a model written in pieces was not read half-written")
    wait_all_by(L, tracks + [late], third_id, 240)

    # Idle again: the model's watch adds no wakeups.
    time.sleep(1.0)
    c0 = dt.context_switches(L.proc.pid)
    time.sleep(2.0)
    c1 = dt.context_switches(L.proc.pid)
    dt.check(c1 == c0, f"idle daemon woke up {c1 - c0} times in 2 s")
    rc = L.stop()
    dt.check(rc == 0, f"SIGTERM: exit status {rc}")
finally:
    L.cleanup()

# A symlinked model path, and a model path changed in the config on SIGHUP: a second daemon, on a
# library of one file so that each new model costs one classification.
L = dt.Lib("modelpath", debounce_ms=200, max_tracks=2, max_wait_ms=100)
try:
    one = os.path.join(L.lib, "one.mp3")
    dt.tone(one, 2.0, 330)
    models, store, other = (os.path.join(L.tmp, d) for d in ("models", "store", "other"))
    for d in (models, store, other):
        os.makedirs(d)
    current = os.path.join(models, "current.safetensors")
    v = {}
    for k in range(1, 6):
        v[k] = os.path.join(L.tmp, f"v{k}.safetensors")
        make_model(v[k], 10 + k)
    ids = {k: model_id(p) for k, p in v.items()}
    dt.check(len(set(ids.values())) == 5, f"five models, five ids: {ids}")
    shutil.copy(v[1], os.path.join(store, "v1.safetensors"))
    os.symlink(os.path.join(store, "v1.safetensors"), current)
    L.write_conf(f'model = "{current}";\n')
    L.start(model_flag=False)
    dt.check(f"watching the model file {current} -> {store}/v1.safetensors" in L.log_text(),
             "the symlink and the file it points to are both watched")
    wait_all_by(L, [one], ids[1], 60)

    # The symlink re-pointed the way `ln -sfn` does it (a new link renamed over the old one).
    shutil.copy(v[2], os.path.join(store, "v2.safetensors"))
    os.symlink(os.path.join(store, "v2.safetensors"), current + ".new")
    os.rename(current + ".new", current)
    L.wait_log(f"model file changed: new model {ids[2]}", 30)
    dt.check(f"watching the model file {current} -> {store}/v2.safetensors" in L.log_text(),
             "the new target is watched")
    wait_all_by(L, [one], ids[2], 60)

    # The file the symlink points to, replaced by rename in its own folder.
    shutil.copy(v[3], os.path.join(store, ".v2.tmp"))
    os.rename(os.path.join(store, ".v2.tmp"), os.path.join(store, "v2.safetensors"))
    L.wait_log(f"model file changed: new model {ids[3]}", 30)
    wait_all_by(L, [one], ids[3], 60)

    # SIGHUP with another model path in the config: the watch follows it.
    moved = os.path.join(other, "m.safetensors")
    shutil.copy(v[4], moved)
    L.write_conf(f'model = "{moved}";\n')
    L.proc.send_signal(signal.SIGHUP)
    L.wait_log(f"reload: new model {ids[4]}", 30)
    dt.check(f"watching the model file {moved}" in L.log_text(), "SIGHUP watches the new path")
    wait_all_by(L, [one], ids[4], 60)
    n_changed = L.log_text().count("model file changed")
    shutil.copy(v[5], os.path.join(store, ".v2.tmp"))  # the old path: no longer the model
    os.rename(os.path.join(store, ".v2.tmp"), os.path.join(store, "v2.safetensors"))
    time.sleep(1.5)
    dt.check(L.log_text().count("model file changed") == n_changed,
             "a change to the previous model path is ignored")
    shutil.copy(v[5], moved + ".tmp")
    os.rename(moved + ".tmp", moved)
    L.wait_log(f"model file changed: new model {ids[5]}", 30)
    wait_all_by(L, [one], ids[5], 60)
    tags = dt.genred_tags(one)
    dt.check(tags is not None and tags[2] == ids[5], f"tagged by the last model: {tags}")
    rc = L.stop()
    dt.check(rc == 0, f"SIGTERM: exit status {rc}")
finally:
    L.cleanup()
dt.done()
