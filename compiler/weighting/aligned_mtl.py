"""`aligned_mtl`: Aligned-MTL (Senushkin, Patakin, Kuznetsov & Konushin, CVPR 2023,
"Independent Component Alignment for Multi-Task Learning").

The task gradients are replaced by an orthogonal system with equal norms, which makes the
gradient matrix's condition number 1. With the Gramian G = J J^T = V diag(lambda) V^T
(rank r, eigenvalues above lambda_max * T * eps), the aligned gradients are
J_hat = sigma_min V diag(1 / sigma) V^T J with sigma = sqrt(lambda) and sigma_min the
smallest kept one (Alg. 1), and the update is J_hat^T w with w the task weights (here 1:
declared weights already scale the rows), so a = sigma_min V diag(1/sigma) V^T 1.
"""
from pydantic import Field

from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import StrictModel


class AlignedMtlParams(StrictModel):
    rep_grad: bool = Field(False, description='Use gradients w.r.t. the shared representation instead of the shared parameters.')


@WEIGHTINGS.register
class AlignedMtl(Transform):
    """Aligned-MTL (Senushkin et al. 2023): align the task gradients to an equal-norm orthogonal system."""

    name = "aligned_mtl"
    Params = AlignedMtlParams
    needs_task_gradients = True
    needs = "gramian"

    def combine(self, state, gramian, inputs):
        import tensorflow as tf

        eigenvalues, vectors = tf.linalg.eigh(gramian)
        count = tf.cast(tf.shape(gramian)[0], gramian.dtype)
        tolerance = tf.reduce_max(eigenvalues) * count * 1.1920929e-07
        kept = eigenvalues > tolerance
        sigma = tf.sqrt(tf.maximum(eigenvalues, 0.0))
        sigma_min = tf.reduce_min(tf.where(kept, sigma, tf.fill(tf.shape(sigma), float("inf"))))
        inverse = tf.where(kept, 1.0 / tf.where(kept, sigma, 1.0), 0.0)
        projected = tf.linalg.matvec(vectors, tf.reduce_sum(vectors, axis=0) * inverse)  # V diag(1/sigma) V^T 1
        return tf.where(tf.reduce_any(kept), sigma_min * projected, tf.zeros_like(projected))
