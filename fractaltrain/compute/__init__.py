"""The compute stage: the one door through which pixels are trained.

Everything that trains pixels (render, zoom, locate, the noise guard, explore,
ensembles) goes through :mod:`.device` (CPU kernel or CUDA) and, for grids of
tiles, :mod:`.landscape` (fill, resume, shard) and :mod:`.store` (the tile
store, atomic and verified); :mod:`.jobs` records sharded jobs.  The kernels
themselves (:mod:`.kernel`, :mod:`.gpu`) are imported by nothing outside it.
"""
