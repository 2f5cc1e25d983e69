"""Training: ``python -m nbp_ext.train`` (stages in ``__main__``) and the utilities the stages share:
run folders, atomic checkpoints, progress bar, TensorBoard scalars, several-process setup."""
