"""Tests for langchain_memvid.engine.codec.qr: exact byte round trips through every backend pair."""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_memvid.engine.codec import qr
from langchain_memvid.engine.errors import (
    BackendUnavailable,
    FrameUnreadable,
    InvalidArgument,
    MemvidError,
)

HAS_QRCODE = "qrcode" in qr.available_encoders()
HAS_ZBAR = "zbar" in qr.available_decoders()

needs_zbar = pytest.mark.skipif(
    not HAS_ZBAR,
    reason="zbar decoder unavailable: pyzbar or the libzbar0 system library (with binary mode) "
    "cannot be loaded",
)
needs_qrcode = pytest.mark.skipif(not HAS_QRCODE, reason="the optional qrcode package is missing")


def _backend_param(name: str) -> object:
    marks = []
    if name == "zbar":
        marks.append(needs_zbar)
    if name == "qrcode":
        marks.append(needs_qrcode)
    return pytest.param(name, marks=marks, id=name)


ENCODER_PARAMS = [_backend_param(name) for name in qr.ENCODERS]
DECODER_PARAMS = [_backend_param(name) for name in qr.DECODERS]


def _random_binary() -> bytes:
    rng = random.Random(1234)
    body = bytes(rng.randrange(256) for _ in range(400))
    return b"\x00" * 17 + body[:200] + b"\xff" * 33 + b"\x00\xff" * 8 + body[200:] + b"\x00"


PAYLOADS: dict[str, bytes | None] = {
    "empty": b"",
    "one-byte": b"\x00",
    "binary-nul-ff-runs": _random_binary(),
    "utf8-emoji-cjk-rtl": (
        "Hello 👋🏽 world — 你好, 世界 · こんにちは · مرحبا بالعالم · שלום עולם · 🏳️‍🌈"
    ).encode(),
    # Bytes a charset-guessing reader would transcode (Latin-1, Shift-JIS) or parse as digits.
    "latin1-sjis-digits": "café naïve".encode("latin-1")
    + "日本語テキスト".encode("shift_jis")
    + b"0123456789",
    "full-capacity": None,  # filled per ECC level
}


def _payload(kind: str, ecc: str) -> bytes:
    fixed = PAYLOADS[kind]
    if fixed is not None:
        return fixed
    rng = random.Random(ecc)
    return bytes(rng.randrange(256) for _ in range(qr.capacity(ecc)))


@functools.cache
def _encoded(kind: str, ecc: str, module_px: int, encoder: str) -> np.ndarray:
    image = qr.encode(_payload(kind, ecc), ecc=ecc, module_px=module_px, backend=encoder)
    image.setflags(write=False)
    return image


@pytest.fixture
def fresh_backend_caches() -> Iterator[None]:
    """Let a test hide an optional backend, and forget that afterwards."""
    qr._qrcode_api.cache_clear()
    qr._zbar_api.cache_clear()
    yield
    qr._qrcode_api.cache_clear()
    qr._zbar_api.cache_clear()


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PAYLOADS))
@pytest.mark.parametrize("module_px", [1, 3])
@pytest.mark.parametrize("ecc", ["L", "H"])
@pytest.mark.parametrize("decoder", DECODER_PARAMS)
@pytest.mark.parametrize("encoder", ENCODER_PARAMS)
def test_round_trip_is_exact(encoder: str, decoder: str, ecc: str, module_px: int, kind: str):
    image = _encoded(kind, ecc, module_px, encoder)
    assert qr.decode(image, backend=decoder) == _payload(kind, ecc)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_zxing_round_trip_property(data: st.DataObject):
    ecc = data.draw(st.sampled_from(qr.ECC_LEVELS), label="ecc")
    payload = data.draw(st.binary(max_size=qr.capacity(ecc)), label="payload")
    assert qr.decode(qr.encode(payload, ecc=ecc)) == payload


@pytest.mark.parametrize("decoder", DECODER_PARAMS)
def test_lossy_and_offset_frames_still_decode(decoder: str):
    payload = _payload("binary-nul-ff-runs", "M")
    image = qr.encode(payload, ecc="M", module_px=3)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok
    assert qr.decode(cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE), backend=decoder) == payload
    # Not a pure frame: off-centre on a larger, non-square page.
    page = np.full((700, 820), 255, dtype=np.uint8)
    page[60 : 60 + image.shape[0], 200 : 200 + image.shape[1]] = image
    assert qr.decode(page, backend=decoder) == payload


@pytest.mark.parametrize("decoder", DECODER_PARAMS)
def test_colour_frames_decode(decoder: str):
    payload = b"colour \x00\xff"
    gray = qr.encode(payload, module_px=2)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    assert qr.decode(bgr, backend=decoder) == payload
    assert qr.decode(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA), backend=decoder) == payload
    assert qr.decode(gray[:, :, None], backend=decoder) == payload


# --- capacity and canvas ---------------------------------------------------------------------


def test_capacity_values_and_zxing_limits():
    assert [qr.capacity(ecc) for ecc in qr.ECC_LEVELS] == [2951, 2329, 1661, 1271]
    for ecc in qr.ECC_LEVELS:
        cap = qr.capacity(ecc)
        fmt = zxingcpp.BarcodeFormat.QRCode
        zxingcpp.create_barcode(bytes(cap), fmt, ec_level=ecc)
        with pytest.raises(ValueError, match="too long"):
            zxingcpp.create_barcode(bytes(cap + 1), fmt, ec_level=ecc)


@pytest.mark.parametrize("encoder", ENCODER_PARAMS)
@pytest.mark.parametrize("ecc", qr.ECC_LEVELS)
def test_full_capacity_fits_every_encoder(encoder: str, ecc: str):
    payload = bytes([0xA5]) * qr.capacity(ecc)
    assert qr.decode(qr.encode(payload, ecc=ecc, backend=encoder)) == payload


@pytest.mark.parametrize("encoder", ENCODER_PARAMS)
def test_over_capacity_raises_naming_both_sizes(encoder: str):
    cap = qr.capacity("H")
    with pytest.raises(InvalidArgument, match=rf"{cap + 1}\b.*\b{cap}\b"):
        qr.encode(bytes(cap + 1), ecc="H", backend=encoder)


def test_canvas_size():
    assert qr.canvas_size(1) == 185
    assert qr.canvas_size(3) == 555
    assert qr.canvas_size(np.int64(2)) == 370


@pytest.mark.parametrize("module_px", [0, -1, 65, 1.5, True, "2", None])
def test_bad_module_px(module_px: object):
    with pytest.raises(InvalidArgument, match="module_px"):
        qr.canvas_size(module_px)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="module_px"):
        qr.encode(b"x", module_px=module_px)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoder", ENCODER_PARAMS)
@pytest.mark.parametrize("module_px", [1, 3])
def test_output_shape_and_dtype(encoder: str, module_px: int):
    image = qr.encode(b"shape", module_px=module_px, backend=encoder)
    size = qr.canvas_size(module_px)
    assert image.shape == (size, size)
    assert image.dtype == np.uint8
    assert image.flags.c_contiguous
    assert set(np.unique(image).tolist()) == {0, 255}


@pytest.mark.parametrize("encoder", ENCODER_PARAMS)
@pytest.mark.parametrize("module_px", [1, 3])
@pytest.mark.parametrize("length", [0, 1, 100, 1000, 2951])
def test_smaller_symbols_are_centred_on_the_same_canvas(encoder: str, module_px: int, length: int):
    payload = (bytes(range(256)) * 12)[:length]
    image = qr.encode(payload, module_px=module_px, backend=encoder)
    size = qr.canvas_size(module_px)
    assert image.shape == (size, size)
    rows = np.flatnonzero((image == 0).any(axis=1))
    cols = np.flatnonzero((image == 0).any(axis=0))
    top, bottom = rows[0], size - 1 - rows[-1]
    left, right = cols[0], size - 1 - cols[-1]
    # Finder patterns mark three corners, so the dark bounding box is the symbol itself.
    assert top == bottom == left == right
    assert top % module_px == 0
    margin_modules = top // module_px
    side_modules = 185 - 2 * margin_modules
    assert margin_modules >= 4
    assert (side_modules - 17) % 4 == 0  # a real QR version: 17 + 4 * version modules
    if length == qr.capacity("L"):
        assert margin_modules == 4


@needs_qrcode
@pytest.mark.parametrize("ecc", qr.ECC_LEVELS)
def test_empty_symbols_match_the_qrcode_encoder(ecc: str):
    assert np.array_equal(qr.encode(b"", ecc=ecc), qr.encode(b"", ecc=ecc, backend="qrcode"))


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", DECODER_PARAMS)
@pytest.mark.parametrize("module_px", [1, 3])
def test_blank_frame_is_unreadable(decoder: str, module_px: int):
    size = qr.canvas_size(module_px)
    with pytest.raises(FrameUnreadable):
        qr.decode(np.full((size, size), 255, dtype=np.uint8), backend=decoder)


@pytest.mark.parametrize("decoder", DECODER_PARAMS)
def test_noise_frame_is_unreadable(decoder: str):
    noise = np.random.default_rng(7).integers(0, 2, (370, 370), dtype=np.uint8) * 255
    with pytest.raises(FrameUnreadable):
        qr.decode(noise, backend=decoder)


@pytest.mark.parametrize("decoder", DECODER_PARAMS)
def test_two_different_symbols_are_unreadable(decoder: str):
    a = qr.encode(b"first", module_px=2)
    b = qr.encode(b"second", module_px=2)
    with pytest.raises(FrameUnreadable, match="found 2"):
        qr.decode(np.hstack([a, b]), backend=decoder)


def test_unknown_backends_list_the_choices():
    with pytest.raises(InvalidArgument, match="zxing, qrcode"):
        qr.encode(b"x", backend="segno")
    with pytest.raises(InvalidArgument, match="zxing, zbar"):
        qr.decode(qr.encode(b"x"), backend="opencv")


def test_unknown_ecc_lists_the_levels():
    with pytest.raises(InvalidArgument, match="L, M, Q, H"):
        qr.encode(b"x", ecc="X")
    with pytest.raises(InvalidArgument, match="L, M, Q, H"):
        qr.capacity("l")


def test_bad_payload_and_image_types():
    with pytest.raises(TypeError, match="bytes"):
        qr.encode("text")  # type: ignore[arg-type]
    assert qr.decode(qr.encode(bytearray(b"ba"))) == b"ba"
    assert qr.decode(qr.encode(memoryview(b"mv"))) == b"mv"
    with pytest.raises(InvalidArgument, match="uint8"):
        qr.decode(qr.encode(b"x").astype(np.float32))
    with pytest.raises(InvalidArgument, match="uint8"):
        qr.decode([[255]])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        qr.decode(np.zeros((4, 4, 2), dtype=np.uint8))
    with pytest.raises(InvalidArgument):
        qr.decode(np.zeros((0, 4), dtype=np.uint8))


def test_errors_are_engine_errors():
    assert issubclass(FrameUnreadable, MemvidError)
    assert issubclass(BackendUnavailable, ImportError)
    assert issubclass(InvalidArgument, ValueError)


# --- optional backends -----------------------------------------------------------------------


def test_available_backends():
    assert qr.available_encoders()[0] == "zxing"
    assert qr.available_decoders()[0] == "zxing"
    assert set(qr.available_encoders()) <= set(qr.ENCODERS)
    assert set(qr.available_decoders()) <= set(qr.DECODERS)


@pytest.mark.usefixtures("fresh_backend_caches")
def test_missing_qrcode_raises_backend_unavailable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "qrcode", None)
    assert qr.available_encoders() == ["zxing"]
    with pytest.raises(BackendUnavailable, match=r'pip install "langchain-qrvideo\[qr-alt\]"'):
        qr.encode(b"x", backend="qrcode")


@pytest.mark.usefixtures("fresh_backend_caches")
def test_missing_pyzbar_raises_backend_unavailable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    monkeypatch.setitem(sys.modules, "pyzbar.wrapper", None)
    assert qr.available_decoders() == ["zxing"]
    with pytest.raises(BackendUnavailable, match="apt-get install libzbar0") as info:
        qr.decode(qr.encode(b"x"), backend="zbar")
    assert "langchain-qrvideo[qr-alt]" in str(info.value)


@needs_zbar
def test_zbar_binary_config_id():
    # pyzbar's enum calls id 4 CFG_NUM; libzbar itself names it qrcode.binary (ZBAR_CFG_BINARY).
    api = qr._zbar_api()
    assert not isinstance(api, str)
    assert api.binary == 4
