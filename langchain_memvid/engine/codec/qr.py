"""Byte-exact QR symbols: payload bytes to a grayscale frame image and back.

Every frame of a video must have the same size, so each symbol is drawn at ``module_px`` pixels
per module with a 4-module quiet zone and centred on a white canvas as large as a version-40
symbol. Payloads always travel in QR byte mode and decoders return the raw bytes, never text.

Backends: ``zxing`` (zxing-cpp, a core dependency) encodes and decodes; ``qrcode`` (pure Python)
encodes and ``zbar`` (pyzbar + libzbar) decodes. Both are optional and imported lazily so that a
missing one only fails when it is asked for. zxing-cpp is imported on first use too, so that code
that draws or reads no frame does not load it.
"""

from __future__ import annotations

import ctypes
import functools
import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from langchain_memvid.engine.errors import BackendUnavailable, FrameUnreadable, InvalidArgument

__all__ = [
    "ENCODERS",
    "DECODERS",
    "ECC_LEVELS",
    "capacity",
    "canvas_size",
    "encode",
    "decode",
    "available_encoders",
    "available_decoders",
]

ENCODERS = ("zxing", "qrcode")
DECODERS = ("zxing", "zbar")
ECC_LEVELS = ("L", "M", "Q", "H")

# Largest byte-mode payload zxing-cpp's writer fits in one version-40 symbol. The standard holds
# 2953/2331/1663/1273 bytes; zxing-cpp rejects the last two (measured with zxing-cpp 3.1.1), and
# the qrcode backend accepts these sizes too, so both encoders share one limit.
_CAPACITY = {"L": 2951, "M": 2329, "Q": 1661, "H": 1271}

_QUIET_MODULES = 4
_V40_MODULES = 177
_CANVAS_MODULES = _V40_MODULES + 2 * _QUIET_MODULES  # 185
_MAX_MODULE_PX = 64  # a 11840 px square frame; anything larger is surely a mistake

# zbar reads best and fastest at about 2 px/module: frames are rescaled towards this side.
_ZBAR_MIN_SIDE = 2 * _CANVAS_MODULES
_ZBAR_BINARY_CFG = 4  # ZBAR_CFG_BINARY in zbar.h (0.23); pyzbar's enum mislabels it CFG_NUM
_ZBAR_QRCODE = 64  # ZBAR_QRCODE
_ZBAR_ALL = 0  # ZBAR_NONE: a config applies to every symbology
_ZBAR_CFG_ENABLE = 0
_ZBAR_Y800 = 0x30303859  # fourcc "Y800": 8-bit grayscale

_QRCODE_INSTALL = 'pip install "langchain-qrvideo[qr-alt]"'
_ZBAR_INSTALL = f"{_QRCODE_INSTALL} and apt-get install libzbar0"

# zxing-cpp refuses to write an empty payload, but a stored frame may legitimately be empty, so
# the four version-1 empty byte-mode symbols are kept here (21 rows of 21 bits, 6 hex digits a
# row, 1 = dark), generated once with the qrcode package.
_EMPTY_SYMBOLS = {
    "L": (
        "1fdf7f104a41174c5d174e5d17455d1043411fd57f"
        "001f001b4d410b295506c4d612820d11444400172b"
        "1fc9f21043b9175f6d17571c174c471050d71fd20c"
    ),
    "M": (
        "1fcb7f105c4117595d175d5d174f5d1045411fd57f"
        "001b001051ce1315550dd69f04b4151c7444001be8"
        "1fc1601047b9174d241749041748471040141fde9e"
    ),
    "Q": (
        "1fdc7f105e41175c5d17575d17535d1040411fd57f"
        "001b000d665f07abaa1d6dee1389bb16c8ee001946"
        "1fda11104346175555174eaa1752ed1057ba1fceef"
    ),
    "H": (
        "1fd67f104e41175d5d174c5d175e5d1043411fd57f"
        "00140000cf55190dd505c45f1d80d5116944001468"
        "1fcca0105139174fa41747c41749071040541fc61e"
    ),
}


def capacity(ecc: str) -> int:
    """Return the largest payload, in bytes, one frame holds at error-correction level ``ecc``.

    Args:
        ecc: One of ``ECC_LEVELS``.

    Returns:
        The byte-mode capacity of a version-40 symbol as accepted by every encoder.

    Raises:
        InvalidArgument: ``ecc`` is not a known level.
    """
    return _CAPACITY[_check_ecc(ecc)]


def canvas_size(module_px: int) -> int:
    """Return the side, in pixels, of every frame drawn at ``module_px`` pixels per module.

    Args:
        module_px: Pixels per QR module.

    Returns:
        ``185 * module_px``: a version-40 symbol plus its 4-module quiet zone on each side.

    Raises:
        InvalidArgument: ``module_px`` is not an integer in 1..64.
    """
    return _CANVAS_MODULES * _check_module_px(module_px)


def encode(payload: bytes, *, ecc: str = "L", module_px: int = 1, backend: str = "zxing") -> np.ndarray:
    """Draw ``payload`` as one byte-mode QR symbol centred on a fixed-size white canvas.

    Args:
        payload: The bytes to store, at most ``capacity(ecc)`` of them (may be empty).
        ecc: Error-correction level, one of ``ECC_LEVELS``.
        module_px: Pixels per module; the canvas side is ``canvas_size(module_px)``.
        backend: Encoder, one of ``ENCODERS``.

    Returns:
        A C-contiguous ``uint8`` array of shape ``(canvas_size, canvas_size)``, dark modules 0 and
        light 255.

    Raises:
        InvalidArgument: Unknown backend or level, bad ``module_px`` or payload too long.
        BackendUnavailable: The ``qrcode`` backend is asked for but not installed.
        TypeError: ``payload`` is not bytes-like.
    """
    _check_choice("encoder", backend, ENCODERS)
    _check_ecc(ecc)
    size = canvas_size(module_px)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    data = bytes(payload)
    limit = _CAPACITY[ecc]
    if len(data) > limit:
        raise InvalidArgument(
            f"payload of {len(data)} bytes exceeds the {limit}-byte capacity of one QR frame "
            f"at ECC level {ecc}"
        )
    if backend == "qrcode":
        modules = _qrcode_modules(data, ecc)
    elif not data:
        modules = _empty_modules(ecc)
    else:
        modules = None
    if modules is None:
        import zxingcpp

        barcode = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level=ecc)
        symbol = np.array(barcode.to_image(scale=module_px), dtype=np.uint8)
    else:
        symbol = _render(modules, module_px)
    return _centre(symbol, size)


def decode(image: np.ndarray, *, backend: str = "zxing") -> bytes:
    """Return the exact bytes held by the single QR symbol in ``image``.

    Args:
        image: A grayscale ``(h, w)`` or BGR/BGRA ``(h, w, 3|4)`` ``uint8`` frame.
        backend: Decoder, one of ``DECODERS``.

    Returns:
        The payload bytes, byte for byte as encoded.

    Raises:
        FrameUnreadable: No QR symbol could be read, or several different ones were found.
        InvalidArgument: Unknown backend or an image that is not a 2-D/3-D ``uint8`` array.
        BackendUnavailable: The ``zbar`` backend is asked for but pyzbar or libzbar is missing.
    """
    _check_choice("decoder", backend, DECODERS)
    gray = _as_gray(image)
    if backend == "zbar":
        return _decode_zbar(gray)
    return _decode_zxing(gray)


def available_encoders() -> list[str]:
    """Return the encoders that can run here, in ``ENCODERS`` order."""
    names = ["zxing"]
    if _qrcode_api() is not None:
        names.append("qrcode")
    return names


def available_decoders() -> list[str]:
    """Return the decoders that can run here, in ``DECODERS`` order."""
    names = ["zxing"]
    if isinstance(_zbar_api(), SimpleNamespace):
        names.append("zbar")
    return names


# --- argument checks -------------------------------------------------------------------------


def _check_choice(what: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgument(f"unknown QR {what} {value!r}; choose one of {', '.join(allowed)}")
    return value


def _check_ecc(ecc: object) -> str:
    return _check_choice("error-correction level", ecc, ECC_LEVELS)


def _check_module_px(module_px: object) -> int:
    if (
        isinstance(module_px, bool)
        or not isinstance(module_px, (int, np.integer))
        or not 1 <= module_px <= _MAX_MODULE_PX
    ):
        raise InvalidArgument(f"module_px must be an integer from 1 to {_MAX_MODULE_PX}, got {module_px!r}")
    return int(module_px)


# --- drawing ---------------------------------------------------------------------------------


def _render(modules: np.ndarray, module_px: int) -> np.ndarray:
    """Turn a boolean module matrix (True = dark, quiet zone included) into pixels."""
    pixels = np.where(modules, np.uint8(0), np.uint8(255)).astype(np.uint8)
    if module_px > 1:
        pixels = pixels.repeat(module_px, axis=0).repeat(module_px, axis=1)
    return pixels


def _centre(symbol: np.ndarray, size: int) -> np.ndarray:
    """Place ``symbol`` in the middle of a white ``size`` x ``size`` canvas."""
    side = symbol.shape[0]
    if symbol.shape != (side, side) or side > size:
        raise AssertionError(f"encoder produced a {symbol.shape} symbol for a {size}px canvas")
    if side == size:
        return np.ascontiguousarray(symbol)
    # Sides differ by 4 * (40 - version) modules, so the offset is a whole number of modules.
    offset = (size - side) // 2
    canvas = np.full((size, size), 255, dtype=np.uint8)
    canvas[offset : offset + side, offset : offset + side] = symbol
    return canvas


@functools.lru_cache(maxsize=len(ECC_LEVELS))
def _empty_modules(ecc: str) -> np.ndarray:
    """Return the module matrix, quiet zone included, of the empty symbol at level ``ecc``."""
    hexrows = _EMPTY_SYMBOLS[ecc]
    rows = [int(hexrows[i : i + 6], 16) for i in range(0, len(hexrows), 6)]
    bits = np.array([[(row >> (20 - col)) & 1 for col in range(21)] for row in rows], dtype=bool)
    matrix = np.pad(bits, _QUIET_MODULES, constant_values=False)
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=1)
def _qrcode_api() -> Any:
    """Import the optional ``qrcode`` package once; None when it is not installed."""
    try:
        import qrcode
        import qrcode.constants
        import qrcode.util
    except ImportError:
        return None
    return qrcode


def _qrcode_modules(data: bytes, ecc: str) -> np.ndarray:
    """Encode with the pure-Python ``qrcode`` package, forced to byte mode."""
    qrcode = _qrcode_api()
    if qrcode is None:
        raise BackendUnavailable(f"the 'qrcode' QR encoder needs the qrcode package: {_QRCODE_INSTALL}")
    level = getattr(qrcode.constants, f"ERROR_CORRECT_{ecc}")
    qr = qrcode.QRCode(version=None, error_correction=level, box_size=1, border=_QUIET_MODULES)
    # Without an explicit byte-mode segment qrcode picks numeric/alphanumeric modes for
    # digit-like data, which changes capacity and, for some readers, the decoded bytes.
    qr.add_data(qrcode.util.QRData(data, mode=qrcode.util.MODE_8BIT_BYTE), optimize=0)
    qr.make(fit=True)
    return np.array(qr.get_matrix(), dtype=bool)


# --- reading ---------------------------------------------------------------------------------


def _as_gray(image: object) -> np.ndarray:
    """Return ``image`` as a C-contiguous 2-D ``uint8`` array, converting colour frames."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidArgument(f"a QR frame must be a uint8 numpy array, got {kind}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        import cv2

        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    if image.ndim != 2 or 0 in image.shape:
        raise InvalidArgument(f"a QR frame must be (h, w) or (h, w, 3|4), got {image.shape}")
    return np.ascontiguousarray(image)


def _single(found: list[bytes]) -> bytes:
    distinct = set(found)
    if not distinct:
        raise FrameUnreadable("no QR symbol could be read from the frame")
    if len(distinct) > 1:
        raise FrameUnreadable(f"expected one QR symbol in the frame, found {len(distinct)}")
    return found[0]


def _decode_zxing(gray: np.ndarray) -> bytes:
    """Read with zxing-cpp: a fast pass for pure generated frames, then a robust one."""
    import zxingcpp

    fmt = zxingcpp.BarcodeFormat.QRCode
    formats = zxingcpp.BarcodeFormats(fmt)
    # A pure frame (as written, or losslessly stored) decodes in well under a millisecond this way.
    # ``return_errors`` is needed to see empty symbols, which zxing-cpp counts as invalid; the
    # checks below drop the symbols that really failed and the format-NONE placeholder the pure
    # reader returns when it finds nothing.
    results = zxingcpp.read_barcodes(
        gray,
        formats=formats,
        is_pure=True,
        try_rotate=False,
        try_downscale=False,
        try_invert=False,
        return_errors=True,
    )
    found = [bytes(r.bytes) for r in results if r.format == fmt and r.error is None]
    if not found:
        # Lossy-codec frames are blurred and shifted; let zxing search and binarize properly.
        results = zxingcpp.read_barcodes(gray, formats=formats)
        found = [bytes(r.bytes) for r in results if r.format == fmt and r.error is None]
    return _single(found)


@functools.lru_cache(maxsize=1)
def _zbar_api() -> SimpleNamespace | str:
    """Load pyzbar's ctypes bindings once; on failure return why, to raise later."""
    try:
        from pyzbar import wrapper
    except ModuleNotFoundError as exc:
        if (exc.name or "pyzbar").partition(".")[0] == "pyzbar":
            return f"the 'zbar' QR decoder needs pyzbar and libzbar: {_ZBAR_INSTALL}"
        return f"the 'zbar' QR decoder cannot load libzbar ({exc}): {_ZBAR_INSTALL}"
    except (ImportError, OSError) as exc:  # pyzbar is there but libzbar is missing or broken
        return f"the 'zbar' QR decoder cannot load libzbar ({exc}): {_ZBAR_INSTALL}"
    binary = _zbar_binary_config(wrapper)
    if binary is None:
        return (
            "the installed libzbar has no binary QR mode (ZBAR_CFG_BINARY), so it cannot return "
            "exact bytes; install libzbar 0.23 or newer"
        )
    return SimpleNamespace(w=wrapper, binary=binary)


def _zbar_binary_config(wrapper: Any) -> int | None:
    """Find the id of ``qrcode.binary`` by asking libzbar, and check a scanner accepts it."""
    symbology, config, value = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    rc = wrapper.zbar_parse_config(
        b"qrcode.binary", ctypes.byref(symbology), ctypes.byref(config), ctypes.byref(value)
    )
    cfg = config.value if rc == 0 and symbology.value == _ZBAR_QRCODE else _ZBAR_BINARY_CFG
    scanner = wrapper.zbar_image_scanner_create()
    if not scanner:
        return None
    try:
        ok = wrapper.zbar_image_scanner_set_config(scanner, _ZBAR_QRCODE, cfg, 1) == 0
    finally:
        wrapper.zbar_image_scanner_destroy(scanner)
    return cfg if ok else None


def _decode_zbar(gray: np.ndarray) -> bytes:
    """Read with libzbar in binary mode, through pyzbar's ctypes bindings."""
    api = _zbar_api()
    if not isinstance(api, SimpleNamespace):
        raise BackendUnavailable(api)
    import cv2

    side = min(gray.shape)
    if side < _ZBAR_MIN_SIDE:
        # zbar cannot sample 1 px/module: blow the frame up to about 2 px/module, crisp.
        factor = math.ceil(_ZBAR_MIN_SIDE / side)
        gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    elif side >= _ZBAR_MIN_SIDE * 3 // 2:
        # zbar's finder slows down sharply with module size (v40: ~3 ms at 2 px/module, ~40 ms
        # at 3, ~100 ms at 8), so first try the frame shrunk to about 2 px/module.
        factor = _ZBAR_MIN_SIDE / side
        small = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        found = _zbar_scan(api, small)
        if found:
            return _single(found)
    return _single(_zbar_scan(api, gray))


def _zbar_scan(api: SimpleNamespace, gray: np.ndarray) -> list[bytes]:
    """Return the payloads of every QR symbol libzbar finds in ``gray``."""
    w = api.w
    gray = np.ascontiguousarray(gray)  # zbar reads this buffer in place: keep it alive
    height, width = gray.shape
    scanner = w.zbar_image_scanner_create()
    if not scanner:
        raise MemoryError("zbar could not create an image scanner")
    found: list[bytes] = []
    try:
        w.zbar_image_scanner_set_config(scanner, _ZBAR_ALL, _ZBAR_CFG_ENABLE, 0)
        w.zbar_image_scanner_set_config(scanner, _ZBAR_QRCODE, _ZBAR_CFG_ENABLE, 1)
        # Binary mode: hand back the byte-mode segment untouched instead of guessing a charset
        # and transcoding it to UTF-8.
        w.zbar_image_scanner_set_config(scanner, _ZBAR_QRCODE, api.binary, 1)
        image = w.zbar_image_create()
        if not image:
            raise MemoryError("zbar could not create an image")
        try:
            w.zbar_image_set_format(image, _ZBAR_Y800)
            w.zbar_image_set_size(image, width, height)
            w.zbar_image_set_data(image, gray.ctypes.data_as(ctypes.c_void_p), gray.size, None)
            if w.zbar_scan_image(scanner, image) < 0:
                raise FrameUnreadable("zbar rejected the frame")
            symbol = w.zbar_image_first_symbol(image)
            while symbol:
                if symbol.contents.type == _ZBAR_QRCODE:
                    length = w.zbar_symbol_get_data_length(symbol)
                    data = w.zbar_symbol_get_data(symbol)
                    found.append(ctypes.string_at(data, length) if length else b"")
                symbol = w.zbar_symbol_next(symbol)
        finally:
            w.zbar_image_destroy(image)
    finally:
        w.zbar_image_scanner_destroy(scanner)
    return found
