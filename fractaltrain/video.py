"""MP4 writing and reading through the ffmpeg binary bundled with imageio-ffmpeg.

Why this module exists
----------------------
A zoom video is hours of compute; the file that comes out of it must be
either complete and playable or absent.  ``Mp4Writer`` therefore encodes to a
temporary file next to the target and renames it into place only after ffmpeg
has exited successfully, so a crash, a Ctrl-C or a full disk never leaves a
truncated ``.mp4`` (nor clobbers a good one from an earlier run).

Only the ffmpeg executable shipped inside the ``imageio-ffmpeg`` wheel is used,
so no system ffmpeg is assumed.  Importing this module starts no process: the
encoder list, the ffmpeg version and option support are probed lazily and
cached on first use.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from fractions import Fraction

import numpy as np

__all__ = [
    "ALLOWED_CODECS",
    "X26X_PRESETS",
    "Mp4Writer",
    "available_codecs",
    "ffmpeg_version",
    "read_video",
    "video_info",
]

logger = logging.getLogger(__name__)

#: Encoders ``Mp4Writer`` accepts.  libx264 is the default because every
#: player opens H.264 in yuv420p; libx265 gives smaller files for the same
#: quality where the bundled ffmpeg has it; mpeg4 (MPEG-4 part 2) is the
#: always-built-in fallback for ffmpeg builds without the x26x libraries.
ALLOWED_CODECS = ("libx264", "libx265", "mpeg4")

#: Speed/size trade-offs understood by libx264 and libx265.
X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)

# Only the last part of ffmpeg's error output is put into exception messages:
# with ``-v error`` it is short, but a misbehaving encoder can repeat a line
# per frame.
_MAX_ERROR_CHARS = 4000

# Serialises the brief redirection of file descriptor 2 while ffmpeg is
# spawned (see ``_spawn_with_stderr``).
_SPAWN_LOCK = threading.Lock()


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """Version string of the bundled ffmpeg, e.g. ``"n9.0.2-17-g2a571b6068-20260930"``.

    Recorded in sidecar files so that a video can be traced back to the exact
    encoder build (encoders differ in output between versions).

    Returns
    -------
    str
        The version as ffmpeg reports it, without the ``"ffmpeg version"``
        prefix.
    """
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_version())


@functools.lru_cache(maxsize=1)
def _encoder_names() -> frozenset:
    """Names of all video encoders compiled into the bundled ffmpeg."""
    out = subprocess.run(
        [_ffmpeg_exe(), "-hide_banner", "-encoders"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    ).stdout.decode(errors="replace")
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # Encoder lines look like " V....D libx264   libx264 H.264 / ...".
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def available_codecs() -> tuple:
    """The members of `ALLOWED_CODECS` that the bundled ffmpeg can encode.

    Useful for a CLI to offer only codecs that will actually work, and for
    tests to skip libx265 on ffmpeg builds without it.

    Returns
    -------
    tuple of str
    """
    names = _encoder_names()
    return tuple(c for c in ALLOWED_CODECS if c in names)


@functools.lru_cache(maxsize=1)
def _passthrough_params() -> tuple:
    """Output options that stop ffmpeg from duplicating or dropping frames.

    The raw-video pipe used for reading is a constant-frame-rate muxer, so on
    a variable-frame-rate input ffmpeg would otherwise invent duplicate frames
    and ``read_video`` would disagree with the decoded frame count.  The
    option was renamed (``-vsync`` -> ``-fps_mode`` in ffmpeg 5.1, and
    ``-vsync`` was later removed), so ask the binary which one it knows.
    """
    try:
        out = subprocess.run(
            [_ffmpeg_exe(), "-hide_banner", "-h", "long"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        ).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):  # pragma: no cover
        return ()
    if "-fps_mode" in out:
        return ("-fps_mode", "passthrough")
    if "-vsync" in out:  # pragma: no cover - ffmpeg < 5.1
        return ("-vsync", "passthrough")
    return ()  # pragma: no cover


def _as_positive_int(value, name: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if v <= 0:
        raise ValueError(f"{name} must be positive, got {v}")
    return v


def _spawn_with_stderr(gen, errfile) -> None:
    """Prime the ``write_frames`` generator with ffmpeg's stderr sent to *errfile*.

    ``imageio_ffmpeg.write_frames`` starts ffmpeg with ``stderr=None``, i.e.
    the child inherits this process's file descriptor 2, and offers no way to
    capture what ffmpeg says.  To be able to put ffmpeg's own error text into
    our exceptions, fd 2 is pointed at *errfile* only for the duration of the
    spawn (the child keeps its copy, the parent gets its stderr straight
    back).  A lock keeps concurrent writers from interleaving redirections.
    If fd 2 cannot be duplicated (closed stderr in a daemon) ffmpeg is simply
    started without capture.
    """
    with _SPAWN_LOCK:
        try:
            sys.stderr.flush()
        except Exception:  # pragma: no cover - stderr replaced/closed
            pass
        try:
            saved = os.dup(2)
        except OSError:  # pragma: no cover
            saved = None
        if saved is None:  # pragma: no cover
            gen.send(None)
            return
        try:
            os.dup2(errfile.fileno(), 2)
            gen.send(None)  # runs write_frames up to its first yield: Popen
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class Mp4Writer:
    """Stream RGB frames into an H.264/H.265/MPEG-4 ``.mp4`` file, atomically.

    Frames are piped to the ffmpeg bundled with imageio-ffmpeg through
    ``imageio_ffmpeg.write_frames``.  Output is encoded to a temporary file
    in the destination folder and renamed onto `path` only when ffmpeg has
    finished without error; on any failure (an exception in the ``with``
    block, ffmpeg dying, zero frames written) the temporary file is removed
    and an existing file at `path` is left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.  Its folder must exist.  The container is always
        MP4 regardless of the extension.
    width, height : int
        Frame size in pixels.  Both must be even: the output pixel format is
        yuv420p (chroma at half resolution in both directions), the only one
        that browsers, QuickTime and phones reliably play.
    fps : int, float or fractions.Fraction, default 30
        Frame rate.  Passed to ffmpeg as an exact rational, so ``Fraction(
        30000, 1001)`` is not rounded.
    codec : {"libx264", "libx265", "mpeg4"}, default "libx264"
        Encoder.  libx265 is tagged ``hvc1`` so Apple players accept it.
    crf : int, default 18
        Constant rate factor, 0 (lossless for x264) to 51 (worst); 18 is
        visually near-lossless, which matters for fractal detail that
        compresses badly.  For mpeg4, which has no CRF, it is mapped to a
        fixed quantiser ``q:v = clip(round(crf / 6), 1, 31)`` (18 -> 3).
    preset : str, default "medium"
        x264/x265 speed preset, one of `X26X_PRESETS`; ignored for mpeg4.

    Notes
    -----
    RGB is converted to limited-range BT.709 YUV and the stream is tagged as
    such, which is what players assume for HD video; untagged BT.601 output
    (ffmpeg's default) would be shown with visibly shifted colours.

    Raises
    ------
    ValueError
        Odd or non-positive size, unknown codec or preset, codec missing from
        the bundled ffmpeg, crf out of range, non-positive fps.
    FileNotFoundError
        The destination folder does not exist.

    Examples
    --------
    >>> with Mp4Writer("zoom.mp4", 1280, 720, fps=30) as w:  # doctest: +SKIP
    ...     for frame in frames:
    ...         w.write(frame)
    """

    def __init__(
        self,
        path,
        width: int,
        height: int,
        fps=30,
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "medium",
    ):
        self.path = os.path.abspath(os.fspath(path))
        self.width = _as_positive_int(width, "width")
        self.height = _as_positive_int(height, "height")
        if self.width % 2 or self.height % 2:
            raise ValueError(
                f"frame size {self.width}x{self.height} is not allowed: the yuv420p "
                "pixel format needs an even width and height (e.g. "
                f"{self.width + self.width % 2}x{self.height + self.height % 2})"
            )

        if isinstance(fps, Fraction):
            fps_ok = fps > 0
        else:
            try:
                fps_f = float(fps)
            except (TypeError, ValueError):
                raise TypeError(f"fps must be a number, got {fps!r}") from None
            fps_ok = math.isfinite(fps_f) and fps_f > 0
            if fps_ok:
                fps = int(fps_f) if fps_f.is_integer() else fps_f
        if not fps_ok:
            raise ValueError(f"fps must be a positive finite number, got {fps!r}")
        self.fps = fps

        if codec not in ALLOWED_CODECS:
            raise ValueError(
                f"codec {codec!r} is not supported; allowed: {', '.join(ALLOWED_CODECS)}"
            )
        if codec not in _encoder_names():
            raise ValueError(
                f"codec {codec!r} is not available in the bundled ffmpeg "
                f"({ffmpeg_version()}); available: {', '.join(available_codecs())}"
            )
        self.codec = codec

        try:
            crf_i = operator.index(crf)
        except TypeError:
            raise TypeError(f"crf must be an integer, got {crf!r}") from None
        if not 0 <= crf_i <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf_i}")
        self.crf = crf_i

        if codec in ("libx264", "libx265") and preset not in X26X_PRESETS:
            raise ValueError(
                f"preset {preset!r} is not an x264/x265 preset; allowed: "
                f"{', '.join(X26X_PRESETS)}"
            )
        self.preset = preset

        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"folder of the output video does not exist: {folder}")
        # Unique per writer so concurrent renders into one folder cannot
        # collide; ends in .mp4 so the name alone tells what it is.  Not
        # created here (mkstemp would make it mode 0600): ffmpeg creates it
        # with the normal umask.
        base = os.path.basename(self.path)
        self.tmp_path = os.path.join(
            folder, f"{base}.{os.getpid()}-{secrets.token_hex(4)}.partial.mp4"
        )

        self.n_frames = 0
        self._gen = None
        self._proc = None
        self._errfile = None
        self._state = "new"  # new -> open -> done | aborted

    # ----- context manager -------------------------------------------------

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        # A writer dropped without close() must not leave a partial file or
        # an orphaned encoder behind.
        try:
            if getattr(self, "_state", "done") in ("new", "open"):
                self.abort()
        except Exception:
            pass

    # ----- internals -------------------------------------------------------

    def _output_params(self) -> list:
        params = ["-f", "mp4", "-movflags", "+faststart"]
        # Convert RGB with the BT.709 matrix and say so in the stream: players
        # assume BT.709 for untagged HD video, while ffmpeg's default
        # conversion is BT.601, which would shift the palette's colours.
        params += [
            "-vf",
            "scale=out_color_matrix=bt709:out_range=tv,"
            "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709",
            "-colorspace", "bt709", "-color_primaries", "bt709",
            "-color_trc", "bt709", "-color_range", "tv",
        ]
        if self.codec == "libx264":
            params += ["-crf", str(self.crf), "-preset", self.preset]
        elif self.codec == "libx265":
            params += [
                "-crf", str(self.crf), "-preset", self.preset,
                "-tag:v", "hvc1",
                # x265 prints its own banner regardless of ffmpeg's -v.
                "-x265-params", "log-level=error",
            ]
        else:  # mpeg4: no CRF, fixed quantiser instead
            params += ["-q:v", str(min(31, max(1, round(self.crf / 6))))]
        return params

    def _start(self) -> None:
        import imageio_ffmpeg

        self._errfile = tempfile.TemporaryFile()
        gen = imageio_ffmpeg.write_frames(
            self.tmp_path,
            (self.width, self.height),
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            fps=self.fps,
            quality=None,  # rate control is set in output_params
            codec=self.codec,
            macro_block_size=1,  # size already validated; never rescale
            ffmpeg_log_level="error",
            output_params=self._output_params(),
        )
        self._gen = gen
        self._state = "open"
        _spawn_with_stderr(gen, self._errfile)
        # The Popen object is a local of the suspended generator; it is the
        # only way to learn ffmpeg's exit status, which write_frames ignores.
        # If a future imageio-ffmpeg renames it, close() falls back to
        # checking that the output is non-empty.
        try:
            proc = gen.gi_frame.f_locals.get("p")
        except Exception:  # pragma: no cover
            proc = None
        self._proc = proc if isinstance(proc, subprocess.Popen) else None

    def _ffmpeg_stderr(self) -> str:
        if self._errfile is None:
            return ""
        try:
            self._errfile.seek(0)
            text = self._errfile.read().decode(errors="replace").strip()
        except (OSError, ValueError):  # pragma: no cover
            return ""
        if len(text) > _MAX_ERROR_CHARS:
            text = "...\n" + text[-_MAX_ERROR_CHARS:]
        return text

    def _cleanup(self) -> None:
        try:
            os.remove(self.tmp_path)
        except FileNotFoundError:
            pass
        if self._errfile is not None:
            self._errfile.close()
            self._errfile = None
        self._gen = None

    def _fail(self, what: str, cause: BaseException | None = None):
        rc = self._proc.returncode if self._proc is not None else None
        text = self._ffmpeg_stderr()
        self._state = "aborted"
        self._cleanup()
        msg = f"ffmpeg failed while {what} {self.path}"
        if rc is not None:
            msg += f" (exit status {rc})"
        msg += ":\n" + (text if text else "(ffmpeg printed no error message)")
        raise RuntimeError(msg) from cause

    # ----- public API ------------------------------------------------------

    def write(self, frame: np.ndarray) -> None:
        """Append one frame.

        Parameters
        ----------
        frame : numpy.ndarray
            ``(height, width, 3)`` uint8 RGB.  Checked exactly rather than
            converted, because a float or wrongly-shaped frame is almost
            always an upstream bug that would otherwise become a garbled
            video.  A non-contiguous view is copied to contiguous memory.

        Raises
        ------
        ValueError
            Wrong shape or dtype, or the writer is already closed.
        RuntimeError
            ffmpeg exited; the message contains its error output.
        """
        if self._state not in ("new", "open"):
            raise ValueError(f"Mp4Writer for {self.path} is already closed")
        if not isinstance(frame, np.ndarray):
            raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
        expected = (self.height, self.width, 3)
        if frame.shape != expected:
            raise ValueError(
                f"frame has shape {frame.shape}, expected {expected} (height, width, RGB)"
            )
        if frame.dtype != np.uint8:
            raise ValueError(f"frame has dtype {frame.dtype}, expected uint8")
        frame = np.ascontiguousarray(frame)
        if self._state == "new":
            self._start()
        try:
            self._gen.send(frame)
        except Exception as err:  # ffmpeg closed its stdin: it has died
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    self._proc.kill()
                    self._proc.wait()
            self._fail("encoding", err)
        self.n_frames += 1

    def close(self) -> None:
        """Finish encoding and move the video onto `path`.

        Waits for ffmpeg to flush and exit, checks that it succeeded, then
        ``os.replace``-s the temporary file onto `path` (atomic within one
        filesystem, so readers see either the old or the new video).
        Calling it again is a no-op.

        Raises
        ------
        RuntimeError
            No frame was written (an MP4 without frames is not playable), or
            ffmpeg failed; in both cases nothing is left on disk and an
            existing `path` is untouched.
        """
        if self._state in ("done", "aborted"):
            return
        if self._state == "new" or self.n_frames == 0:
            self.abort()
            raise RuntimeError(f"no frames were written; {self.path} was not created")
        try:
            self._gen.close()  # closes ffmpeg's stdin and waits for it to exit
        except Exception as err:  # pragma: no cover
            self._fail("finishing", err)
        rc = self._proc.returncode if self._proc is not None else None
        if self._proc is not None and rc is None:  # pragma: no cover
            rc = self._proc.wait()
        try:
            size = os.path.getsize(self.tmp_path)
        except OSError:
            size = 0
        if (rc is not None and rc != 0) or size == 0:
            self._fail("finishing")
        leftover = self._ffmpeg_stderr()
        if leftover:
            logger.warning("ffmpeg reported while writing %s:\n%s", self.path, leftover)
        try:
            with open(self.tmp_path, "rb") as f:
                os.fsync(f.fileno())  # data on disk before the rename makes it visible
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self._state = "aborted"
            self._cleanup()
            raise
        self._state = "done"
        self._cleanup()

    def abort(self) -> None:
        """Stop ffmpeg and delete the temporary file; `path` is not touched.

        Called automatically when the ``with`` block raises.  The encoder is
        killed rather than asked to finish, since its output is discarded.
        """
        if self._state in ("done", "aborted"):
            return
        self._state = "aborted"
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._gen is not None:
            try:
                self._gen.close()
            except Exception:  # pragma: no cover
                pass
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self._cleanup()

    def __repr__(self) -> str:
        return (
            f"Mp4Writer({self.path!r}, {self.width}, {self.height}, fps={self.fps}, "
            f"codec={self.codec!r}, crf={self.crf}, preset={self.preset!r}; "
            f"{self.n_frames} frames, {self._state})"
        )


def _open_reader(path):
    """Start ffmpeg decoding *path* to raw RGB; return (generator, meta)."""
    import imageio_ffmpeg

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video not found: {path}")
    gen = imageio_ffmpeg.read_frames(
        path, pix_fmt="rgb24", output_params=list(_passthrough_params())
    )
    try:
        meta = next(gen)
    except BaseException:
        gen.close()
        raise
    return gen, meta


def read_video(path):
    """Decode a whole video into memory.

    Meant for tests and for short clips (checking a render, building a
    preview); a 1080p frame is 6 MB, so long videos should be streamed with
    ``imageio_ffmpeg.read_frames`` instead.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    frames : numpy.ndarray
        ``(n_frames, height, width, 3)`` uint8 RGB, one entry per decoded
        frame (frames are never duplicated or dropped to force a constant
        rate).
    fps : float
        Frame rate from the container header.

    Raises
    ------
    FileNotFoundError
        `path` does not exist.
    OSError, RuntimeError
        ffmpeg cannot read the file.
    """
    gen, meta = _open_reader(path)
    try:
        width, height = (int(v) for v in meta["size"])
        fps = float(meta["fps"])
        # One growing buffer, viewed as an array at the end, keeps peak memory
        # near the size of the result instead of twice it.
        buf = bytearray()
        for chunk in gen:
            buf += chunk
    finally:
        gen.close()
    frames = np.frombuffer(buf, dtype=np.uint8).reshape(-1, height, width, 3)
    return frames, fps


def video_info(path) -> dict:
    """Frame count, size and frame rate of a video.

    The frame count comes from decoding the whole stream
    (``imageio_ffmpeg.count_frames_and_secs``), not from the container's
    duration times fps, which is only an estimate and is off by one or more
    for many files; a render check needs the exact number.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``{"n_frames": int, "width": int, "height": int, "fps": float}``.

    Raises
    ------
    FileNotFoundError
        `path` does not exist.
    """
    import imageio_ffmpeg

    gen, meta = _open_reader(path)
    gen.close()
    width, height = (int(v) for v in meta["size"])
    n_frames, _secs = imageio_ffmpeg.count_frames_and_secs(os.fspath(path))
    return {
        "n_frames": int(n_frames),
        "width": width,
        "height": height,
        "fps": float(meta["fps"]),
    }
