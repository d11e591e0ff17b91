"""Both storage profiles and every QR backend carry records exactly through the whole Engine.

Spec: docs/format.md, section 4.1 "The video" (lossless: 1-bit PNG, 1 px/module, ECC L; robust:
all-intra H.264, 4 px/module, ECC M) and section 3.1 "Frame header" (every payload carries its
own CRC-32).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from langchain_memvid.engine import CorruptData, Engine, Record, rebuild_store
from langchain_memvid.engine.codec import qr
from langchain_memvid.engine.codec.frames import parse_frame
from langchain_memvid.engine.codec.video import decode_packet, probe, scan_packets

from .conftest import HAS_FFMPEG, HAS_QRCODE, HAS_ZBAR, add
from .test_roundtrip import TORTURE_TEXTS, assert_records_equal

needs_zbar = pytest.mark.skipif(not HAS_ZBAR, reason="zbar decoder (pyzbar + libzbar0) unavailable")
needs_qrcode = pytest.mark.skipif(not HAS_QRCODE, reason="the optional qrcode package is missing")
needs_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg is not installed")

SHORT_TORTURE = {k: v for k, v in TORTURE_TEXTS.items() if k != "very-long-single-line"}


def _records(texts: dict[str, str]) -> list[Record]:
    return [
        Record(f"t-{k}", v, {"k": k, "n": i, "f": i / 3, "ok": i % 2 == 0})
        for i, (k, v) in enumerate(texts.items())
    ]


def _segment_payloads(video: Path) -> list[bytes]:
    info = probe(video)
    return [qr.decode(decode_packet(data, info)) for _, data in scan_packets(video)]


def test_robust_profile_round_trips_exactly(open_engine: Callable[..., Engine], store_path: Path):
    records = _records(TORTURE_TEXTS)
    writer = open_engine(profile="robust")
    add(writer, records)
    (seg,) = writer.catalog.segments()
    assert seg.info.codec == "h264", "robust stores are lossy H.264 video"
    assert seg.profile == "robust"

    reader = open_engine()  # the profile is a property of the store, not of the caller
    assert reader.profile.name == "robust"
    for want in records:
        (got,) = reader.get([want.id])
        assert_records_equal(got, want)
    report = reader.verify()
    assert report.ok, report.problems
    assert report.frames_checked == seg.frame_count


@needs_ffmpeg
def test_robust_video_survives_a_lossy_transcode(
    open_engine: Callable[..., Engine], store_path: Path, tmp_path: Path
):
    """Re-encode the segment at a worse quality (and with inter frames): every frame still decodes."""
    records = _records(SHORT_TORTURE)
    engine = open_engine(profile="robust")
    add(engine, records)
    (video,) = (store_path / "segments").glob("*.mov")
    original = _segment_payloads(video)

    transcoded = tmp_path / "transcoded.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(video),
            "-c:v",
            "libx264",
            "-crf",
            "30",
            "-preset",
            "fast",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
            str(transcoded),
        ],
        check=True,
        timeout=120,
    )
    assert transcoded.read_bytes() != video.read_bytes()
    with av.open(str(transcoded)) as container:
        decoded = [qr.decode(frame.to_ndarray(format="gray")) for frame in container.decode(video=0)]
    assert decoded == original
    for payload in decoded:
        parse_frame(payload)  # the frame's own CRC-32 holds


@needs_ffmpeg
def test_store_recovers_from_a_transcoded_robust_video(
    open_engine: Callable[..., Engine], store_path: Path, tmp_path: Path
):
    """Replace a segment with a re-encoded copy (new offsets, new bytes): rebuild reads it all back."""
    records = _records(SHORT_TORTURE)
    engine = open_engine(profile="robust")
    add(engine, records)
    engine.close()
    (video,) = (store_path / "segments").glob("*.mov")
    transcoded = tmp_path / "intra.mov"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(video),
            "-c:v",
            "libx264",
            "-crf",
            "30",
            "-preset",
            "fast",
            "-x264-params",
            "keyint=1:scenecut=0",
            "-pix_fmt",
            "yuv420p",
            str(transcoded),
        ],
        check=True,
        timeout=120,
    )
    transcoded.replace(video)

    stale = open_engine()
    # The catalog's offsets and checksums no longer fit: an error naming the record, never wrong text.
    with pytest.raises(CorruptData, match=records[0].id):
        stale.get([records[0].id])
    stale.close()

    report = rebuild_store(store_path)
    assert report.records == len(records)
    assert report.lost_frames == 0
    rebuilt = open_engine()
    for want in records:
        (got,) = rebuilt.get([want.id])
        assert_records_equal(got, want)


@needs_qrcode
def test_qrcode_encoder_through_the_engine(open_engine: Callable[..., Engine]):
    records = _records(SHORT_TORTURE)
    add(open_engine(encoder="qrcode"), records)
    reader = open_engine()
    for want in records:
        (got,) = reader.get([want.id])
        assert_records_equal(got, want)
    assert reader.verify().ok


@needs_zbar
def test_zbar_decoder_through_the_engine(open_engine: Callable[..., Engine]):
    records = _records(SHORT_TORTURE)
    add(open_engine(), records)
    reader = open_engine(decoder="zbar")
    for want in records:
        (got,) = reader.get([want.id])
        assert_records_equal(got, want)
    hit = reader.search(reader.vectors([records[2].id])[records[2].id], 1)[0]
    assert_records_equal(hit.record, records[2])


@needs_zbar
@pytest.mark.parametrize("decoder", ["zxing", "zbar"])
def test_verify_cross_checks_with_the_other_decoder(open_engine: Callable[..., Engine], decoder: str):
    """Whichever decoder the store reads with, verify decodes every frame with the other one too."""
    add(open_engine(), _records(SHORT_TORTURE))
    report = open_engine(decoder=decoder).verify()
    assert report.ok, report.problems
    assert report.frames_checked >= 2
    assert report.frames_cross_checked == report.frames_checked
    assert open_engine(decoder=decoder).verify(cross_check=False).frames_cross_checked == 0


@needs_qrcode
@needs_zbar
def test_qrcode_encoder_and_zbar_decoder_on_robust(open_engine: Callable[..., Engine]):
    records = _records(
        {k: SHORT_TORTURE[k] for k in ("emoji-zwj-family", "nul-and-controls", "empty", "cjk")}
    )
    add(open_engine(profile="robust", encoder="qrcode"), records)
    reader = open_engine(decoder="zbar")
    assert [r.id for r in reader.get([r.id for r in records])] == [r.id for r in records]
    for want in records:
        (got,) = reader.get([want.id])
        assert_records_equal(got, want)
