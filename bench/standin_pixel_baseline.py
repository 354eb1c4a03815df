"""How hard is a scenario without a network? Joint-training pixel baselines.

Trains 1-nearest-neighbour and logistic regression on 16x16 colour thumbnails
of every training batch at once (the cumulative upper bound of a pixel model)
and tests on the held-out set. A sanity check of a stream's difficulty, not a
continual-learning result.

    python bench/standin_pixel_baseline.py core50-standin/ni
"""
from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np


def thumbnails(images: np.ndarray, side: int = 16) -> np.ndarray:
    n, h, w, c = images.shape
    pooled = images.reshape(n, side, h // side, side, w // side, c).mean((2, 4))
    return pooled.reshape(n, -1) / 255.0


def main(argv=None) -> int:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    from pulptrain import scenarios

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", default="core50-standin/ni")
    parser.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    sc = scenarios.get(args.name, root=args.root)
    train_x, train_y = scenarios.cumulative(sc, sc.num_batches)
    test_x, test_y = sc.test_set()
    train_f, test_f = thumbnails(train_x), thumbnails(test_x)
    knn = KNeighborsClassifier(1).fit(train_f, train_y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        logistic = LogisticRegression(max_iter=300).fit(train_f, train_y)
    print(f"{sc.name}: {len(train_y)} training / {len(test_y)} test images, {sc.num_classes} classes "
          f"(chance {1 / sc.num_classes:.3f})")
    print(f"1-NN on thumbnails:                {np.mean(knn.predict(test_f) == test_y):.3f}")
    print(f"logistic regression on thumbnails: {np.mean(logistic.predict(test_f) == test_y):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
