#!/usr/bin/python3
"""cli_device: `genred classify --device auto|cpu|cuda` on whatever machine runs it.
Without a usable GPU: cuda is a usage error (exit 2) saying why, auto says it uses the CPU
and gives the CPU's output. With one: cuda and auto say cuda and agree with the CPU to the
printed precision, and GENRED_CUDA_FAIL=1 falls back to the CPU with exactly one log line.
A bad --device value is a usage error everywhere. usage: cli_device.py GENRED"""
import os
import subprocess
import sys
import tempfile

failures = 0


def check(ok, what):
    global failures
    if not ok:
        failures += 1
        print("FAIL:", what)


def run(genred, *args, env=None):
    e = dict(os.environ)
    e.pop("GENRED_LOG_LEVEL", None)
    e.update(env or {})
    return subprocess.run([genred, *args], capture_output=True, env=e, timeout=120)


def probs(out):
    """path -> {label: p} from --json lines, without a json dependency on float formatting"""
    import json
    return {d["path"]: d["probabilities"] for d in map(json.loads, out.decode().splitlines())}


def main():
    genred = sys.argv[1]
    with tempfile.TemporaryDirectory() as t:
        files = []
        for i, synth in enumerate(["sine 200-3000", "pinknoise", "square 110 sine 440"]):
            f = os.path.join(t, "t%d.flac" % i)
            subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", f, "synth", "9"] +
                           synth.split() + ["vol", "0.5"], check=True)
            files.append(f)
        model = os.path.join(t, "m.safetensors")
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "..", "nn", "make_model.py"),
                        "--arch", "fcn", "--seed", "5", model], check=True)
        base = ["classify", "--json", "--model", model]

        cpu = run(genred, *base, "--device", "cpu", *files)
        check(cpu.returncode == 0, "cpu: exit %d %r" % (cpu.returncode, cpu.stderr))
        check(b"genred: device: cpu\n" in cpu.stderr, "cpu: no device line: %r" % cpu.stderr)
        ref = probs(cpu.stdout)
        check(len(ref) == 3, "cpu: %d results" % len(ref))

        bad = run(genred, *base, "--device", "tpu", *files)
        check(bad.returncode == 2 and b"auto, cpu or cuda" in bad.stderr,
              "bad device: exit %d %r" % (bad.returncode, bad.stderr))

        auto = run(genred, *base, "--device", "auto", *files)
        cuda = run(genred, *base, "--device", "cuda", *files)
        check(auto.returncode == 0, "auto: exit %d %r" % (auto.returncode, auto.stderr))
        has_gpu = b"genred: device: cuda (" in auto.stderr
        if not has_gpu:
            print("no usable GPU here: checking the CPU-only behaviour")
            check(b"genred: device: cpu (no usable GPU: " in auto.stderr,
                  "auto without GPU: %r" % auto.stderr)
            check(probs(auto.stdout) == ref, "auto without GPU differs from cpu")
            check(cuda.returncode == 2 and b"--device cuda: cannot use the GPU: " in cuda.stderr
                  and not cuda.stdout, "cuda without GPU: exit %d %r" % (cuda.returncode,
                                                                        cuda.stderr))
        else:
            print("GPU:", auto.stderr.decode().strip())
            for name, r in (("auto", auto), ("cuda", cuda)):
                check(r.returncode == 0, "%s: exit %d %r" % (name, r.returncode, r.stderr))
                got = probs(r.stdout)
                check(got.keys() == ref.keys(), "%s: other files" % name)
                worst = max(abs(got[f][k] - ref[f][k]) for f in ref for k in ref[f])
                print("%s vs cpu: max |dp| %.2g" % (name, worst))
                check(worst <= 2e-6 + 1e-4, "%s differs from cpu by %g" % (name, worst))
            fail = run(genred, *base, "--device", "cuda", "--batch", "1", *files,
                       env={"GENRED_CUDA_FAIL": "1"})
            check(fail.returncode == 0, "forced failure: exit %d" % fail.returncode)
            check(probs(fail.stdout) == ref, "forced failure: not the CPU's output")
            n = fail.stderr.count(b"scoring on the CPU from now on")
            check(n == 1, "forced failure: %d log lines, want 1: %r" % (n, fail.stderr))
    if failures:
        print("%d failures" % failures)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
