"""Loss weighting and gradient surgery as small composable transforms (optax-like).

The spec's `training.weighting` is a list; the transforms run in order. Each one is

    state = transform.init(context)                         # variables, under the strategy scope
    weights, extra = transform.weigh(state, losses, ...)    # per-task loss weights (+ a loss term)
    transform.update(state, ...)                            # after the gradients (histories, GradNorm)
    grads = transform.transform_gradients(state, grads)     # per-task shared gradients [T, P] (PCGrad)

Gradient methods say what they need. `needs_task_gradients` ones get the per-task Jacobian
[T, P] of the shared parameters, computed without a loop over tasks (one batched backward
pass for hard-sharing trunks, `polytask.compiler.multitask.task_gradients`; else one
`tape.jacobian` with pfor) and all-reduced across replicas before the transform runs, so every replica combines
the GLOBAL per-task gradients. A transform whose update is a combination sum_i a_i g_i
fixed by the Gramian G = J J^T alone (MGDA, CAGrad, Nash-MTL, IMTL-G, Aligned-MTL,
UPGrad) sets `needs = "gramian"` and implements `combine(state, gramian, inputs) -> a`.
A transform may work on the gradients of the shared representation instead of the shared
parameters (`gradient_space(params) == "representation"`, e.g. `rep_grad: true`, MGDA-UB,
GradDrop): the step then differentiates the T losses w.r.t. the trunk output h [B, d],
combines, and backpropagates the single combined representation gradient through the
trunk once. In that space replicas hold disjoint examples, so the global Gramian is the
SUM of the replicas' Gramians (a T x T all-reduce instead of all-reducing [T, P]); full
representation gradients are all-gathered along the batch for transforms that need them.

so L = sum_i weights_i * L_i + extra. Starting weights are the tasks' declared `weight`s
(the formal L = sum_i w_i L_i); `equal` leaves them as they are, `static` replaces them.
Everything is expressed over per-task vectors [T], so equal/static/uncertainty/dwa add no
graph size per task; gradnorm and pcgrad need one gradient per task (meant for a few tasks).

A transform's descriptor also owns its `Params` model and its TensorFlow-free plan facts:
`multi_task` (it balances several tasks, so one task makes it pointless) and
`spec_problems` (cross-field checks such as static weights naming undeclared tasks), which
`polytask check` reports with positions. Adding a transform is adding one module here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence

from polytask.spec.registry import WEIGHTINGS, Concept


@dataclass
class WeightingContext:
    """What a transform may know when it creates its state."""

    tasks: list[str]
    base_weights: Any  # the tasks' declared weights, NumPy float32 [T]
    params: Any = None  # the transform's params from the spec (pydantic model or dict)
    period: int = 50  # steps per averaging period (DWA), training.log_every
    seed: int = 0
    shared_sizes: tuple = ()  # sizes of the shared variables, in the order of the [T, P] columns

    @property
    def shared_size(self) -> Optional[int]:
        """P, the length of a flattened per-task shared gradient (stateful surgery), when known."""
        return sum(self.shared_sizes) if self.shared_sizes else None

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)


@dataclass
class StepInputs:
    """What a transform sees in one training step (per replica; tensors).

    losses:   per-task loss contributions of this replica, differentiable [T]
              (summed over replicas they are the global per-task means L_i).
    observed: the global per-task means L_i, no gradient [T] (0 for tasks absent from the batch).
    present:  bool [T], the task had labelled examples in this global batch.
    step:     the optimizer's iteration count (int64 scalar).
    replicas: number of replicas in sync (a Python int).
    """

    losses: Any
    observed: Any
    present: Any
    step: Any
    replicas: int = 1
    grad_norms: Any = None  # [T] norms of dL_i/dW for the last shared weight (needs_gradient_norms)
    representation: Any = None  # [B, d] shared representation (global batch) in representation space
    weights: Any = None  # [T] the chain's final task weights, set by WeightingChain.weigh (the gradients are of weights_i L_i)
    sample_gradients: Any = None  # [S, T, P] per-task gradients on S disjoint slices of the batch (gradient_samples)


class Transform(Concept):
    """Base of every weighting descriptor: no reweighting and no gradient surgery by default."""

    needs_task_gradients: ClassVar[bool] = False
    needs_gradient_norms: ClassVar[bool] = False
    # "gradients": transform_gradients edits the full [T, P] rows; "gramian": the update is
    # sum_i a_i g_i with a = combine(state, G = J J^T, inputs), so G is all the method needs.
    needs: ClassVar[str] = "gradients"
    needs_losses_after_step: ClassVar[bool] = False  # after_step gets the batch's losses at the updated parameters (FAMO)
    needs_validation: ClassVar[bool] = False  # before_step gets a Lookahead over a validation batch (Auto-Lambda)
    gradient_samples: ClassVar[int] = 0  # S > 0: inputs.sample_gradients holds S independent estimates (MoDo, SDMGrad)
    multi_task: ClassVar[bool] = True  # balances several tasks: with one task it does nothing
    reweights: ClassVar[bool] = True  # False for the identity (`equal`): it cannot be combined with others

    def spec_problems(self, params, task_names: list[str]) -> list[tuple[str, tuple, Optional[str]]]:
        """Plan-time problems: (message, path below this weighting's params, hint) each."""
        return []

    def plan_params(self, num_tasks: int) -> Optional[tuple[int, str]]:
        """(parameter count, note) when the transform learns parameters of its own, for `polytask plan`."""
        return None

    def params_of(self, context: WeightingContext):
        """The spec's params for this transform, or its defaults when none were given."""
        return context.params if context.params is not None else self.default_params()

    def init(self, context: WeightingContext):
        """Create and return this transform's state (a tf.Module or Keras layer, or None)."""
        return None

    def weigh(self, state, inputs: StepInputs, weights):
        """Return (weights [T], extra scalar loss). Default: unchanged, no extra term."""
        import tensorflow as tf

        return weights, tf.constant(0.0)

    def update(self, state, inputs: StepInputs, weights) -> None:
        """Update state after the step's gradients (no return)."""

    def uses_task_gradients(self, params) -> bool:
        """Whether this configuration needs per-task gradients (IMTL-L, say, needs only losses)."""
        return self.needs_task_gradients

    #: The boolean parameter that moves this transform onto representation gradients (None:
    #: the transform has one fixed space, declared by `gradient_space`).
    representation_switch: Optional[str] = "rep_grad"

    def gradient_space(self, params) -> str:
        """"parameters" (per-task gradients of the shared weights) or "representation" (of the trunk output)."""
        switch = self.representation_switch
        return "representation" if switch and getattr(params, switch, False) else "parameters"

    def combine(self, state, gramian, inputs: StepInputs):
        """For `needs = "gramian"`: the coefficients a [T] of the update sum_i a_i g_i, from G [T, T]."""
        raise NotImplementedError

    def transform_gradients(self, state, task_gradients, inputs: StepInputs):
        """Per-task gradients of the shared parameters, flattened [T, P] -> [T, P] (summed afterwards)."""
        if self.needs == "gramian":
            import tensorflow as tf

            gramian = tf.matmul(task_gradients, task_gradients, transpose_b=True)
            return self.combine(state, gramian, inputs)[:, None] * task_gradients
        return task_gradients

    def after_step(self, state, inputs: StepInputs, losses_after) -> None:
        """With `needs_losses_after_step`: the same batch's global per-task losses [T] after the update."""

    def before_step(self, state, lookahead) -> None:
        """With `needs_validation`: update state from a `compiler.multitask.lookahead.Lookahead`, before `weigh`."""


_COMPILED_SOLVERS: dict = {}


def run_compiled(solver, *args):
    """`solver(*args)`, XLA-compiled: for the small iterative solves on T x T matrices (MGDA's
    Frank-Wolfe, CAGrad's dual, Nash-MTL, UPGrad; FairGrad's 30 unrolled float64 Newton solves
    were slower compiled). In TensorFlow's executor each of
    their hundreds of loop iterations of tiny ops costs tens of microseconds (CAGrad's 200-step
    dual: 7.4 ms at T = 2); compiled, the loop runs natively (0.36 ms), with the same result
    (bench and numbers: docs/benchmarks.md). Python arguments (iterations, c) are constants of
    the compiled function. A solver must index with tf.gather, not `x[i]` with a tensor i: XLA
    needs slice bounds at compile time, which makes the inputs' values constants and recompiles
    the solver at every step."""
    import tensorflow as tf

    compiled = _COMPILED_SOLVERS.get(solver)
    if compiled is None:
        compiled = _COMPILED_SOLVERS[solver] = tf.function(solver, jit_compile=True, autograph=False)
    return compiled(*args)


def replica_variable(initial, name: str, dtype=None):
    """A non-trained state variable that a replica may assign (every replica computes the same value)."""
    import tensorflow as tf

    return tf.Variable(initial, trainable=False, name=name, dtype=dtype,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


@dataclass
class WeightingChain:
    """The spec's list of transforms with their states, applied in order."""

    transforms: list[Transform]
    states: list[Any]
    names: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    @classmethod
    def create(cls, weighting_specs: Sequence, context: WeightingContext) -> "WeightingChain":
        import dataclasses

        transforms, states, names, params = [], [], [], []
        for spec in weighting_specs:
            transform = WEIGHTINGS.get(spec.kind)
            transforms.append(transform)
            states.append(transform.init(dataclasses.replace(context, params=spec.params)))
            names.append(spec.kind)
            params.append(spec.params if spec.params is not None else transform.default_params())
        return cls(transforms, states, names, params)

    def _configured(self):
        return zip(self.transforms, self.params or [None] * len(self.transforms))

    @property
    def needs_task_gradients(self) -> bool:
        return any(t.uses_task_gradients(p) for t, p in self._configured())

    @property
    def gradient_space(self) -> Optional[str]:
        """Where the chain's gradient transforms work: "parameters", "representation" or None (losses only)."""
        spaces = {t.gradient_space(p) for t, p in self._configured() if t.uses_task_gradients(p)}
        if len(spaces) > 1:
            from polytask.errors import PolytaskError

            raise PolytaskError("these weightings mix per-task gradients of the shared parameters and of the "
                                "shared representation", hint="give every gradient method the same `rep_grad`")
        return spaces.pop() if spaces else None

    @property
    def gramian_transform(self) -> Optional[Transform]:
        """The one gradient transform when it needs only the Gramian (then [T, P] never has to be combined row-wise)."""
        gradient = [t for t, p in self._configured() if t.uses_task_gradients(p)]
        return gradient[0] if len(gradient) == 1 and gradient[0].needs == "gramian" else None

    def combine(self, gramian, inputs: StepInputs):
        transform = self.gramian_transform
        return transform.combine(self.states[self.transforms.index(transform)], gramian, inputs)

    @property
    def needs_gradient_norms(self) -> bool:
        return any(t.needs_gradient_norms for t in self.transforms)

    @property
    def needs_losses_after_step(self) -> bool:
        return any(t.needs_losses_after_step for t in self.transforms)

    @property
    def gradient_samples(self) -> int:
        return max([t.gradient_samples for t in self.transforms], default=0)

    @property
    def needs_validation(self) -> bool:
        return any(t.needs_validation for t in self.transforms)

    @property
    def reweights(self) -> bool:
        """Some transform changes the task weights (reported as weight/<task>)."""
        return any(t.reweights for t in self.transforms)

    def trainable_variables(self) -> list:
        out = []
        for state in self.states:
            out.extend(getattr(state, "trainable_variables", []) or [])
        return list(out)

    def checkpoint_items(self) -> dict[str, Any]:
        import tensorflow as tf

        items = {}
        for i, (name, state) in enumerate(zip(self.names, self.states)):
            if state is None or not list(getattr(state, "variables", [])):
                continue
            holder = tf.Module(name=f"weighting_{name}")
            holder.variables_list = list(state.variables)  # Keras layers do not list children for tf.train.Checkpoint
            items[f"weighting_{i}_{name}"] = holder
        return items

    def weigh(self, inputs: StepInputs, base_weights):
        import tensorflow as tf

        weights, extra = base_weights, tf.constant(0.0)
        for transform, state in zip(self.transforms, self.states):
            weights, term = transform.weigh(state, inputs, weights)
            extra = extra + term
        inputs.weights = tf.stop_gradient(weights)
        return weights, extra

    def update(self, inputs: StepInputs, weights) -> None:
        for transform, state in zip(self.transforms, self.states):
            transform.update(state, inputs, weights)

    def transform_gradients(self, task_gradients, inputs: StepInputs):
        for transform, state in zip(self.transforms, self.states):
            task_gradients = transform.transform_gradients(state, task_gradients, inputs)
        return task_gradients

    def before_step(self, lookahead) -> None:
        for transform, state in zip(self.transforms, self.states):
            if transform.needs_validation:
                transform.before_step(state, lookahead)

    def after_step(self, inputs: StepInputs, losses_after) -> None:
        for transform, state in zip(self.transforms, self.states):
            if transform.needs_losses_after_step:
                transform.after_step(state, inputs, losses_after)
