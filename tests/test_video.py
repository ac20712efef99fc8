"""Tests for fractaltrain.zoom.video (MP4 writing) and fractaltrain.zoom.overlay (text).

All videos are tiny (64x48, 12 frames) so the whole file runs in a few
seconds with the ffmpeg bundled in imageio-ffmpeg.
"""

import os
import shutil

import numpy as np
import pytest

from fractaltrain.zoom.overlay import CORNERS, draw_overlay, format_depth, format_range
from fractaltrain.zoom.video import ALLOWED_CODECS, Mp4Writer
from video_reader import available_codecs, read_video

W, H, N, FPS = 64, 48, 12, 24


def gradient_frames(n=N, width=W, height=H):
    """A smooth colour gradient that moves 4 px per frame (codec-friendly)."""
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        frames[i, ..., 0] = (4 * (xx + 4 * i)) % 256
        frames[i, ..., 1] = 255 * yy // (height - 1)
        frames[i, ..., 2] = 128 + 64 * np.sin((xx + yy + 4 * i) / 10.0)
    return frames


def write_video(path, frames, **kwargs):
    with Mp4Writer(path, frames.shape[2], frames.shape[1], **kwargs) as w:
        for f in frames:
            w.write(f)


def leftovers(folder):
    return sorted(f for f in os.listdir(folder) if "partial" in f)


# ----- video ---------------------------------------------------------------


def test_roundtrip_default_codec(tmp_path):
    frames = gradient_frames()
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=FPS)
    assert path.is_file()
    assert leftovers(tmp_path) == []

    got, fps = read_video(path)
    assert got.shape == (N, H, W, 3)
    assert got.dtype == np.uint8
    assert fps == pytest.approx(FPS)
    mad = np.abs(got.astype(np.int16) - frames.astype(np.int16)).mean()
    assert mad < 6, mad


@pytest.mark.parametrize("codec", ALLOWED_CODECS)
def test_each_available_codec(tmp_path, codec):
    if codec not in available_codecs(ALLOWED_CODECS):
        pytest.skip(f"{codec} not in the bundled ffmpeg")
    frames = gradient_frames(n=6)
    path = tmp_path / f"{codec}.mp4"
    write_video(path, frames, fps=FPS, codec=codec)
    got, _ = read_video(path)
    assert got.shape == frames.shape
    assert np.abs(got.astype(np.int16) - frames.astype(np.int16)).mean() < 6


@pytest.mark.parametrize("size", [(63, 48), (64, 47), (1, 1)])
def test_odd_size_rejected(tmp_path, size):
    with pytest.raises(ValueError, match=f"{size[0]}x{size[1]}"):
        Mp4Writer(tmp_path / "odd.mp4", *size)
    assert os.listdir(tmp_path) == []


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="libx264"):
        Mp4Writer(tmp_path / "a.mp4", W, H, codec="vp9")
    with pytest.raises(ValueError, match="crf"):
        Mp4Writer(tmp_path / "a.mp4", W, H, crf=99)
    with pytest.raises(ValueError, match="fps"):
        Mp4Writer(tmp_path / "a.mp4", W, H, fps=0)
    with pytest.raises(FileNotFoundError):
        Mp4Writer(tmp_path / "no" / "a.mp4", W, H)


def test_write_checks_frames(tmp_path):
    path = tmp_path / "a.mp4"
    with pytest.raises(ValueError, match="shape"):
        with Mp4Writer(path, W, H) as w:
            w.write(np.zeros((W, H, 3), np.uint8))  # transposed
    with pytest.raises(ValueError, match="dtype"):
        with Mp4Writer(path, W, H) as w:
            w.write(np.zeros((H, W, 3), np.float32))
    assert os.listdir(tmp_path) == []


def test_exception_in_block_keeps_existing_file(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous good video")
    frames = gradient_frames()
    with pytest.raises(KeyError):
        with Mp4Writer(path, W, H, fps=FPS) as w:
            for f in frames[:5]:
                w.write(f)
            raise KeyError("render failed")
    assert path.read_bytes() == b"previous good video"
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_exception_in_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with Mp4Writer(tmp_path / "clip.mp4", W, H) as w:
            w.write(gradient_frames(n=1)[0])
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_no_frames_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="no frames"):
        with Mp4Writer(tmp_path / "clip.mp4", W, H):
            pass
    assert os.listdir(tmp_path) == []


def test_ffmpeg_error_text_is_surfaced(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    w = Mp4Writer(folder / "clip.mp4", W, H)
    shutil.rmtree(folder)  # ffmpeg will fail to create its output
    with pytest.raises(RuntimeError, match="ffmpeg failed") as err:
        with w:
            for f in gradient_frames(n=3):
                w.write(f)
    assert "clip.mp4" in str(err.value)
    assert "No such file or directory" in str(err.value)  # ffmpeg's own words


def test_stream_is_tagged_bt709(tmp_path):
    """Players read the colours as BT.709 limited range, the matrix the frames were converted with."""
    import subprocess

    import imageio_ffmpeg

    path = tmp_path / "clip.mp4"
    write_video(path, gradient_frames(n=2), fps=FPS)
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True)
    assert "yuv420p(tv, bt709" in probe.stderr.decode(errors="replace")


# ----- overlay -------------------------------------------------------------


LINES = [
    "x " + format_range(13.29976231, 13.29978604),
    "y " + format_range(1.0e-3, 1.00001e-3),
    "depth " + format_depth(7.3),
]


@pytest.mark.parametrize("corner", CORNERS)
def test_overlay_only_touches_its_corner(corner):
    frame = gradient_frames(n=1, width=640, height=360)[0]
    before = frame.copy()
    out = draw_overlay(frame, LINES, corner=corner)
    np.testing.assert_array_equal(frame, before)  # input untouched
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8

    changed = np.any(out != frame, axis=2)
    assert changed.sum() > 100
    ys, xs = np.nonzero(changed)
    fh, fw = frame.shape[:2]
    # The box is in the chosen corner: it reaches close to that corner's
    # edges and stays in that half of the frame vertically and horizontally.
    if corner.startswith("top"):
        assert ys.min() < 0.1 * fh and ys.max() < fh / 2
    else:
        assert ys.max() > 0.9 * fh and ys.min() > fh / 2
    if corner.endswith("left"):
        assert xs.min() < 0.1 * fw and xs.max() < 0.9 * fw
    else:
        assert xs.max() > 0.9 * fw and xs.min() > 0.1 * fw
    # Everything changed lies inside one rectangle (the box).
    box = np.zeros_like(changed)
    box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    assert not np.any(changed & ~box)
    # White text on a darkened box: some pixels got brighter, most darker.
    region = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    assert out[region].max() >= 200
    assert out[region].astype(int).sum() < frame[region].astype(int).sum()


def test_overlay_text_height_scales_with_frame():
    def text_rows(height):
        frame = np.zeros((height, height * 16 // 9, 3), np.uint8)
        out = draw_overlay(frame, ["depth 7.3 decades"])
        bright = np.nonzero(np.any(out > 128, axis=2))[0]
        return bright.max() - bright.min() + 1

    h720, h360 = text_rows(720), text_rows(360)
    assert 0.015 * 720 <= h720 <= 0.04 * 720
    assert h720 == pytest.approx(2 * h360, rel=0.25)


def test_overlay_rejects_bad_input():
    frame = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(ValueError):
        draw_overlay(frame, LINES, corner="middle")
    with pytest.raises(ValueError):
        draw_overlay(frame.astype(np.float32), LINES)


@pytest.mark.parametrize("rel", [1e-3, 1e-9, 1e-13])
@pytest.mark.parametrize("lo", [13.29976231, 1.234567e-4, -0.5])
def test_format_range_distinguishes_ends(lo, rel):
    hi = lo + abs(lo) * rel
    text = format_range(lo, hi)
    a, b = text.split(" … ")
    assert a != b
    # Both ends use the same, bounded number of significant digits ...
    digits = len(a.split("e")[0].lstrip("-").replace(".", ""))
    assert digits == len(b.split("e")[0].lstrip("-").replace(".", ""))
    assert 4 <= digits <= 17
    # ... and each is the true value to within its last digit.
    ulp = abs(lo) * 10.0 ** (1 - digits) * 10
    assert abs(float(a) - lo) <= ulp and abs(float(b) - hi) <= ulp
    assert float(a) < float(b)


def test_format_range_example_and_minimum_digits():
    assert format_range(13.29976231, 13.29978604) == "1.3299762e+01 … 1.3299786e+01"
    assert format_range(1e-3, 1e-1) == "1.000e-03 … 1.000e-01"


def test_format_depth():
    assert format_depth(7.31) == "7.3 decades"
    assert format_depth(0) == "0.0 decades"
