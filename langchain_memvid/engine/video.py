"""Video files: write QR images as frames, then read any single frame with one positioned read.

Writing goes through PyAV (FFmpeg). After the file is closed it is demuxed once to learn every
packet's byte offset and size; those go into the catalog, so a later read of frame *n* is a single
``pread`` of its packet plus an image decode - no demuxing, no decoding from the start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import CorruptData, FrameUnreadable
from .profiles import Profile


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


def write_video(
    path: Path, images: list[np.ndarray], profile: Profile
) -> tuple[list[FrameLocation], VideoInfo]:
    """Write grayscale images (all the same size) as a video and return each frame's location."""
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
    finally:
        container.close()
    locations = [loc for loc, _ in scan_packets(path)]
    if len(locations) != len(images):
        msg = f"{path.name}: wrote {len(images)} frames but the file holds {len(locations)} packets."
        raise CorruptData(msg)
    return locations, probe(path)


def probe(path: Path) -> VideoInfo:
    """Read the codec parameters from the container header (done once per segment).

    Raises:
        CorruptData: the file is not a readable video (truncated, overwritten, no video stream).
    """
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
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is None:
            msg = "A PNG frame packet does not decode to an image."
            raise FrameUnreadable(msg)
        return image
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
