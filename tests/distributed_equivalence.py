"""Child process for tests/test_distribute_variants.py: one device vs mirrored, many programs.

    POLYTASK_LOGICAL_CPUS=2 python tests/distributed_equivalence.py STEPS VARIANT...

Both strategies live in one process (the CPU is split into 2 logical devices first), so
each variant of the distribution test specs is compiled twice -- under
`OneDeviceStrategy` and under `MirroredStrategy` over both logical CPUs -- and trained
for STEPS steps. Prints one JSON object: {variant: [one-device losses, mirrored losses]}.
Variants exercise the code paths that talk across replicas (GradNorm's gradient norms,
PCGrad's per-task gradients, meta-learning algorithms' meta-gradients).
"""
from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

import yaml

SPECS = Path(__file__).resolve().parent / "specs" / "distribute"


def variant(name: str) -> dict:
    kind, _, option = name.partition(":")
    if kind == "weighting":
        spec = yaml.safe_load((SPECS / "hard.yaml").read_text())
        # "mgda.upper_bound+uncertainty": each part is a weighting, ".flag" sets a boolean param.
        spec["training"]["weighting"] = [
            {part.split(".")[0]: {flag: True for flag in part.split(".")[1:]}} for part in option.split("+")]
    elif kind == "pooled":
        spec = yaml.safe_load((SPECS / "hard.yaml").read_text())
        spec["structure"] = {"sharing": "pooled", "descriptor": option,
                             "model": [{"dense": {"units": 16, "activation": "tanh"}}]}
    elif kind == "sharing":  # a soft-sharing pattern, with PCGrad's per-task gradients on its shared part
        spec = yaml.safe_load((SPECS / "hard.yaml").read_text())
        layers = [{"dense": {"units": 8, "activation": "tanh"}}]
        spec["structure"] = {
            "mmoe": {"experts": {"count": 3, "layers": layers}},
            "dselect_k": {"experts": {"count": 3, "layers": layers}, "k": 2, "entropy_weight": 0.1},
            "ple": {"experts": {"shared": 1, "per_task": 1, "layers": layers}, "levels": 2},
            "cross_stitch": {"trunk": layers * 2},
        }[option] | {"sharing": option, "head": layers}
        spec["training"]["weighting"] = ["pcgrad"]
    elif kind == "meta":
        spec = yaml.safe_load((SPECS / "sinusoid.yaml").read_text())
        spec["structure"]["algorithm"] = option
        if option == "metasgd":  # learned step sizes are evaluated for the trained steps only (PT212)
            spec["structure"]["inner"].pop("eval_steps", None)
    else:
        raise SystemExit(f"unknown variant {name}")
    return copy.deepcopy(spec)


def _trajectory_value(values: dict) -> float:
    """The sum of the per-task losses (`loss/<task>`), else the loss: some weightings (STCH,
    DB-MTL) make the weighted total constant by construction, the task losses still move."""
    tasks = [v for k, v in values.items() if k.startswith("loss/")]
    return float(sum(tasks)) if tasks else float(values["loss"])


def main(argv: list[str]) -> None:
    steps, names = int(argv[0]), argv[1:]
    from polytask.runtime.strategy import create_strategy

    one_device = create_strategy("one_device")
    import tensorflow as tf

    from polytask.compiler.compile import compile_program
    from polytask.spec.loader import load_spec

    mirrored = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    assert mirrored.num_replicas_in_sync == 2, "set POLYTASK_LOGICAL_CPUS=2"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = Path(tmp) / f"{len(results)}.yaml"
            path.write_text(yaml.safe_dump(variant(name)))
            loaded = load_spec(str(path))
            results[name] = []
            for strategy in (one_device, mirrored):
                program = compile_program(loaded, strategy=strategy, seed=loaded.spec.seed,
                                          steps=loaded.spec.training.steps)
                results[name].append([_trajectory_value(program.train_step()) for _ in range(steps)])
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
