#!/usr/bin/python3
"""train_speed: training windows/s of genred and of its PyTorch twin (tests/nn/twin.py: the same
net, batch, input width and thread count, AdamW) in one run, and their ratio.
  /usr/bin/python3 bench/train_speed.py BUILD/tests/nn/nn_train_speed [--threads 2]
      [--steps 5] [--config seed-cnn:32:173 --config fcn:32:64 ...] [--forward]
--forward also times inference (nn_forward vs torch eval under no_grad) at batch 6 and 64.
Numbers only mean something on an otherwise idle machine; compare the ratio, not windows/s."""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "nn"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from make_model import arch_tensors  # noqa: E402
from twin import build  # noqa: E402


def torch_speed(arch, batch, frames, steps, train):
    meta = {"arch": arch, "bn_eps": "0.001", "input_scale": "0.0125", "input_shift": "40"}
    if arch == "fcn":
        meta["fcn_channels"] = "32,64,128,128"
    ts = dict(arch_tensors(arch, 10, 64, 173, [32, 64, 128, 128], np.random.default_rng(1)))
    net = build(ts, meta)
    x = torch.from_numpy(np.random.default_rng(2).uniform(-80, 0, (batch, 64, frames))
                         .astype(np.float32))
    y = torch.zeros(batch, 10)
    y[torch.arange(batch), torch.arange(batch) % 10] = 1.0
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    if train:
        net.train()
    else:
        net.eval()
    t0 = 0.0
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        if train:
            opt.zero_grad()
            loss = -(y * F.log_softmax(net(x), dim=1)).sum(1).mean()
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                F.softmax(net(x), dim=1)
    return steps * batch / (time.perf_counter() - t0)


def genred_speed(binary, arch, batch, frames, steps, train, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "train" if train else "forward", arch, str(batch), str(frames),
                          str(steps)], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--config", action="append")
    ap.add_argument("--forward", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    configs = a.config or ["seed-cnn:32:173", "fcn:32:64", "fcn:32:173"]
    print(f"threads {a.threads}, torch {torch.__version__}")
    print(f"{'mode':8s} {'arch':9s} {'batch':>5s} {'frames':>6s} {'genred w/s':>11s} "
          f"{'torch w/s':>10s} {'ratio':>6s}")
    rows = [("train", c) for c in configs]
    if a.forward:
        rows += [("forward", f"{arch}:{b}:173") for arch in ("seed-cnn", "fcn") for b in (6, 64)]
    for mode, c in rows:
        arch, batch, frames = c.split(":")
        batch, frames = int(batch), int(frames)
        train = mode == "train"
        g = genred_speed(a.binary, arch, batch, frames, a.steps, train, a.threads)
        t = torch_speed(arch, batch, frames, a.steps, train)
        print(f"{mode:8s} {arch:9s} {batch:5d} {frames:6d} {g:11.1f} {t:10.1f} {g / t:6.2f}x")


if __name__ == "__main__":
    main()
