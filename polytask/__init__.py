"""polytask: a declarative task-spec compiler and runtime for multi-task and meta-learning.

Layers (data flows one way):
    polytask.spec      YAML text -> validated, typed Spec (never imports TensorFlow)
    polytask.compiler  Spec -> Plan -> TensorFlow program
    polytask.runtime   run the program: checkpoints, logs, evaluation, export
"""
__version__ = "0.1.0"
