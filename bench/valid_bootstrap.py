#!/usr/bin/python3
"""How precisely a labelled set measures balanced accuracy: a stratified bootstrap (each
genre's files redrawn with replacement) of the mean balanced accuracy of one or more models,
from their `genred classify --json` outputs on the same files (the label is the folder name).
Prints the mean, the bootstrap standard deviation and 95 % interval, and each genre's recall.
    bench/valid_bootstrap.py [--draws N] [--seed S] CLASSIFY.json...
e.g. for each seed model:  genred classify --json --model seedS.safetensors \\
         $(sed 's|^|../shared/data/gtzan/|' ../shared/data/gtzan/valid.txt) > pS.json"""
import argparse
import json
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("json", nargs="+")
    a = ap.parse_args()
    runs = []
    for f in a.json:
        d = {}
        for line in open(f):
            j = json.loads(line)
            if "label" in j:
                d[j["path"]] = j["label"]
        runs.append(d)
    paths = sorted(runs[0])
    if not paths or any(sorted(r) != paths for r in runs):
        sys.exit("valid_bootstrap: the files hold results for different tracks (or none)")
    truth = [os.path.basename(os.path.dirname(p)).lower() for p in paths]
    genres = sorted(set(truth))
    y = np.array([genres.index(t) for t in truth])
    pred = np.array([[genres.index(r[p]) if r[p] in genres else -1 for p in paths] for r in runs])

    def balanced(idx):
        yy = y[idx]
        return np.mean([np.mean([(pr[idx][yy == g] == g).mean() for g in np.unique(yy)])
                        for pr in pred])

    rng = np.random.default_rng(a.seed)
    members = [np.where(y == g)[0] for g in range(len(genres))]
    draws = np.array([balanced(np.concatenate([rng.choice(m, len(m)) for m in members]))
                      for _ in range(a.draws)])
    lo, hi = np.percentile(draws, [2.5, 97.5])
    print(f"{len(paths)} tracks, {len(runs)} model(s): mean balanced accuracy "
          f"{balanced(np.arange(len(y))):.3f}; bootstrap ({a.draws} draws) sd {draws.std():.3f}, "
          f"95 % interval {lo:.3f}-{hi:.3f}")
    for g, name in enumerate(genres):
        rec = np.mean([(pr[y == g] == g).mean() for pr in pred])
        print(f"  {name:<12} {len(members[g]):4d} tracks  recall {rec:.3f}")


if __name__ == "__main__":
    main()
