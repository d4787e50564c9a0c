"""Task families p(T): what a task is and how episodes are drawn from it.

One module per family, registered by its spec `source:` name (`@register_family`), so
adding a family is adding one file. Each family has a cheap, TensorFlow-free description
(`describe`, used by `polytask plan`) and an episode sampler (`build`, tf.data).
"""
from polytask.compiler.meta.families.base import (
    EpisodeSampler,
    FamilyDescription,
    TaskFamily,
    get_family,
    register_family,
)

__all__ = ["EpisodeSampler", "FamilyDescription", "TaskFamily", "get_family", "register_family"]
