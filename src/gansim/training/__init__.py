"""One generic training loop for every GAN family, with exact-resume checkpoints.

A family provides an :class:`~gansim.training.objective.Objective` (its networks
and how each named phase computes a loss); :class:`~gansim.training.loop.TrainingLoop`
owns optimisers, ``requires_grad_`` toggling, schedulers, EMA, AMP, stats,
checkpoints and DistributedDataParallel.
"""
