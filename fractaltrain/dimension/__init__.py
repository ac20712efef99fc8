"""Box-counting fractal dimension of rendered boundaries.

:mod:`.boxcount` (counts and the estimate), :mod:`.fit` (the least-squares fit
and its interval), :mod:`.inputs` (reading renders, keyframes and masks, verified),
:mod:`.report` (the plot and the JSON).
"""
