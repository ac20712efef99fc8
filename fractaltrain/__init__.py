"""fractaltrain: render the neural-network trainability fractal.

Every pixel of an image is a pair of training hyperparameters; the same small
network is trained at every pixel in float64 and the pixel is coloured by
whether (and how fast) training converged or diverged.  See README.md.

Importing the package has no side effects: numba kernels are compiled lazily
the first time they are called.
"""

__version__ = "0.1.0"
