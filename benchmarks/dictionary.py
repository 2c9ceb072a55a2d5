"""The TopK sparse autoencoder (engine/dictionary.py) against scikit-learn's
MiniBatchDictionaryLearning on the same activations: reconstruction error (fraction of variance
unexplained) at equal mean L0, and wall time.

    .venv/bin/python benchmarks/dictionary.py                    # shapes mixed4, 384 features, k = 8
    .venv/bin/python benchmarks/dictionary.py --layer mixed3 --features 256 --k 4

Both learn on the activations of every position of the same probe images; both are measured
on held-out images' positions. scikit-learn codes each sample with orthogonal matching pursuit
limited to k atoms (`transform_n_nonzero_coefs=k`), so its L0 is k exactly, as the SAE's TopK
is at most k: the comparison is at equal sparsity. The SAE's code is one matrix product and a
top-k per sample; OMP solves a small least-squares problem per sample, which it can do better
for a fixed dictionary (it is not restricted to non-negative codes from a linear encoder).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from distillgen import datasets
from distillgen.engine import dictionary as sae
from distillgen.engine.models import load_model
from distillgen.engine.probe import unit_maps
from distillgen.jobs import DictionarySettings


def fvu(samples: np.ndarray, reconstruction: np.ndarray) -> float:
    return float(((samples - reconstruction) ** 2).sum() / ((samples - samples.mean(axis=0)) ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", default="mixed4")
    parser.add_argument("--features", type=int, default=384)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--count", type=int, default=1000, help="training images (and a quarter as many held out)"
    )
    parser.add_argument(
        "--sklearn-samples", type=int, default=0, help="subsample scikit-learn's training set (0: all)"
    )
    args = parser.parse_args()
    from sklearn.decomposition import MiniBatchDictionaryLearning

    model = load_model("shapes")
    cpu = torch.device("cpu")
    train_set = datasets.dataset("shapes", args.count, 0, None)
    test_set = datasets.dataset("shapes", args.count // 4, 1, None)
    units = list(range(model.layers[args.layer].channels))
    x = sae.samples_of(unit_maps(model, args.layer, units, datasets.images(train_set, 64), cpu))
    held = sae.samples_of(unit_maps(model, args.layer, units, datasets.images(test_set, 64), cpu))
    print(
        f"{args.layer}: {x.shape[0]:,} training positions, {held.shape[0]:,} held out, {x.shape[1]} channels"
    )
    rows = []

    settings = DictionarySettings(features=args.features, k=args.k, steps=args.steps)
    start = time.perf_counter()
    weights = sae.train(x, settings)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    error, l0, density = sae.measures(weights, held, args.k)
    encode = time.perf_counter() - start
    rows.append(("TopK SAE (distillgen)", error, l0, int((density == 0).sum()), seconds, encode))

    fit = x
    if args.sklearn_samples and args.sklearn_samples < len(x):
        fit = x[np.random.default_rng(0).choice(len(x), args.sklearn_samples, replace=False)]
    learner = MiniBatchDictionaryLearning(
        n_components=args.features,
        batch_size=1024,
        max_iter=max(1, round(args.steps * 1024 / len(fit))),
        transform_algorithm="omp",
        transform_n_nonzero_coefs=args.k,
        random_state=0,
    )
    centre = fit.mean(axis=0)
    start = time.perf_counter()
    learner.fit(fit - centre)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    codes = learner.transform(held - centre)
    encode = time.perf_counter() - start
    error = fvu(held, codes @ learner.components_ + centre)
    l0 = float((codes != 0).sum(axis=1).mean())
    dead = int(((codes != 0).sum(axis=0) == 0).sum())
    rows.append(("MiniBatchDictionaryLearning + OMP", error, l0, dead, seconds, encode))

    print(f"\n{args.features} features, k = {args.k}, measured on held-out positions\n")
    print(f"| {'method':<34} | FVU    | mean L0 | unused | train s | encode s |")
    print(f"|{'-' * 36}|--------|---------|--------|---------|----------|")
    for name, error, l0, dead, seconds, encode in rows:
        print(f"| {name:<34} | {error:.4f} | {l0:7.2f} | {dead:6d} | {seconds:7.1f} | {encode:8.2f} |")


if __name__ == "__main__":
    main()
