"""Storage profiles: how dense the QR symbols are and which video codec carries them.

``lossless`` (the default) is the densest layout the measurements support: 1 pixel per module,
ECC level L, 1-bit PNG frames in a QuickTime container (every frame a keyframe, lossless).
``robust`` trades size for survival: 4 pixels per module, ECC level M, all-intra H.264, so the
video can be re-encoded or streamed by ordinary tools and still read back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_memvid.engine.errors import InvalidArgument


@dataclass(frozen=True)
class Profile:
    """Everything that decides how a segment's frames are written."""

    name: str
    ecc: str
    module_px: int
    codec: str
    pix_fmt: str
    codec_options: dict[str, str] = field(default_factory=dict)
    fps: int = 30
    zstd_level: int = 19
    container: str = "mov"


LOSSLESS = Profile("lossless", ecc="L", module_px=1, codec="png", pix_fmt="monob")
ROBUST = Profile(
    "robust",
    ecc="M",
    module_px=4,
    codec="libx264",
    pix_fmt="yuv420p",
    # keyint=1: every frame is an IDR frame, so any frame decodes on its own (random access).
    codec_options={"crf": "23", "preset": "veryfast", "x264-params": "keyint=1:scenecut=0"},
)
PROFILES = {p.name: p for p in (LOSSLESS, ROBUST)}


def get_profile(name: str | Profile) -> Profile:
    """Look a profile up by name (a ``Profile`` passes through unchanged).

    >>> get_profile("robust").module_px, get_profile("robust").codec
    (4, 'libx264')
    >>> get_profile("tiny")
    Traceback (most recent call last):
    ...
    langchain_memvid.engine.errors.InvalidArgument: Unknown storage profile 'tiny'; choose one of ['lossless', 'robust'].

    Raises:
        InvalidArgument: the name is not a known profile.
    """
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        msg = f"Unknown storage profile {name!r}; choose one of {sorted(PROFILES)}."
        raise InvalidArgument(msg) from None
