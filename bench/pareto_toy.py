"""The two-objective toy of CAGrad (Liu et al. 2021, Fig. 1), run with every registered weighting.

The objectives (as in the CAGrad, Nash-MTL and FAMO repositories' toy, FAMO's version with
the first loss scaled by 0.1) are functions of x in R^2 whose Pareto set is the segment
x2 = -8.3552, x1 in [-7, 7]. From each of the papers' five initial points, x is trained with
Adam (learning rate 1e-3) on the chain of one weighting method, exactly as the polytask
program uses it: `weigh` gives task weights, methods with per-task gradients get the two
objectives' gradients on x ([2, 2]) and combine them, stateful methods update their state,
FAMO sees the losses after each step. The losses handed to the methods are shifted by
21 x scale_i (FAMO's lower bounds L*), so they are positive and log-based methods are
defined; the shift changes no gradient. Methods that need a validation split are skipped.

Writes a PNG of the trajectories in objective space (one panel per method, the Pareto front
in grey) and a Markdown table of the final distance to the front (objective space), per
initial point.

    python bench/pareto_toy.py [--steps 50000] [--methods gls,famo] [--out bench/out]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from polytask.compiler.weighting import StepInputs, WeightingChain, WeightingContext  # noqa: E402
from polytask.spec.models import Weighting  # noqa: E402
from polytask.spec.registry import WEIGHTINGS, load_all  # noqa: E402

INITS = [(-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)]
SCALE = (0.1, 1.0)  # the first objective is scaled by 0.1 (FAMO's toy)
SHIFT = (21.0 * SCALE[0], 21.0 * SCALE[1])
LOWER = 0.000005
FRONT_X2 = -8.3552
PERIOD = 100  # steps per averaging period (DWA, STCH), the toy's "epoch"
REACHED = 0.05  # final objective-space distance below which a run counts as on the front


def objectives(x, xp=tf):
    """The CAGrad toy's two objectives at x [..., 2] (tf or np)."""
    x1, x2 = x[..., 0], x[..., 1]
    tanh, absolute, maximum = xp.tanh, xp.abs, xp.maximum
    log = tf.math.log if xp is tf else np.log
    f1 = log(maximum(absolute(0.5 * (-x1 - 7) - tanh(-x2)), LOWER)) + 6
    f2 = log(maximum(absolute(0.5 * (-x1 + 3) + tanh(-x2) + 2), LOWER)) + 6
    c1 = maximum(tanh(x2 * 0.5), 0.0)
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    c2 = maximum(tanh(-x2 * 0.5), 0.0)
    f1 = (f1 * c1 + f1_sq * c2) * SCALE[0]
    f2 = (f2 * c1 + f2_sq * c2) * SCALE[1]
    return xp.stack([f1, f2], axis=-1)


def pareto_front(points: int = 20000) -> np.ndarray:
    x1 = np.linspace(-7, 7, points)
    return objectives(np.stack([x1, np.full_like(x1, FRONT_X2)], axis=-1), np)


def runnable(name: str) -> bool:
    transform = WEIGHTINGS.get(name)
    return not getattr(transform, "needs_validation", False)


class ToyRun:
    """One weighting method's chain, Adam and x on the toy, compiled once and reset per initial point."""

    def __init__(self, name: str, steps: int, seed: int = 0, jit: bool = True):
        chain = WeightingChain.create([Weighting.model_validate(name)],
                                      WeightingContext(["f1", "f2"], np.ones(2, np.float32), period=PERIOD,
                                                       seed=seed, shared_sizes=(2,)))
        self.x = x = tf.Variable(np.zeros(2, np.float32))
        extra_vars = chain.trainable_variables()
        optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3)
        optimizer.build([x] + extra_vars)
        self.state = [v for state in chain.states for v in list(getattr(state, "variables", []) or [])]
        self.state += list(optimizer.variables)
        self.snapshot = [v.numpy() for v in self.state]
        shift = tf.constant(SHIFT, tf.float32)

        def body(k, trajectory):
            trajectory = trajectory.write(k, tf.convert_to_tensor(x))
            with tf.GradientTape(persistent=True) as tape:
                losses = objectives(tf.convert_to_tensor(x)) + shift
                inputs = StepInputs(losses=losses, observed=tf.stop_gradient(losses), present=tf.ones(2, tf.bool),
                                    step=tf.cast(k, tf.int64))
                weights, extra = chain.weigh(inputs, tf.ones(2))
                total = tf.reduce_sum(weights * losses) + extra
                terms = tf.unstack(weights * losses)
                raw = tf.unstack(losses)
            rows = tf.stack([tape.gradient(t, x) for t in terms])
            inputs.grad_norms = tf.stack([tf.norm(tape.gradient(t, x)) for t in raw])
            extra_grads = tape.gradient(total, extra_vars) if extra_vars else []
            del tape
            rows = chain.transform_gradients(rows, inputs) if chain.needs_task_gradients else rows
            chain.update(inputs, weights)
            optimizer.apply_gradients(zip([tf.reduce_sum(rows, axis=0)] + list(extra_grads), [x] + extra_vars))
            if chain.needs_losses_after_step:
                chain.after_step(inputs, objectives(tf.convert_to_tensor(x)) + shift)
            return k + 1, trajectory

        @tf.function(autograph=False, jit_compile=jit)
        def loop():
            trajectory = tf.TensorArray(tf.float32, size=steps + 1)
            _, out = tf.while_loop(lambda k, _: k < steps, body, (tf.constant(0), trajectory))
            return out.write(steps, tf.convert_to_tensor(x)).stack()

        self.loop = loop

    def __call__(self, init) -> np.ndarray:
        """The trajectory [steps + 1, 2] of x from `init` (fresh method state and optimizer)."""
        for variable, value in zip(self.state, self.snapshot):
            variable.assign(value)
        self.x.assign(np.array(init, np.float32))
        return self.loop().numpy()


def run_all(name: str, steps: int) -> list[np.ndarray]:
    """Trajectories from every initial point; XLA-compiled when the method's ops allow it (faster)."""
    try:
        toy = ToyRun(name, steps, jit=True)
        first = toy(INITS[0])
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        toy = ToyRun(name, steps, jit=False)
        first = toy(INITS[0])
    return [first] + [toy(init) for init in INITS[1:]]


def distance_to_front(point, front) -> float:
    return float(np.min(np.linalg.norm(front - objectives(point, np), axis=1)))


def plot(results: dict, front: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    cols = min(5, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ax.plot(front[:, 0], front[:, 1], "-", linewidth=5, color="#9a9aa0", zorder=1)
        for trajectory in results[name]:
            f = objectives(trajectory, np)
            colors = matplotlib.cm.magma_r(np.linspace(0.1, 0.6, len(f)))
            ax.scatter(f[::20, 0], f[::20, 1], color=colors[::20], s=2, zorder=2)
            ax.scatter(f[0, 0], f[0, 1], color="k", s=30, zorder=3)
        ax.set_title(name, fontsize=12)
        ax.set_xlim(-2.3, 1.2)
        ax.set_ylim(-21.5, 12)
        ax.tick_params(labelsize=7)
    fig.suptitle("CAGrad toy: trajectories in objective space (L1, L2); Pareto front in grey", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110, facecolor="white")
    plt.close(fig)


def table(distances: dict) -> str:
    head = "| method | " + " | ".join(f"init {i + 1} {tuple(p)}" for i, p in enumerate(INITS)) + " | mean | on front |"
    lines = [head, "|" + "---|" * (len(INITS) + 3)]
    for name, values in distances.items():
        reached = sum(v < REACHED for v in values)
        lines.append(f"| `{name}` | " + " | ".join(f"{v:.3f}" for v in values)
                     + f" | {np.mean(values):.3f} | {reached}/{len(values)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50000)
    parser.add_argument("--methods", default="", help="comma-separated names (default: every registered weighting)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    load_all()
    names = [n for n in (args.methods.split(",") if args.methods else WEIGHTINGS.names()) if runnable(n)]
    args.out.mkdir(parents=True, exist_ok=True)
    front = pareto_front()
    results, distances = {}, {}
    for name in names:
        start = time.perf_counter()
        results[name] = run_all(name, args.steps)
        distances[name] = [distance_to_front(t[-1], front) for t in results[name]]
        print(f"{name:>12}: " + " ".join(f"{d:7.3f}" for d in distances[name])
              + f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    plot(results, front, args.out / "pareto_toy.png")
    text = (f"{args.steps} Adam steps (learning rate 1e-3) from each initial point; final distance to the "
            f"Pareto front in objective space; 'on front': distance < {REACHED}.\n\n" + table(distances) + "\n")
    (args.out / "pareto_toy.md").write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.out / 'pareto_toy.png'} and {args.out / 'pareto_toy.md'}")


if __name__ == "__main__":
    main()
