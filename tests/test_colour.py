"""Colour: sign-preserving equalisation and palettes."""

import numpy as np
import pytest

from fractaltrain.render import colour


def test_equalize_keeps_sign_and_spreads_ranks():
    v = np.array([-100.0, -10.0, -1.0, 0.0, 2.0, 5.0, 1e6, np.nan])
    e = colour.equalize(v)
    np.testing.assert_allclose(e[:3], [-1.0, -0.625, -0.25], atol=1e-3)
    np.testing.assert_allclose(e[3:7], [0.25, 0.5, 0.75, 1.0], atol=1e-3)
    assert np.isnan(e[7])


def test_spectral_converged_blue_green_diverged_red_yellow():
    v = np.array([[-50.0, -1.0, 1.0, 50.0]])
    rgb = colour.colourize(v).astype(int)[0]
    slow_conv, fast_conv, fast_div, slow_div = rgb
    assert slow_conv[2] > slow_conv[0]  # blue
    assert fast_conv[1] > fast_conv[0] - 40  # pale green-yellow
    assert slow_div[0] > slow_div[2]  # red
    assert fast_div[0] > 200 and fast_div[1] > 120  # pale orange-yellow
    assert colour.to_image(np.array([[1.0], [-1.0]]))[0, 0, 0] < colour.to_image(np.array([[1.0], [-1.0]]))[1, 0, 0]


def test_crossfade_is_continuous_in_w():
    rng = np.random.default_rng(0)
    a = np.concatenate([np.full(500, 1.000029), 1 + rng.random(500) * 1e-5, -rng.random(300)])
    b = np.concatenate([1 + rng.random(1000) * 3, -rng.random(300) * 10])
    ra, rb = colour.make_reference(a), colour.make_reference(b)
    e0 = colour.equalize(a, ra)
    e1 = colour.equalize(a, colour.CrossFade(ra, rb, 0.01))
    assert np.abs(e0 - e1).max() <= 0.02 + 1e-12


def test_unknown_palette():
    with pytest.raises(ValueError, match="palette"):
        colour.palette_table("rainbow")
    for name in colour.PALETTES:
        assert colour.palette_table(name).shape == (1024, 3)
