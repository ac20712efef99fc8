"""The render stage: one still image from a config, and what colours it.

:mod:`.still` (render one image, resumable and sharded), :mod:`.ensemble` (seed
ensembles: P(converge)), :mod:`.colour` (palettes and rank equalisation, applied
late to raw values), :mod:`.outputs` (the PNG, npz and sidecar, and the name claim).
"""
