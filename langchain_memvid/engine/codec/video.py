"""Video files: write QR images as frames, then read any single frame with one positioned read.

Writing goes through PyAV (FFmpeg). After the file is closed it is demuxed once to learn every
packet's byte offset and size; those go into the catalog, so a later read of frame *n* is a single
``pread`` of its packet plus an image decode - no demuxing, no decoding from the start.

A write that runs out of disk (``ENOSPC``) or past a file-size limit (``EFBIG``) raises
``DiskFull``, whether Python or FFmpeg saw it first.

PyAV and OpenCV are imported by the functions that use them, not with the module: the catalog
names ``FrameLocation`` and ``VideoInfo``, and opening a store or reading its catalog must not pay
for the video libraries.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from langchain_memvid.engine.errors import CorruptData, DiskFull, FrameUnreadable
from langchain_memvid.engine.profiles import Profile


@dataclass(frozen=True)
class FrameLocation:
    """Where one frame's compressed packet lies in the video file."""

    offset: int
    size: int
    pts: int


@dataclass(frozen=True)
class VideoInfo:
    """What a reader needs besides the frame table: size, timing and codec set-up bytes."""

    codec: str
    width: int
    height: int
    time_base: Fraction
    extradata: bytes


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG})


def raise_if_disk_full(error: BaseException, path: Path) -> None:
    """Raise ``DiskFull`` when ``error`` (or an error it interrupted) is ENOSPC or EFBIG.

    A full disk reaches us as Python's ``OSError`` (file writes, fsync) or as PyAV's
    ``av.error.OSError`` / ``FFmpegError`` (muxing, the trailer); both carry the errno. Callers
    clean up first, call this, then re-raise ``error`` unchanged when it returns. The message is
    true for segment writes only: they happen before the catalog commits anything.

    Raises:
        DiskFull: with the original errno, naming the file being written.
    """
    code = _disk_full_errno(error)
    if code is None:
        return
    where = f"while writing {path.name} in {path.parent}"
    done = "Nothing of this call was committed and the store is as it was"
    if code == errno.ENOSPC:
        msg = f"The disk is full ({os.strerror(code)}) {where}. {done}; free some space and retry."
    else:
        msg = (
            f"The file grew past the file-size limit ({os.strerror(code)}: ulimit -f, or the file "
            f"system's largest file) {where}. {done}; free space or raise the limit and retry, or "
            "write smaller segments (segment_records, batch_size)."
        )
    raise DiskFull(code, msg) from error


def _disk_full_errno(error: BaseException) -> int | None:
    """ENOSPC or EFBIG when ``error``'s chain reports one (and is not a DiskFull already), else None."""
    seen: BaseException | None = error
    for _ in range(8):  # the chain is short: an error, and the close() that failed after it
        if seen is None or isinstance(seen, DiskFull):
            return None
        code = getattr(seen, "errno", None)
        if code in DISK_FULL_ERRNOS:
            return int(code)
        seen = seen.__cause__ or seen.__context__
    return None


def write_video(
    path: Path, images: list[np.ndarray], profile: Profile
) -> tuple[list[FrameLocation], VideoInfo]:
    """Write grayscale images (all the same size) as a video and return each frame's location.

    Raises:
        DiskFull: the disk filled up or the file passed a file-size limit (ENOSPC, EFBIG).
    """
    import av

    try:
        _write_frames(path, images, profile)
    except (OSError, av.FFmpegError) as e:
        raise_if_disk_full(e, path)
        raise
    locations = [loc for loc, _ in scan_packets(path)]
    if len(locations) != len(images):
        msg = f"{path.name}: wrote {len(images)} frames but the file holds {len(locations)} packets."
        raise CorruptData(msg)
    return locations, probe(path)


def _write_frames(path: Path, images: list[np.ndarray], profile: Profile) -> None:
    import av

    height, width = images[0].shape
    container = av.open(str(path), mode="w", format=profile.container)
    try:
        stream = container.add_stream(profile.codec, rate=profile.fps, options=dict(profile.codec_options))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = profile.pix_fmt
        for image in images:
            frame = av.VideoFrame.from_ndarray(image, format="gray")
            if profile.pix_fmt not in ("gray", "monob"):
                frame = frame.reformat(format=profile.pix_fmt)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    except BaseException:
        # Closing writes the trailer, which fails the same way after a full disk; the first
        # error is the one that says what happened, and close() releases the file either way.
        with suppress(av.FFmpegError, OSError):
            container.close()
        raise
    container.close()  # writes the trailer (the QuickTime index): it can hit a full disk too


def probe(path: Path) -> VideoInfo:
    """Read the codec parameters from the container header (done once per segment).

    Raises:
        CorruptData: the file is not a readable video (truncated, overwritten, no video stream).
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            ctx = stream.codec_context
            return VideoInfo(
                codec=ctx.name,
                width=ctx.width,
                height=ctx.height,
                time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 30),
                extradata=bytes(ctx.extradata or b""),
            )
    except (av.FFmpegError, IndexError) as e:
        msg = f"{path.name}: not a readable video ({e})."
        raise CorruptData(msg) from e


def scan_packets(path: Path) -> Iterator[tuple[FrameLocation, bytes]]:
    """Demux every video packet in file order (used when writing, verifying and rebuilding)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size and packet.pos is not None:
                    yield FrameLocation(packet.pos, packet.size, packet.pts or 0), bytes(packet)
    except av.FFmpegError as e:
        msg = f"{path.name}: not a readable video ({e})."
        raise CorruptData(msg) from e


MAX_FRAME_PIXELS = 16384 * 16384  # a PNG frame declaring more is refused before decoding


def read_packet(fd: int, location: FrameLocation) -> bytes:
    """One positioned read of a frame's packet.

    Raises:
        CorruptData: the location lies outside the file (a damaged or crafted catalog), or the
            read comes back short.
    """
    end = os.fstat(fd).st_size
    if location.offset < 0 or location.size < 0 or location.offset + location.size > end:
        msg = f"Frame packet at byte {location.offset} ({location.size} bytes) lies outside the {end}-byte video file."
        raise CorruptData(msg)
    data = os.pread(fd, location.size, location.offset)
    if len(data) != location.size:
        msg = f"Frame packet at byte {location.offset} is truncated ({len(data)} of {location.size} bytes)."
        raise CorruptData(msg)
    return data


def decode_packet(data: bytes, info: VideoInfo) -> np.ndarray:
    """Decode one packet into a grayscale image.

    PNG packets are whole PNG files, decoded by OpenCV. Other codecs (all-intra H.264) go through
    a fresh FFmpeg decoder primed with the stream's extradata, so no other frame is needed.

    Raises:
        FrameUnreadable: the packet does not decode to an image.
    """
    if info.codec == "png":
        # Check the declared size (IHDR) first: OpenCV allocates width x height before decoding.
        if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            msg = "A PNG frame packet does not start with a PNG header."
            raise FrameUnreadable(msg)
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if (width, height) != (info.width, info.height) or width * height > MAX_FRAME_PIXELS:
            msg = f"A PNG frame packet declares {width}x{height} pixels; the segment's frames are {info.width}x{info.height}."
            raise FrameUnreadable(msg)
        import cv2

        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is None:
            msg = "A PNG frame packet does not decode to an image."
            raise FrameUnreadable(msg)
        return image
    import av

    try:
        ctx = av.CodecContext.create(info.codec, "r")
        assert isinstance(ctx, av.VideoCodecContext)
        if info.extradata:
            ctx.extradata = info.extradata
        frames = ctx.decode(av.Packet(data)) + ctx.decode(None)
    except av.FFmpegError as e:
        msg = f"A {info.codec} frame packet does not decode: {e}"
        raise FrameUnreadable(msg) from e
    if not frames:
        msg = f"A {info.codec} frame packet decoded to no image."
        raise FrameUnreadable(msg)
    return frames[0].to_ndarray(format="gray")
