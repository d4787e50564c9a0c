"""Euclidean projection onto the probability simplex, in TensorFlow (MoCo, MoDo, SDMGrad).

Not a weighting: a helper that several weighting modules share. The projection of v is
max(v - theta, 0) with theta from the sorted-cumulative-sum rule (Duchi et al. 2008, Fig. 1).
"""


def project_to_simplex(v):
    """argmin_{w >= 0, sum w = 1} ||w - v||  for v [T]."""
    import tensorflow as tf

    count = tf.shape(v)[0]
    u = tf.sort(v, direction="DESCENDING")
    cumulative = tf.cumsum(u) - 1.0
    index = tf.cast(tf.range(1, count + 1), v.dtype)
    active = tf.cast(u - cumulative / index > 0, tf.int32)
    rho = tf.reduce_sum(active)  # the support size: active entries are a prefix of the sorted ones
    theta = tf.gather(cumulative, rho - 1) / tf.cast(rho, v.dtype)
    return tf.maximum(v - theta, 0.0)
