"""``fractaltrain explore``: a local web page to pan and zoom into a config.

:mod:`~fractaltrain.explore.server` serves the page and a JSON view API,
:mod:`~fractaltrain.explore.engine` computes views through the same kernel
and tile store as ``render``, :mod:`~fractaltrain.explore.params` validates
requests, and :mod:`~fractaltrain.compute.curve` retrains one pixel step by
step for its training curve.  Importing this package starts nothing.
"""
