"""Shared helpers for the genred command-line tests (imported by the cli_*.py drivers).
Each driver is run as: DRIVER.py GENRED_BINARY SOURCE_DIR [HELPER...]; it exits 0 pass,
1 fail, 77 skip with the reason printed. Audio is generated in a temp dir, never copied."""
import os
import shutil
import subprocess
import sys
import tempfile

failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def skip(reason):
    print("skip:", reason)
    sys.exit(77)


def finish():
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def sh(args, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (args[0], r.stderr.decode(errors="replace")[-500:]))
    return r


def ffmpeg(*args):
    sh(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + [str(a) for a in args])


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


class Genred:
    def __init__(self, binary, env=None):
        self.binary = binary
        self.env = dict(os.environ)
        self.env.pop("GENRED_MODEL", None)
        # `genred tag` records its results in the state database: never the user's own.
        self.env["XDG_STATE_HOME"] = tmpdir()
        if env:
            self.env.update(env)

    def run(self, *args, env=None, timeout=120):
        e = dict(self.env)
        if env:
            e.update(env)
        r = subprocess.run([self.binary] + [os.fsencode(a) if isinstance(a, bytes) else str(a)
                                            for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, timeout=timeout)
        err = r.stderr.decode(errors="replace")
        for mark in SANITIZER_MARKS:
            if mark in err:
                fail("sanitizer report from genred %s:\n%s" % (" ".join(map(str, args)), err[-3000:]))
                break
        if r.returncode < 0:
            fail("genred %s died with signal %d" % (" ".join(map(str, args)), -r.returncode))
        return r


def tmpdir():
    d = tempfile.mkdtemp(prefix="genred-test-")
    import atexit
    atexit.register(shutil.rmtree, d, True)
    return d


def need_tools(*tools):
    for t in tools:
        if shutil.which(t) is None:
            skip("%s not installed" % t)


def make_model(src, out, arch="seed-cnn", seed=1):
    mm = os.path.join(src, "tests", "nn", "make_model.py")
    if not os.path.exists(mm):
        skip("tests/nn/make_model.py not there yet")
    sh([sys.executable, mm, "--arch", arch, "--seed", str(seed), out])
    return out


def music(path, seconds=30, rate=44100, channels=2, seed=0):
    """Music-like audio: plucked notes in a chord, a square bass, a sawtooth lead with
    tremolo and some pink noise, each a separate sox layer mixed with sox -m."""
    d = os.path.dirname(path)
    notes = [("C3", "E4"), ("A2", "C4"), ("D3", "F#4")][seed % 3]
    layers = []
    specs = [
        ["synth", str(seconds), "pluck", notes[0], "pluck", notes[1], "tremolo", "3", "60"],
        ["synth", str(seconds), "square", "G2", "gain", "-10", "tremolo", "1.5", "80"],
        ["synth", str(seconds), "sawtooth", "%d-%d" % (300 + 40 * seed, 900), "gain", "-14"],
        ["synth", str(seconds), "pinknoise", "gain", "-22"],
    ]
    for i, spec in enumerate(specs):
        lp = os.path.join(d, ".layer%d_%d.wav" % (seed, i))
        sh(["sox", "-n", "-r", str(rate), "-c", str(channels), lp] + spec)
        layers.append(lp)
    sh(["sox", "-m"] + layers + [path, "gain", "-n", "-3"])
    for lp in layers:
        os.unlink(lp)
    return path
