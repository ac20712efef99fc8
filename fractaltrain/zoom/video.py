"""MP4 writing through the ffmpeg binary bundled with imageio-ffmpeg.

A zoom video is hours of compute; the file that comes out of it must be either
complete and playable or absent.  ``Mp4Writer`` therefore encodes to a partial
file next to the target and renames it into place only after ffmpeg has exited
successfully, so a crash, a Ctrl-C or a full disk never leaves a truncated
``.mp4`` (nor clobbers a good one from an earlier run).  ffmpeg is started
directly (not through ``imageio_ffmpeg.write_frames``) so that its exit status
and its own error text reach our exceptions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import tempfile
from fractions import Fraction

import numpy as np

__all__ = ["ALLOWED_CODECS", "Mp4Writer"]

logger = logging.getLogger(__name__)

#: Encoders ``Mp4Writer`` accepts.  libx264 is the default because every player
#: opens H.264 in yuv420p; libx265 gives smaller files where the bundled ffmpeg
#: has it; mpeg4 (MPEG-4 part 2) is built into every ffmpeg.
ALLOWED_CODECS = ("libx264", "libx265", "mpeg4")

#: x264 / x265 speed presets, fastest first.  The default, veryfast, encodes
#: 1080p fractal frames about 2.7x as fast as medium on two cores at the same
#: CRF, within 0.3 dB PSNR and no larger (measured once on the synthetic frames of scripts/bench/bench_frames.py,
#: docs/performance.md): the encoder must keep up once keyframes are fast.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
DEFAULT_PRESET = "veryfast"

# Only the tail of ffmpeg's error output goes into exception messages: with
# ``-v error`` it is short, but a misbehaving encoder can repeat a line per frame.
_MAX_ERROR_CHARS = 4000

# RGB is converted with the BT.709 matrix to limited range and the stream is
# tagged so: players assume BT.709 for HD video, while ffmpeg's default
# conversion is BT.601, which would shift the palette's colours.
_BT709 = [
    "-vf",
    "scale=out_color_matrix=bt709:out_range=tv,"
    "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709",
    "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
]


class Mp4Writer:
    """Stream RGB frames into an H.264/H.265/MPEG-4 ``.mp4`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its folder must exist.
    width, height : int
        Frame size in pixels, both even (yuv420p has chroma at half resolution).
    fps : int, float or fractions.Fraction, default 30
        Frame rate, passed to ffmpeg as an exact rational.
    codec : {"libx264", "libx265", "mpeg4"}, default "libx264"
        Encoder.  libx265 is tagged ``hvc1`` so Apple players accept it.
    crf : int, default 18
        Constant rate factor 0..51 (18: visually near-lossless, which matters for
        fractal detail).  mpeg4 has no CRF: it gets ``q:v = clip(round(crf / 6), 1, 31)``.
    preset : str, default "veryfast"
        Encoder speed preset of libx264 / libx265 (see :data:`PRESETS`); slower
        ones encode a little better at the same CRF (medium: +0.3 dB PSNR on
        1080p fractal frames, 2.7x the time).  Ignored by mpeg4.

    Use it as a context manager: on normal exit the video is finished and renamed
    onto `path`; on an exception (or ffmpeg failing, or no frame written) the
    partial file is removed and an existing `path` is left untouched.
    """

    def __init__(self, path, width: int, height: int, fps=30, codec: str = "libx264", crf: int = 18,
                 preset: str = DEFAULT_PRESET):
        self.path = os.path.abspath(os.fspath(path))
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
                and width % 2 == 0 and height % 2 == 0):
            raise ValueError(f"frame size {width}x{height} is not allowed: yuv420p needs a positive, even "
                             "width and height")
        if not (isinstance(fps, (int, float, Fraction)) and 0 < fps < float("inf")):
            raise ValueError(f"fps must be a positive finite number, got {fps!r}")
        if codec not in ALLOWED_CODECS:
            raise ValueError(f"codec {codec!r} is not supported; allowed: {', '.join(ALLOWED_CODECS)}")
        if not (isinstance(crf, int) and 0 <= crf <= 51):
            raise ValueError(f"crf must be an integer in 0..51, got {crf!r}")
        if preset not in PRESETS:
            raise ValueError(f"preset {preset!r} is not an encoder preset; allowed: {', '.join(PRESETS)}")
        self.preset = preset
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"folder of the output video does not exist: {folder}")
        self.width, self.height, self.fps, self.codec, self.crf = width, height, fps, codec, crf
        # Unique per writer, so concurrent renders into one folder cannot collide.
        self.tmp_path = f"{self.path}.{os.getpid()}-{secrets.token_hex(4)}.partial.mp4"
        self.n_frames = 0
        self._proc = None
        self._errfile = None
        self._state = "new"  # new -> open -> done | aborted

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close() if exc_type is None else self.abort()
        return False

    def __del__(self):
        # A writer dropped without close() must not leave a partial file or an encoder behind.
        with contextlib.suppress(Exception):
            self.abort()

    def _command(self) -> list:
        import imageio_ffmpeg

        rate = self.fps if isinstance(self.fps, Fraction) else Fraction(self.fps).limit_denominator()
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y",
            "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{self.width}x{self.height}",
            "-pix_fmt", "rgb24", "-r", str(rate), "-i", "-", "-an",
            "-vcodec", self.codec, "-pix_fmt", "yuv420p", "-v", "error",
            "-f", "mp4", "-movflags", "+faststart", *_BT709,
        ]
        if self.codec == "libx264":
            cmd += ["-crf", str(self.crf), "-preset", self.preset]
        elif self.codec == "libx265":
            # x265 prints its own banner regardless of ffmpeg's -v.
            cmd += ["-crf", str(self.crf), "-preset", self.preset, "-tag:v", "hvc1", "-x265-params", "log-level=error"]
        else:
            cmd += ["-q:v", str(min(31, max(1, round(self.crf / 6))))]
        return cmd + [self.tmp_path]

    def _stderr_tail(self) -> str:
        self._errfile.seek(0)
        text = self._errfile.read().decode(errors="replace").strip()
        return text if len(text) <= _MAX_ERROR_CHARS else "...\n" + text[-_MAX_ERROR_CHARS:]

    def _cleanup(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.tmp_path)
        if self._errfile is not None:
            self._errfile.close()
            self._errfile = None

    def _fail(self, what: str, cause: BaseException | None = None):
        """Raise ffmpeg's exit status and error text (ffmpeg has exited)."""
        rc = self._proc.wait()
        text = self._stderr_tail() or "(ffmpeg printed no error message)"
        self._state = "aborted"
        self._cleanup()
        raise RuntimeError(f"ffmpeg failed while {what} {self.path} (exit status {rc}):\n{text}") from cause

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(height, width, 3)`` uint8 RGB frame (checked exactly, not converted)."""
        if self._state not in ("new", "open"):
            raise ValueError(f"Mp4Writer for {self.path} is already closed")
        expected = (self.height, self.width, 3)
        if not isinstance(frame, np.ndarray) or frame.shape != expected:
            raise ValueError(f"frame has shape {getattr(frame, 'shape', None)}, expected {expected} (height, width, RGB)")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame has dtype {frame.dtype}, expected uint8")
        if self._state == "new":
            self._errfile = tempfile.TemporaryFile()
            # Own session: a Ctrl-C reaches us, not ffmpeg; abort() then kills it.
            self._proc = subprocess.Popen(self._command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._errfile, start_new_session=True)
            self._state = "open"
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except OSError as err:  # ffmpeg closed its stdin: it has died
            self._fail("encoding", err)
        self.n_frames += 1

    def close(self) -> None:
        """Finish encoding and rename the video onto `path`; a second call does nothing.

        Raises RuntimeError (leaving nothing on disk, `path` untouched) when no
        frame was written or ffmpeg failed.
        """
        if self._state in ("done", "aborted"):
            return
        if self._state == "new":
            self.abort()
            raise RuntimeError(f"no frames were written; {self.path} was not created")
        with contextlib.suppress(OSError):  # a dead ffmpeg is reported by its exit status below
            self._proc.stdin.close()
        if self._proc.wait() != 0 or not (os.path.isfile(self.tmp_path) and os.path.getsize(self.tmp_path)):
            self._fail("finishing")
        leftover = self._stderr_tail()
        if leftover:
            logger.warning("ffmpeg reported while writing %s:\n%s", self.path, leftover)
        try:
            with open(self.tmp_path, "rb") as f:
                os.fsync(f.fileno())  # data on disk before the rename makes it visible
            os.replace(self.tmp_path, self.path)
        finally:
            self._state = "done"
            self._cleanup()

    def abort(self) -> None:
        """Kill ffmpeg and delete the partial file; `path` is not touched."""
        if self._state in ("done", "aborted"):
            return
        self._state = "aborted"
        if self._proc is not None:
            self._proc.kill()
            with contextlib.suppress(OSError):  # buffered frames and a dead ffmpeg: nothing to flush into
                self._proc.stdin.close()
            self._proc.wait()
        self._cleanup()
