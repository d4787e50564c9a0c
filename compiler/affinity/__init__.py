"""Inter-task affinity (TAG, Fifty et al. 2021): the lookahead measurement and the grouping search.

`grouping` is plain NumPy (no TensorFlow); `lookahead` builds the TensorFlow graph that
measures the affinities during a multi-task run (driven by `polytask.runtime.affinity`).
"""
