"""Write digits_multitask.csv: scikit-learn's bundled digits with three targets.

    python examples/data/make_digits_multitask.py

Columns: p0..p63 (pixels 0..16), `digit` (0-9, kept on only 15% of the rows: the other
85% are left empty, i.e. missing), `odd` (digit is odd, every row) and `high` (digit >= 5,
every row). The question the example asks: does learning the fully labelled coarse tasks
together with the sparsely labelled digit task help the digit task? Deterministic (seed 0).
"""
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

LABELLED_DIGITS = 0.15


def main() -> None:
    digits = load_digits()
    rng = np.random.default_rng(0)
    keep = rng.random(len(digits.target)) < LABELLED_DIGITS
    out = Path(__file__).with_name("digits_multitask.csv")
    with out.open("w", encoding="utf-8") as handle:
        handle.write(",".join([f"p{i}" for i in range(64)] + ["digit", "odd", "high"]) + "\n")
        for pixels, digit, labelled in zip(digits.data.astype(int), digits.target, keep):
            cells = [str(v) for v in pixels] + [str(digit) if labelled else "", str(digit % 2), str(int(digit >= 5))]
            handle.write(",".join(cells) + "\n")
    print(f"wrote {out} ({len(keep)} rows, {int(keep.sum())} with a digit label)")


if __name__ == "__main__":
    main()
