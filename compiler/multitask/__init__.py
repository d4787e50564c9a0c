"""Lowering of multi-task specs (pooled and hard sharing) to a TensorFlow `Program`."""
