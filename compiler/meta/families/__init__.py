"""Task families p(T) (`family.source`): what a task is and how episodes are drawn from it.

One module per family: its params model, its `polytask check` rules, a cheap TensorFlow-free
description (`describe`, used by `polytask plan`) and an episode sampler (`build`, tf.data).
"""
from polytask.compiler.meta.families.base import EpisodeSampler, FamilyDescription, TaskFamily, get_family

__all__ = ["EpisodeSampler", "FamilyDescription", "TaskFamily", "get_family"]
