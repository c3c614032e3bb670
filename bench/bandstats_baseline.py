#!/usr/bin/python3
"""A non-CNN baseline on the shared GTZAN lists, and whether it adds to the CNN: an L2-penalised
logistic regression (class-balanced, fitted by L-BFGS) on hand-made statistics of each 4 s window
(per-band mean and spread of the dB mel, mean absolute change per band, spectral-flux mean,
spread and autocorrelation over 39 lags), windows averaged per file as `genred eval` does.
With --cnn, the per-file probabilities of CNN models (`genred classify --json --model M
FILES...` on the valid files) are scored alone and blended with the baseline's.

usage: bench/bandstats_baseline.py [--data DIR] [--cache F] [--cnn CLASSIFY.json ...]
Prints valid balanced accuracy per penalty, then per blend. Exit 77 when ../shared is missing.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import explore_twin as twin  # noqa: E402


def window_features(m):
    d = twin.to_db(m)
    dd = np.diff(d, axis=1)
    flux = np.maximum(dd, 0).mean(0)
    f = flux - flux.mean()
    ac = np.correlate(f, f, "full")[len(f) - 1:]
    ac = ac / (ac[0] + 1e-9)
    lags = np.zeros(40)
    lags[:min(40, len(ac))] = ac[:40]
    return np.concatenate([d.mean(1), d.std(1), np.abs(dd).mean(1), [flux.mean(), flux.std()],
                           lags[1:]])


def balanced(prob, y):
    pred = prob.argmax(1)
    return np.mean([(pred[y == g] == g).mean() for g in sorted(set(y))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "gtzan"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/genred/twin-mels.npz"))
    ap.add_argument("--cnn", nargs="*", default=[], metavar="CLASSIFY.json")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.data, "train.txt")):
        print(f"skip: {a.data} missing (no shared data in this clone)")
        sys.exit(77)
    import torch
    torch.set_num_threads(1)
    mels = twin.load_mels(a.data, a.cache)

    def part(name):
        x, y, paths = [], [], []
        for k in sorted(mels):
            if k.startswith(name + "|"):
                x.append(np.stack([window_features(w) for w in twin.windows(mels[k])]))
                y.append(twin.GENRES.index(k.split("/")[-2]))
                paths.append(os.path.realpath(os.path.join(a.data, k.split("|", 1)[1])))
        return x, np.array(y), paths
    xt, yt, _ = part("train")
    xv, yv, pv = part("valid")
    mu = np.concatenate(xt).mean(0)
    sd = np.concatenate(xt).std(0) + 1e-6
    rows = torch.tensor(np.concatenate([(x - mu) / sd for x in xt]), dtype=torch.float32)
    labels = torch.tensor(np.concatenate([[l] * len(x) for x, l in zip(xt, yt)]))
    weight = torch.tensor(twin.balanced_window_weights([len(x) for x in xt], yt),
                          dtype=torch.float32)
    cnn = []
    for f in a.cnn:
        d = {j["path"]: j["probabilities"] for j in map(json.loads, open(f))}
        cnn.append(np.array([[d[p][g] for g in twin.GENRES] for p in pv]))
    for penalty in (1e-4, 1e-3, 1e-2, 1e-1):
        torch.manual_seed(0)
        lin = torch.nn.Linear(rows.shape[1], 10)
        opt = torch.optim.LBFGS(lin.parameters(), max_iter=500)

        def closure():
            opt.zero_grad()
            ce = torch.nn.functional.cross_entropy(lin(rows), labels, reduction="none")
            loss = (ce * weight).sum() + penalty * (lin.weight ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        with torch.no_grad():
            prob = np.array([torch.softmax(lin(torch.tensor((x - mu) / sd, dtype=torch.float32)),
                                           1).mean(0).numpy() for x in xv])
        line = f"penalty {penalty:g}: valid balanced {balanced(prob, yv):.3f}"
        if cnn:
            alone = np.mean([balanced(c, yv) for c in cnn])
            b5 = np.mean([balanced(0.5 * c + 0.5 * prob, yv) for c in cnn])
            b3 = np.mean([balanced(0.7 * c + 0.3 * prob, yv) for c in cnn])
            line += (f"; {len(cnn)} CNN models alone {alone:.3f}, blended 0.5 {b5:.3f}, "
                     f"0.3 {b3:.3f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
