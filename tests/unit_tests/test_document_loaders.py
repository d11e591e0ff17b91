"""Tests for the PDF, EPUB, text, Markdown and folder loaders.

The shipped samples in examples/data are real files made by pandoc and groff;
edge cases (encryption, scans, truncation, broken archives, legacy encodings)
are generated here in tmp_path.
"""

from __future__ import annotations

import inspect
import shutil
import warnings
import zipfile
from pathlib import Path

import pypdf
import pytest
from ebooklib import epub
from langchain_core.document_loaders import BaseLoader
from pypdf.constants import PageLabelStyle
from pypdf.errors import DependencyError, PyPdfError
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
)

from langchain_memvid.document_loaders import (
    DEFAULT_LOADERS,
    DirectoryLoader,
    EPUBLoader,
    LoaderError,
    LoaderWarning,
    MarkdownLoader,
    PDFLoader,
    TextLoader,
    decode_text,
    html_to_text,
    load_path,
    loader_for_path,
    markdown_title,
)

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
PDF = DATA / "qr_code_history.pdf"
EPUB3 = DATA / "moving_pictures.epub"
EPUB2 = DATA / "video_compression.epub"
MARKDOWN = DATA / "reed_solomon.md"
TEXT = DATA / "film_as_archive.txt"


# ----------------------------------------------------------------- PDF helpers


def _write(writer: pypdf.PdfWriter, path: Path) -> Path:
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def _sample_writer() -> pypdf.PdfWriter:
    """A writer holding the sample PDF's three text pages (and its metadata)."""
    return pypdf.PdfWriter(clone_from=PDF)


def _add_scanned_page(writer: pypdf.PdfWriter, index: int) -> None:
    """Insert a page that only paints a grey image, like a scan without OCR."""
    page = writer.insert_blank_page(width=200, height=200, index=index)
    image = DecodedStreamObject()
    image.set_data(bytes(range(0, 256, 4)) * 64)  # 64 x 64 grey pixels
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(64),
            NameObject("/Height"): NumberObject(64),
            NameObject("/ColorSpace"): NameObject("/DeviceGray"),
            NameObject("/BitsPerComponent"): NumberObject(8),
        }
    )
    image_ref = writer._add_object(image)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): image_ref})}
    )
    content = DecodedStreamObject()
    content.set_data(b"q 200 0 0 200 0 0 cm /Im0 Do Q")
    page[NameObject("/Contents")] = writer._add_object(content)


@pytest.fixture
def encrypted_pdf(tmp_path: Path) -> Path:
    writer = _sample_writer()
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    return _write(writer, tmp_path / "locked.pdf")


# ------------------------------------------------------------------------ PDF


def test_pdf_pages_and_metadata() -> None:
    docs = PDFLoader(PDF).load()
    assert len(docs) == 3
    assert [d.metadata["page"] for d in docs] == [0, 1, 2]
    assert [d.metadata["page_label"] for d in docs] == ["1", "2", "3"]
    for doc in docs:
        assert doc.metadata["source"] == str(PDF)
        assert doc.metadata["total_pages"] == 3
        assert doc.metadata["title"] == "A Short History of the QR Code"
        assert doc.metadata["author"] == "The langchain-memvid authors"
        assert set(doc.metadata) == {"source", "page", "page_label", "total_pages", "title", "author"}
        assert doc.page_content == doc.page_content.strip()
    assert docs[0].page_content.startswith("A Short History of the QR Code")
    assert "Masahiro Hara" in docs[0].page_content
    assert "finder pattern" in docs[0].page_content
    assert "Reed-Solomon" in docs[1].page_content
    assert "langchain-memvid" in docs[2].page_content


def test_pdf_single_mode_joins_pages() -> None:
    pages = PDFLoader(PDF).load()
    docs = PDFLoader(PDF, mode="single").load()
    assert len(docs) == 1
    assert docs[0].page_content == "\n\n".join(p.page_content for p in pages)
    assert "page" not in docs[0].metadata
    assert "page_label" not in docs[0].metadata
    assert docs[0].metadata["total_pages"] == 3
    assert docs[0].metadata["title"] == "A Short History of the QR Code"


def test_pdf_extract_kwargs_are_passed_to_pypdf() -> None:
    docs = PDFLoader(PDF, extraction_mode="layout").load()
    assert len(docs) == 3
    assert "Masahiro" in docs[0].page_content


def test_pdf_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        PDFLoader(PDF, mode="chapters")  # type: ignore[arg-type]


def test_pdf_without_info_has_no_title_or_author(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter()
    for page in pypdf.PdfReader(PDF).pages:
        writer.add_page(page)
    path = _write(writer, tmp_path / "plain.pdf")
    docs = PDFLoader(path).load()
    assert len(docs) == 3
    assert "title" not in docs[0].metadata
    assert "author" not in docs[0].metadata


def test_pdf_page_labels_come_from_the_document(tmp_path: Path) -> None:
    writer = _sample_writer()
    writer.set_page_label(0, 0, style=PageLabelStyle.LOWERCASE_ROMAN)
    writer.set_page_label(1, 2, style=PageLabelStyle.DECIMAL, start=1)
    path = _write(writer, tmp_path / "labels.pdf")
    assert [d.metadata["page_label"] for d in PDFLoader(path).load()] == ["i", "1", "2"]


def test_pdf_encrypted_without_password(encrypted_pdf: Path) -> None:
    with pytest.raises(LoaderError, match="encrypted") as info:
        PDFLoader(encrypted_pdf).load()
    assert str(encrypted_pdf) in str(info.value)
    assert "password=" in str(info.value)


def test_pdf_encrypted_with_password(encrypted_pdf: Path) -> None:
    docs = PDFLoader(encrypted_pdf, password="secret").load()
    assert len(docs) == 3
    assert "Masahiro Hara" in docs[0].page_content
    assert PDFLoader(encrypted_pdf, password="owner").load()[0].page_content == docs[0].page_content


def test_pdf_encrypted_with_wrong_password(encrypted_pdf: Path) -> None:
    with pytest.raises(LoaderError, match="wrong password") as info:
        PDFLoader(encrypted_pdf, password="guess").load()
    assert str(encrypted_pdf) in str(info.value)


def test_pdf_restricted_with_empty_user_password_opens(tmp_path: Path) -> None:
    writer = _sample_writer()
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    path = _write(writer, tmp_path / "restricted.pdf")
    assert len(PDFLoader(path).load()) == 3


def test_pdf_missing_crypto_dependency_is_explained(
    encrypted_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def needs_cryptography(self: pypdf.PdfReader, password: str) -> None:
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(pypdf.PdfReader, "decrypt", needs_cryptography)
    with pytest.raises(LoaderError, match="cryptography") as info:
        PDFLoader(encrypted_pdf, password="secret").load()
    assert isinstance(info.value.__cause__, DependencyError)


def test_pdf_scanned_page_is_skipped_with_warning(tmp_path: Path) -> None:
    writer = _sample_writer()
    _add_scanned_page(writer, index=1)
    path = _write(writer, tmp_path / "scan.pdf")
    with pytest.warns(LoaderWarning) as record:
        docs = PDFLoader(path).load()
    assert [d.metadata["page"] for d in docs] == [0, 2, 3]
    assert all(d.metadata["total_pages"] == 4 for d in docs)
    message = str(record[0].message)
    assert str(path) in message
    assert "pages 2," in message
    assert "OCR" in message


def test_pdf_all_pages_scanned_yields_nothing(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter()
    for index in range(3):
        _add_scanned_page(writer, index=index)
    path = _write(writer, tmp_path / "scans.pdf")
    with pytest.warns(LoaderWarning, match=r"pages 1-3"):
        assert PDFLoader(path).load() == []
    with pytest.warns(LoaderWarning):
        assert PDFLoader(path, mode="single").load() == []


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_pdf_truncated_file(tmp_path: Path, keep: float) -> None:
    data = PDF.read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(LoaderError, match="broken, truncated") as info:
        PDFLoader(path).load()
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, PyPdfError)


@pytest.mark.parametrize("content", [b"", b"this is not a PDF at all", b"%PDF-1.7\n1 0 obj\n<<"])
def test_pdf_not_a_pdf(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.pdf"
    path.write_bytes(content)
    with pytest.raises(LoaderError, match=r"fake\.pdf"):
        PDFLoader(path).load()


def test_pdf_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pdf"):
        PDFLoader(tmp_path / "nope.pdf").load()


# ----------------------------------------------------------------------- EPUB

EPUB3_CHAPTERS = [
    "Moving Pictures",
    "Toys that made pictures move",
    "Photographing motion",
    "The first films",
    "Television and videotape",
    "Digital video",
]
EPUB2_CHAPTERS = [
    "How Video Compression Works",
    "Pixels, colour and redundancy",
    "Transforms and quantisation",
    "Motion and groups of pictures",
    "Compression and machine-readable pictures",
]


def test_epub3_chapters_in_reading_order() -> None:
    docs = EPUBLoader(EPUB3).load()
    assert [d.metadata["chapter"] for d in docs] == EPUB3_CHAPTERS
    assert [d.metadata["chapter_index"] for d in docs] == list(range(len(EPUB3_CHAPTERS)))
    for doc in docs:
        assert doc.metadata["source"] == str(EPUB3)
        assert doc.metadata["title"] == "Moving Pictures"
        assert doc.metadata["author"] == "The langchain-memvid authors"
        assert set(doc.metadata) == {"source", "title", "author", "chapter", "chapter_index"}
        assert "<" not in doc.page_content
        assert "span.smallcaps" not in doc.page_content  # inline CSS dropped
        assert "  " not in doc.page_content
    first_films = docs[3].page_content
    assert first_films.startswith("The first films\n\nAt Thomas Edison")
    assert "Lumière" in first_films
    assert "28 December 1895" in first_films
    # Paragraphs survive as blank lines; the source's hard line wraps do not.
    assert first_films.count("\n\n") == 3  # heading + three paragraphs
    assert "\n" not in first_films.split("\n\n")[1]


def test_epub2_chapters_in_reading_order() -> None:
    docs = EPUBLoader(EPUB2).load()
    assert [d.metadata["chapter"] for d in docs] == EPUB2_CHAPTERS
    assert docs[0].metadata["title"] == "How Video Compression Works"
    assert docs[0].metadata["author"] == "The langchain-memvid authors"
    assert "4:2:0 chroma subsampling" in docs[1].page_content
    assert "motion vector" in docs[3].page_content


def test_epub_loaders_emit_no_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EPUBLoader(EPUB3).load()
        EPUBLoader(EPUB2).load()


def _make_epub(path: Path) -> Path:
    """A book whose spine order differs from its manifest, with nav, cover and odd chapters."""
    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("Test Book")
    book.set_language("en")
    book.add_author("Ada Writer")
    book.add_author("Bob Second")
    cover = epub.EpubHtml(title="Cover", file_name="cover.xhtml")
    cover.content = '<html><body><img src="cover.jpg" alt=""/></body></html>'
    one = epub.EpubHtml(title="One", file_name="one.xhtml")
    one.content = (
        "<html><body><h1>Heading One</h1><script>alert('x')</script>"
        "<p>Alpha   paragraph\n continues.</p><p>Beta paragraph.</p></body></html>"
    )
    two = epub.EpubHtml(title="Two", file_name="two.xhtml")
    two.content = "<html><body><p>No heading here, just text.</p></body></html>"
    three = epub.EpubHtml(title="Three", file_name="three.xhtml")
    three.content = "<html><body><h2>Third</h2><p>Gamma.</p></body></html>"
    for item in (cover, one, two, three):
        book.add_item(item)
    book.toc = [epub.Link("three.xhtml", "TOC Three", "three")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", cover, three, one, two]
    epub.write_epub(str(path), book, {})
    return path


def test_epub_spine_order_titles_and_empty_chapters(tmp_path: Path) -> None:
    docs = EPUBLoader(_make_epub(tmp_path / "book.epub")).load()
    # nav and the picture-only cover are skipped; order is the spine's.
    assert [d.page_content for d in docs] == [
        "Third\n\nGamma.",
        "Heading One\n\nAlpha paragraph continues.\n\nBeta paragraph.",
        "No heading here, just text.",
    ]
    # TOC title first, else the first heading, else the 1-based position.
    assert [d.metadata["chapter"] for d in docs] == ["TOC Three", "Heading One", "3"]
    assert [d.metadata["chapter_index"] for d in docs] == [0, 1, 2]
    assert docs[0].metadata["author"] == "Ada Writer, Bob Second"
    assert docs[0].metadata["title"] == "Test Book"


def test_epub_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.epub"
    path.write_bytes(b"definitely not a zip archive")
    with pytest.raises(LoaderError, match="broken, truncated or not an EPUB") as info:
        EPUBLoader(path).load()
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None


def test_epub_truncated(tmp_path: Path) -> None:
    path = tmp_path / "truncated.epub"
    data = EPUB3.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoaderError, match=r"truncated\.epub"):
        EPUBLoader(path).load()


def test_epub_zip_without_container(tmp_path: Path) -> None:
    path = tmp_path / "empty.epub"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("chapter.xhtml", "<html><body><p>orphan</p></body></html>")
    with pytest.raises(LoaderError, match=r"empty\.epub"):
        EPUBLoader(path).load()


def test_epub_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EPUBLoader(tmp_path / "nope.epub").load()


def test_html_to_text_layout() -> None:
    html = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>ignored</title>'
        "<style>p { color: red }</style></head><body><script>var x = 1;</script>"
        "<h2>  Part&#160;One </h2><p>First   line\n continues <em>here</em>.<br/>After break.</p>"
        "<ul><li>one</li><li>two <b>bold</b></li></ul>"
        "<pre>code  x\n    indented</pre>"
        "<table><tr><td>a</td><td>b</td></tr></table><p>soft&#173;hyphen</p></body></html>"
    )
    text, heading = html_to_text(html)
    assert heading == "Part One"
    assert text == (
        "Part One\n\nFirst line continues here.\nAfter break.\n\none\ntwo bold\n\n"
        "code  x\n    indented\n\na b\n\nsofthyphen"
    )
    assert html_to_text(b"<html><body><img src='c.jpg'/></body></html>") == ("", None)


# --------------------------------------------------------------- text, Markdown


def test_text_loader_sample() -> None:
    docs = TextLoader(TEXT).load()
    assert len(docs) == 1
    assert docs[0].metadata == {"source": str(TEXT)}
    assert docs[0].page_content == TEXT.read_text(encoding="utf-8")
    assert "Arctic World Archive" in docs[0].page_content


def test_markdown_loader_sample() -> None:
    docs = MarkdownLoader(MARKDOWN).load()
    assert len(docs) == 1
    assert docs[0].metadata == {
        "source": str(MARKDOWN),
        "title": "Reed-Solomon Codes: Error Correction for Discs, Spacecraft and QR Codes",
    }
    assert "GF(2^8)" in docs[0].page_content


def test_markdown_without_heading_has_no_title(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("just some *notes*\n", encoding="utf-8")
    assert MarkdownLoader(path).load()[0].metadata == {"source": str(path)}


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Title\n\nbody", "Title"),
        ("intro\n\n## Closed heading ##\n", "Closed heading"),
        ("Setext Title\n============\n\nbody", "Setext Title"),
        ("Second level\n---\n", "Second level"),
        ("---\ntitle: From Front Matter\nauthor: x\n---\n# Heading\n", "From Front Matter"),
        ("---\nauthor: x\n---\n# After Front Matter\n", "After Front Matter"),
        ("```\n# not a heading\n```\n# Real\n", "Real"),
        ("#hashtag is not a heading\n", None),
        ("no heading at all\n", None),
    ],
)
def test_markdown_title(text: str, title: str | None) -> None:
    assert markdown_title(text) == title


def test_text_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfcaf\xc3\xa9 au lait")
    assert TextLoader(path).load()[0].page_content == "café au lait"


def test_text_utf16_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    text = "zo\u00ebtrope \u2013 kinetoscope"
    path.write_bytes(text.encode("utf-16"))
    assert TextLoader(path).load()[0].page_content == text


LATIN1_TEXT = (
    "Le cinéma est né à Paris en décembre 1895, quand les frères Lumière ont montré leurs "
    "films au Grand Café. Les spectateurs étaient étonnés : « Ça bouge ! » disaient-ils. "
    "Déjà, la caméra légère servait à la fois d'appareil de prise de vues et de projecteur.\n"
)


def test_text_latin1_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(LATIN1_TEXT.encode("latin-1"))
    with pytest.warns(LoaderWarning, match="not UTF-8"):
        docs = TextLoader(path).load()
    assert docs[0].page_content == LATIN1_TEXT


def test_text_explicit_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(LATIN1_TEXT.encode("latin-1"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TextLoader(path, encoding="latin-1").load()[0].page_content == LATIN1_TEXT


def test_text_wrong_explicit_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(LATIN1_TEXT.encode("latin-1"))
    with pytest.raises(LoaderError, match="encoding=") as info:
        TextLoader(path, encoding="utf-8").load()
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_text_unknown_encoding_name(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(LoaderError, match="unknown encoding"):
        TextLoader(path, encoding="no-such-codec").load()


def test_text_binary_is_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(LoaderError, match="encoding=") as info:
        TextLoader(path).load()
    assert str(path) in str(info.value)


def test_text_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("  \n", encoding="utf-8")
    assert TextLoader(path).load() == []


def test_decode_text_prefers_utf8() -> None:
    assert decode_text("naïve".encode(), "x.txt") == "naïve"


def test_text_loader_on_a_folder(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="directory"):
        TextLoader(tmp_path).load()


# ------------------------------------------------------------ lazy generators


@pytest.mark.parametrize(
    "loader",
    [
        PDFLoader(PDF),
        EPUBLoader(EPUB3),
        TextLoader(TEXT),
        MarkdownLoader(MARKDOWN),
        DirectoryLoader(DATA),
    ],
    ids=lambda loader: type(loader).__name__,
)
def test_lazy_load_is_a_generator(loader: BaseLoader) -> None:
    assert inspect.isgenerator(loader.lazy_load())
    iterator = loader.lazy_load()
    assert next(iterator).page_content


# -------------------------------------------------------------------- folders


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    shutil.copy(TEXT, root / "b_archive.txt")
    shutil.copy(MARKDOWN, root / "a_codes.md")
    shutil.copy(PDF, root / "sub" / "c_history.pdf")
    (root / "sub" / "d_notes.markdown").write_text("# Notes\n\nSome notes.\n", encoding="utf-8")
    (root / "report.docx").write_bytes(b"PK\x03\x04 not really a docx")
    (root / "README").write_text("no suffix", encoding="utf-8")
    (root / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (root / ".git" / "config.txt").write_text("hidden too", encoding="utf-8")
    return root


def test_directory_loads_in_sorted_order_and_reports_unsupported(mixed_folder: Path) -> None:
    loader = DirectoryLoader(mixed_folder)
    with pytest.warns(LoaderWarning, match="skipped 2 of 6 files") as record:
        docs = loader.load()
    sources = [Path(d.metadata["source"]).relative_to(mixed_folder).as_posix() for d in docs]
    assert sources == [
        "a_codes.md",
        "b_archive.txt",
        "sub/c_history.pdf",
        "sub/c_history.pdf",
        "sub/c_history.pdf",
        "sub/d_notes.markdown",
    ]
    assert docs[0].metadata["title"].startswith("Reed-Solomon Codes")
    assert docs[-1].metadata["title"] == "Notes"
    assert loader.skipped == [
        (str(mixed_folder / "README"), "unsupported file type (no suffix)"),
        (str(mixed_folder / "report.docx"), "unsupported file type (.docx)"),
    ]
    assert "report.docx" in str(record[0].message)
    assert not any("hidden" in d.page_content for d in docs)


def test_directory_raise_stops_at_broken_file(mixed_folder: Path) -> None:
    (mixed_folder / "broken.pdf").write_bytes(b"%PDF-1.4\ntruncated")
    with pytest.raises(LoaderError, match=r"broken\.pdf"):
        DirectoryLoader(mixed_folder).load()


def test_directory_skip_reports_broken_file(mixed_folder: Path) -> None:
    (mixed_folder / "broken.pdf").write_bytes(b"%PDF-1.4\ntruncated")
    loader = DirectoryLoader(mixed_folder, on_error="skip")
    with pytest.warns(LoaderWarning, match="skipped 3 of 7 files"):
        docs = loader.load()
    assert len(docs) == 6
    reasons = dict(loader.skipped)
    assert reasons[str(mixed_folder / "broken.pdf")].startswith("LoaderError: ")
    # A second run starts a fresh report.
    with pytest.warns(LoaderWarning):
        loader.load()
    assert len(loader.skipped) == 3


def test_directory_reports_files_without_text(tmp_path: Path) -> None:
    (tmp_path / "blank.txt").write_text("\n\n", encoding="utf-8")
    (tmp_path / "full.txt").write_text("words", encoding="utf-8")
    loader = DirectoryLoader(tmp_path)
    with pytest.warns(LoaderWarning, match="no extractable text"):
        assert [d.page_content for d in loader.load()] == ["words"]
    assert loader.skipped == [(str(tmp_path / "blank.txt"), "no extractable text")]


def test_directory_not_recursive_and_glob(mixed_folder: Path) -> None:
    with pytest.warns(LoaderWarning):
        top = DirectoryLoader(mixed_folder, recursive=False).load()
    assert {Path(d.metadata["source"]).name for d in top} == {"a_codes.md", "b_archive.txt"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        only_pdf = DirectoryLoader(mixed_folder, glob="**/*.pdf").load()
    assert len(only_pdf) == 3


def test_directory_custom_loaders(mixed_folder: Path) -> None:
    # Suffix keys are normalised; None switches a default loader off.
    loader = DirectoryLoader(mixed_folder, loaders={"DOCX": TextLoader, ".pdf": None})
    with pytest.warns(LoaderWarning, match="skipped 2 of 6"):
        docs = loader.load()
    names = [Path(d.metadata["source"]).name for d in docs]
    assert names == ["a_codes.md", "b_archive.txt", "report.docx", "d_notes.markdown"]
    assert "title" not in docs[2].metadata
    assert (str(mixed_folder / "sub" / "c_history.pdf"), "unsupported file type (.pdf)") in loader.skipped


def test_directory_on_sample_data_skips_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = DirectoryLoader(DATA)
        docs = loader.load()
    assert loader.skipped == []
    names = sorted({Path(d.metadata["source"]).name for d in docs})
    assert names == sorted([PDF.name, EPUB3.name, EPUB2.name, MARKDOWN.name, TEXT.name, "README.md"])
    assert len(docs) == 3 + 6 + 5 + 1 + 1 + 1


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DirectoryLoader(tmp_path / "missing").load()
    with pytest.raises(LoaderError, match="not a folder"):
        DirectoryLoader(TEXT).load()
    with pytest.raises(ValueError, match="on_error"):
        DirectoryLoader(tmp_path, on_error="ignore")  # type: ignore[arg-type]


# ---------------------------------------------------------------- load_path


def test_load_path_picks_the_loader() -> None:
    assert len(load_path(PDF)) == 3
    assert len(load_path(EPUB2)) == 5
    assert isinstance(loader_for_path(MARKDOWN), MarkdownLoader)
    assert isinstance(loader_for_path(TEXT), TextLoader)
    assert isinstance(loader_for_path(EPUB3), EPUBLoader)
    assert isinstance(loader_for_path(DATA), DirectoryLoader)
    assert set(DEFAULT_LOADERS) == {".pdf", ".epub", ".txt", ".md", ".markdown"}


def test_load_path_folder(mixed_folder: Path) -> None:
    docs = load_path(mixed_folder, glob="*.md")
    assert [Path(d.metadata["source"]).name for d in docs] == ["a_codes.md"]


def test_load_path_unsupported_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "slides.pptx"
    path.write_bytes(b"x")
    with pytest.raises(LoaderError, match=r"slides\.pptx: unsupported file type \(\.pptx\)"):
        load_path(path)
    with pytest.raises(FileNotFoundError):
        load_path(tmp_path / "missing.pdf")


def test_loader_error_is_a_value_error() -> None:
    assert issubclass(LoaderError, ValueError)
    assert issubclass(LoaderWarning, UserWarning)
