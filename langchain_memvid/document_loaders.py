"""Document loaders for PDF, EPUB, plain text and Markdown files, and whole folders.

Every loader is a LangChain :class:`~langchain_core.document_loaders.BaseLoader`
whose :meth:`lazy_load` yields :class:`~langchain_core.documents.Document` objects
one at a time, so large folders never sit in memory at once. Failures a user can
act on (an encrypted PDF, a truncated file, an unknown text encoding) raise
:class:`LoaderError`, whose message names the file and the next step, instead of
a traceback from deep inside a parsing library.

The parsing libraries are imported on first use, which keeps
``import langchain_memvid`` (and so the command line) quick.

The metadata keys follow LangChain's own loaders (``source``, ``page``,
``page_label``, ``total_pages``, ``title``, ``author``) so that existing prompts
and filters keep working.
"""

from __future__ import annotations

import codecs
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import unquote

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from langchain_memvid.errors import LoaderError, LoaderWarning

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from pypdf import PdfReader

__all__ = [
    "LoaderError",
    "LoaderWarning",
    "PDFLoader",
    "EPUBLoader",
    "TextLoader",
    "MarkdownLoader",
    "DirectoryLoader",
    "DEFAULT_LOADERS",
    "loader_for_path",
    "load_path",
]

StrPath: TypeAlias = str | os.PathLike[str]
LoaderFactory: TypeAlias = Callable[[Path], BaseLoader]
OnError: TypeAlias = Literal["raise", "skip"]


def _existing_file(file_path: StrPath) -> Path:
    """Return ``file_path`` as a Path, failing clearly when it is not a readable file."""
    path = Path(file_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise LoaderError(f"{path} is a directory; use DirectoryLoader or load_path() for folders")
    return path


def _format_numbers(numbers: list[int]) -> str:
    """Format page numbers compactly for a warning: ``1, 3-5, 9``."""
    ranges: list[str] = []
    start = prev = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == prev + 1:
            prev = number
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if number is not None:
            start = prev = number
    return ", ".join(ranges)


# --------------------------------------------------------------------------- PDF


class PDFLoader(BaseLoader):
    """Load a PDF with pypdf, one Document per page or one for the whole file.

    Metadata: ``source``, ``total_pages``, ``title`` and ``author`` (when the PDF
    has them) and, in page mode, ``page`` (0-based) and ``page_label`` (the label
    printed on the page, e.g. ``"iv"``). Pages without extractable text, usually
    scans, are skipped with a :class:`LoaderWarning` naming them; run OCR (for
    example ``ocrmypdf``) first to include them.

    Args:
        file_path: The PDF file.
        mode: ``"page"`` for one Document per page, ``"single"`` for one Document
            with all pages joined by a blank line.
        password: The password of an encrypted PDF.
        **extract_kwargs: Passed to :meth:`pypdf.PageObject.extract_text`, e.g.
            ``extraction_mode="layout"``.
    """

    def __init__(
        self,
        file_path: StrPath,
        *,
        mode: Literal["page", "single"] = "page",
        password: str | None = None,
        **extract_kwargs: Any,
    ) -> None:
        if mode not in ("page", "single"):
            raise ValueError(f"mode must be 'page' or 'single', not {mode!r}")
        self.file_path = file_path
        self.mode = mode
        self.password = password
        self.extract_kwargs = extract_kwargs

    def lazy_load(self) -> Iterator[Document]:
        """Yield the pages (or the single joined document) of the PDF.

        Raises:
            LoaderError: The PDF is encrypted and no or a wrong password was
                given, or the file is broken, truncated or not a PDF.
            FileNotFoundError: The file does not exist.
        """
        from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

        path = _existing_file(self.file_path)
        try:
            reader = self._open(path)
            base: dict[str, Any] = {"source": str(path), "total_pages": len(reader.pages)}
            base.update(_pdf_info(reader))
            labels = _page_labels(reader)
        except LoaderError:
            raise
        except DependencyError as e:
            raise LoaderError(
                f"{path} uses AES encryption, which pypdf can only read with the "
                f"'cryptography' package ({e}); install it (pip install cryptography) and retry"
            ) from e
        except FileNotDecryptedError as e:
            raise LoaderError(f"{path} is encrypted; pass password=... to PDFLoader") from e
        except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise _broken_pdf(path, e) from e

        textless: list[int] = []
        texts: list[str] = []
        for index, page in enumerate(reader.pages):
            try:
                text = page.extract_text(**self.extract_kwargs).strip()
            except DependencyError as e:
                raise LoaderError(
                    f"{path} page {index + 1}: pypdf needs an optional package to decode it "
                    f"({e}); install it and retry"
                ) from e
            except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise _broken_pdf(path, e, page=index + 1) from e
            if not text:
                textless.append(index + 1)
                continue
            if self.mode == "page":
                metadata = {**base, "page": index, "page_label": labels[index]}
                yield Document(page_content=text, metadata=metadata)
            else:
                texts.append(text)
        if self.mode == "single" and texts:
            yield Document(page_content="\n\n".join(texts), metadata=base)
        if textless:
            warnings.warn(
                f"{path}: skipped {len(textless)} of {len(reader.pages)} pages with no "
                f"extractable text (pages {_format_numbers(textless)}, counting from 1); "
                f"they are probably scanned images: run OCR on the PDF (e.g. ocrmypdf) "
                f"to include them",
                LoaderWarning,
                stacklevel=2,
            )

    def _open(self, path: Path) -> PdfReader:
        """Open ``path`` and decrypt it, turning password problems into LoaderError."""
        from pypdf import PasswordType, PdfReader

        reader = PdfReader(path)
        if reader.is_encrypted:
            # PDFs that only restrict printing or copying open with the empty password.
            if self.password is None:
                if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                    raise LoaderError(
                        f"{path} is encrypted; pass password=... to PDFLoader "
                        f"(or decrypt it first, e.g. with qpdf --decrypt)"
                    )
            elif reader.decrypt(self.password) == PasswordType.NOT_DECRYPTED:
                raise LoaderError(f"{path}: wrong password; check the password=... given")
        return reader


def _broken_pdf(path: Path, error: Exception, *, page: int | None = None) -> LoaderError:
    """Build the error for a PDF pypdf cannot parse."""
    where = f"{path}" if page is None else f"{path} (page {page})"
    return LoaderError(
        f"{where}: cannot read this PDF, it looks broken, truncated or not a PDF "
        f"({type(error).__name__}: {error}); re-download or re-export it, or try "
        f"repairing it with qpdf or ghostscript"
    )


def _pdf_info(reader: PdfReader) -> dict[str, str]:
    """Return the document's title and author, leaving out missing or empty ones."""
    found: dict[str, str] = {}
    try:
        info = reader.metadata
        if info is None:
            return found
        for key, value in (("title", info.title), ("author", info.author)):
            text = str(value).strip() if value is not None else ""
            if text:
                found[key] = text
    except Exception:  # a damaged Info dictionary costs the title, not the text
        return found
    return found


def _page_labels(reader: PdfReader) -> list[str]:
    """Return each page's printed label, falling back to 1-based numbers."""
    count = len(reader.pages)
    try:
        labels = [str(label) for label in reader.page_labels]
    except Exception:  # a broken /PageLabels tree must not stop loading
        return [str(i + 1) for i in range(count)]
    if len(labels) != count:
        return [str(i + 1) for i in range(count)]
    return labels


# -------------------------------------------------------------------------- EPUB

_PARA = "\ue000"  # private-use sentinels that survive whitespace normalisation
_LINE = "\ue001"
_KEEP_SPACE = "\ue002"
_PRE_LINE = "\ue003"
_BLOCK_TAGS = (
    "p",
    "div",
    "section",
    "article",
    "aside",
    "header",
    "footer",
    "main",
    "nav",
    "figure",
    "figcaption",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "dl",
    "table",
    "hr",
    "address",
)
_LINE_TAGS = ("li", "dt", "dd", "tr", "caption")
_CELL_TAGS = ("td", "th")
_DROP_TAGS = ("script", "style", "head", "title", "noscript", "template")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def html_to_text(html: bytes | str) -> tuple[str, str | None]:
    """Turn an (X)HTML document into clean text and its first heading.

    Paragraphs and headings become blocks separated by a blank line, list items
    and table rows become lines, ``<pre>`` keeps its layout, script and style are
    dropped and all other whitespace is collapsed.

    Args:
        html: The document, as bytes (encoding detected) or text.

    Returns:
        The text and the text of the first ``h1``-``h6`` heading (or None).
    """
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        # EPUB chapters are XHTML; the HTML parser copes with them and is lenient.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    heading = _first_heading(soup)
    for pre in soup.find_all("pre"):
        raw = pre.get_text()
        pre.clear()
        pre.append(raw.replace(" ", _KEEP_SPACE).replace("\t", _KEEP_SPACE).replace("\n", _PRE_LINE))
    for br in soup.find_all("br"):
        br.replace_with(_LINE)
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(_PARA)
        tag.insert_after(_PARA)
    for tag in soup.find_all(_LINE_TAGS):
        tag.insert_before(_LINE)
        tag.insert_after(_LINE)
    for tag in soup.find_all(_CELL_TAGS):
        tag.insert_after(" ")
    return _normalise(soup.get_text()), heading


def _first_heading(soup: BeautifulSoup) -> str | None:
    """Return the first non-empty heading's text on one line."""
    for tag in soup.find_all(_HEADINGS):
        text = " ".join(tag.get_text(" ").split())
        if text:
            return text
    return None


def _normalise(text: str) -> str:
    """Collapse whitespace, then turn the sentinels into newlines."""
    text = text.replace("\u00ad", "").replace("\u200b", "").replace("\ufeff", "")
    text = re.sub(r"\s+", " ", text)
    text = re.sub(rf"[ {_PARA}{_LINE}]*{_PARA}[ {_PARA}{_LINE}]*", "\n\n", text)
    text = re.sub(rf" *{_LINE}[ {_LINE}]*", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = text.replace(_KEEP_SPACE, " ").replace(_PRE_LINE, "\n")
    return "\n".join(line.rstrip() for line in text.strip("\n ").split("\n"))


class EPUBLoader(BaseLoader):
    """Load an EPUB (2 or 3) with ebooklib, one Document per chapter in reading order.

    Chapters are the spine's XHTML documents; the navigation document and
    chapters without text (a cover picture, an empty separator) are skipped.

    Metadata: ``source``, ``title`` and ``author`` of the book (when present),
    ``chapter`` (the chapter's entry in the table of contents, else its first
    heading, else its 1-based number as a string) and ``chapter_index``
    (0-based position among the Documents of this book).

    Args:
        file_path: The ``.epub`` file (or an unpacked EPUB folder).
    """

    def __init__(self, file_path: StrPath) -> None:
        self.file_path = file_path

    def lazy_load(self) -> Iterator[Document]:
        """Yield the book's chapters in spine order.

        Raises:
            LoaderError: The file is not a readable EPUB.
            FileNotFoundError: The file does not exist.
        """
        import ebooklib
        from ebooklib import epub

        path = Path(self.file_path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            book = epub.read_epub(str(path), options={"ignore_ncx": True})
        except Exception as e:  # ebooklib raises zipfile, lxml, KeyError and its own errors
            raise LoaderError(
                f"{path}: cannot read this EPUB, it looks broken, truncated or not an EPUB "
                f"({type(e).__name__}: {e}); re-download it or check it with epubcheck"
            ) from e

        base: dict[str, Any] = {"source": str(path)}
        title = _dc_values(book, "title")
        if title:
            base["title"] = title[0]
        authors = _dc_values(book, "creator")
        if authors:
            base["author"] = ", ".join(authors)
        toc_titles = _toc_titles(book.toc)

        index = 0
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or isinstance(item, epub.EpubNav):
                continue
            if item.get_type() != ebooklib.ITEM_DOCUMENT:
                continue
            try:
                text, heading = html_to_text(item.get_content())
            except Exception as e:  # any parser failure means a broken chapter
                raise LoaderError(
                    f"{path}: cannot parse chapter {item.get_name()!r} "
                    f"({type(e).__name__}: {e}); the EPUB looks broken"
                ) from e
            if not text:
                continue
            chapter = toc_titles.get(_href_key(item.get_name())) or heading or str(index + 1)
            metadata = {**base, "chapter": chapter, "chapter_index": index}
            yield Document(page_content=text, metadata=metadata)
            index += 1


def _dc_values(book: Any, name: str) -> list[str]:
    """Return the non-empty Dublin Core values ``name`` of an ebooklib book."""
    values: list[str] = []
    for entry in book.get_metadata("DC", name) or []:
        value = entry[0] if isinstance(entry, tuple) else entry
        text = " ".join(str(value or "").split())
        if text:
            values.append(text)
    return values


def _href_key(href: str) -> str:
    """Normalise an href for matching a TOC entry to a spine file."""
    return unquote(href.split("#", 1)[0]).lstrip("./")


def _toc_titles(toc: Any) -> dict[str, str]:
    """Map each file named in the table of contents to its first entry's title."""
    titles: dict[str, str] = {}

    def visit(entries: Any) -> None:
        for entry in entries or []:
            if isinstance(entry, (tuple, list)):
                if entry:
                    visit([entry[0]])
                    visit(entry[1] if len(entry) > 1 else [])
                continue
            href = getattr(entry, "href", None) or (entry.get_name() if hasattr(entry, "get_name") else None)
            title = " ".join(str(getattr(entry, "title", "") or "").split())
            if href and title:
                titles.setdefault(_href_key(str(href)), title)

    visit(toc)
    return titles


# --------------------------------------------------------------- text, Markdown


def decode_text(data: bytes, path: StrPath, encoding: str | None = None) -> str:
    """Decode a text file's bytes: the given encoding, else UTF-8 (BOM aware), else detect.

    Args:
        data: The file's bytes.
        path: The file, named in error messages.
        encoding: The encoding to use; None to work it out.

    Returns:
        The text without a leading byte order mark.

    Raises:
        LoaderError: The bytes are not valid in the given encoding, the encoding
            is unknown, or no encoding could be detected.
    """
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except LookupError as e:
            raise LoaderError(f"{path}: unknown encoding {encoding!r}") from e
        except UnicodeDecodeError as e:
            raise LoaderError(
                f"{path} is not valid {encoding} (bad byte at offset {e.start}); pass the "
                f"file's real encoding, e.g. encoding='latin-1' or encoding='cp1252', or "
                f"encoding=None to detect it"
            ) from e
        return text.removeprefix("\ufeff")
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec).removeprefix("\ufeff")
            except UnicodeDecodeError:
                break  # a stray BOM-like prefix: let detection decide
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise LoaderError(
            f"{path}: cannot work out the text encoding (is it a binary file?); pass "
            f"encoding=... (e.g. encoding='latin-1') if it is text"
        )
    best = matches[0]
    # charset-normalizer often ranks a Baltic or Central European code page level
    # with (or just above) Windows-1252 for Western European text; the Western
    # code pages are far more common, so they win near-ties.
    near = {m.encoding: m for m in matches if m.chaos <= best.chaos + _NEAR_TIE}
    chosen = next((near[name] for name in _PREFERRED_CODECS if name in near), best)
    warnings.warn(
        f"{path} is not UTF-8; decoded it as {chosen.encoding} (detected). If the text "
        f"looks wrong, pass the right encoding=...",
        LoaderWarning,
        stacklevel=2,
    )
    return str(chosen).removeprefix("\ufeff")


_NEAR_TIE = 0.03
_PREFERRED_CODECS = ("cp1252", "latin_1", "iso8859_15")


class TextLoader(BaseLoader):
    """Load a plain text file as one Document.

    The encoding is ``encoding`` when given, else UTF-8 (a byte order mark is
    honoured and dropped), else whatever charset-normalizer detects.

    Metadata: ``source``.

    Args:
        file_path: The file.
        encoding: The file's encoding; None to work it out.
    """

    def __init__(self, file_path: StrPath, *, encoding: str | None = None) -> None:
        self.file_path = file_path
        self.encoding = encoding

    def lazy_load(self) -> Iterator[Document]:
        """Yield the file as one Document (nothing for an empty or blank file).

        Raises:
            LoaderError: The file cannot be decoded.
            FileNotFoundError: The file does not exist.
        """
        path = _existing_file(self.file_path)
        text = decode_text(path.read_bytes(), path, self.encoding)
        if not text.strip():
            return
        yield Document(page_content=text, metadata=self._metadata(path, text))

    def _metadata(self, path: Path, text: str) -> dict[str, Any]:
        """Return the Document's metadata; subclasses add format-specific keys."""
        del text
        return {"source": str(path)}


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_FM_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def markdown_title(text: str) -> str | None:
    """Return a Markdown document's title: front matter ``title:``, else its first heading.

    Headings inside fenced code blocks are ignored; ATX (``# Title``) and setext
    (``Title`` underlined with ``===`` or ``---``) headings are recognised.
    """
    body = text
    front = _FRONT_MATTER.match(text)
    if front:
        found = _FM_TITLE.search(front.group(1))
        if found:
            title = found.group(1).strip().strip("\"'").strip()
            if title:
                return title
        body = text[front.end() :]
    lines = body.splitlines()
    fence: str | None = None
    for number, line in enumerate(lines):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1) == fence:
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        atx = _ATX.match(line)
        if atx:
            return atx.group(1).strip()
        if (
            line.strip()
            and number + 1 < len(lines)
            and _SETEXT.match(lines[number + 1])
            and not line.startswith(("    ", "\t", ">", "-", "*", "+"))
        ):
            return line.strip()
    return None


class MarkdownLoader(TextLoader):
    """Load a Markdown file as one Document, keeping the Markdown source.

    Metadata: ``source`` and, when the file has one, ``title`` (front matter
    ``title:`` or the first heading).
    """

    def _metadata(self, path: Path, text: str) -> dict[str, Any]:
        """Add the document's title to the base metadata."""
        metadata = super()._metadata(path, text)
        title = markdown_title(text)
        if title:
            metadata["title"] = title
        return metadata


# ----------------------------------------------------------------------- folders

DEFAULT_LOADERS: Mapping[str, LoaderFactory] = {
    ".pdf": PDFLoader,
    ".epub": EPUBLoader,
    ".txt": TextLoader,
    ".md": MarkdownLoader,
    ".markdown": MarkdownLoader,
}
"""The loader used for each (lower-case) file suffix."""


def _suffix_key(suffix: str) -> str:
    """Normalise a suffix mapping key to ``.ext`` in lower case."""
    suffix = suffix.lower()
    return suffix if suffix.startswith(".") else f".{suffix}"


class DirectoryLoader(BaseLoader):
    """Load every supported file below a folder, in sorted path order.

    The loader is picked by file suffix (``.pdf``, ``.epub``, ``.txt``, ``.md``,
    ``.markdown``). Hidden files and anything inside hidden folders are ignored.
    Files that are not loaded (unsupported type, no text, or an error when
    ``on_error="skip"``) are recorded in :attr:`skipped` as ``(path, reason)``
    and summarised in one :class:`LoaderWarning` at the end.

    Args:
        path: The folder.
        glob: Which files to consider, relative to ``path``.
        recursive: Whether to descend into sub-folders; when False only files
            directly in ``path`` are loaded, whatever ``glob`` matches.
        loaders: Loaders per suffix, merged over :data:`DEFAULT_LOADERS`; map a
            suffix to None to leave those files out. Each value is called with
            the file's Path.
        on_error: ``"raise"`` stops at the first file that fails; ``"skip"``
            records it in :attr:`skipped` and goes on.

    Attributes:
        skipped: ``(path, reason)`` for every file not loaded by the latest run.
    """

    def __init__(
        self,
        path: StrPath,
        *,
        glob: str = "**/*",
        recursive: bool = True,
        loaders: Mapping[str, LoaderFactory | None] | None = None,
        on_error: OnError = "raise",
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.path = path
        self.glob = glob
        self.recursive = recursive
        self.on_error = on_error
        merged: dict[str, LoaderFactory | None] = dict(DEFAULT_LOADERS)
        for suffix, factory in (loaders or {}).items():
            merged[_suffix_key(suffix)] = factory
        self.loaders: dict[str, LoaderFactory] = {
            suffix: factory for suffix, factory in merged.items() if factory is not None
        }
        self.skipped: list[tuple[str, str]] = []

    def _files(self, root: Path) -> list[Path]:
        """Return the matching, visible files below ``root`` in sorted order."""
        files: list[tuple[tuple[str, ...], Path]] = []
        pattern = self.glob
        if not self.recursive and pattern.startswith("**/"):
            pattern = pattern[3:]  # no need to walk sub-folders only to drop them
        for candidate in root.glob(pattern):
            relative = candidate.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if not self.recursive and len(relative.parts) > 1:
                continue
            if candidate.is_file():
                files.append((relative.parts, candidate))
        files.sort(key=lambda entry: entry[0])
        return [candidate for _, candidate in files]

    def files(self) -> list[Path]:
        """The files :meth:`lazy_load` considers, in its order (supported or not).

        Each path is the one its loader is given, and so the ``source`` of its Documents: a
        distributed ingest lists a folder with this and loads each file on its own.

        Raises:
            LoaderError: ``path`` is not a folder.
            FileNotFoundError: ``path`` does not exist.
        """
        root = Path(self.path)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such folder")
        if not root.is_dir():
            raise LoaderError(f"{root} is not a folder; use load_path() or a file loader")
        return self._files(root)

    def lazy_load(self) -> Iterator[Document]:
        """Yield the Documents of every supported file, file by file.

        Each file is read completely before its Documents are yielded, so a
        file that fails half-way yields nothing.

        Raises:
            LoaderError: ``path`` is not a folder, or (with ``on_error="raise"``)
                a file could not be loaded.
            FileNotFoundError: ``path`` does not exist.
        """
        root = Path(self.path)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such folder")
        if not root.is_dir():
            raise LoaderError(f"{root} is not a folder; use load_path() or a file loader")
        self.skipped = []
        files = self._files(root)
        for file in files:
            factory = self.loaders.get(file.suffix.lower())
            if factory is None:
                kind = file.suffix.lower() or "no suffix"
                self.skipped.append((str(file), f"unsupported file type ({kind})"))
                continue
            try:
                docs = list(factory(file).lazy_load())
            except Exception as e:
                if self.on_error == "raise":
                    raise
                self.skipped.append((str(file), f"{type(e).__name__}: {e}"))
                continue
            if not docs:
                self.skipped.append((str(file), "no extractable text"))
                continue
            yield from docs
        if self.skipped:
            shown = "; ".join(f"{p} ({reason})" for p, reason in self.skipped[:10])
            more = f"; and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            warnings.warn(
                f"DirectoryLoader skipped {len(self.skipped)} of {len(files)} files in "
                f"{root}: {shown}{more}. See the loader's .skipped for the full list.",
                LoaderWarning,
                stacklevel=2,
            )


# ------------------------------------------------------------------ convenience


def loader_for_path(
    path: StrPath,
    *,
    glob: str = "**/*",
    recursive: bool = True,
    on_error: OnError = "raise",
) -> BaseLoader:
    """Return the loader for a file (by suffix) or a :class:`DirectoryLoader` for a folder.

    Args:
        path: A file or a folder.
        glob: For a folder: which files to consider.
        recursive: For a folder: whether to descend into sub-folders.
        on_error: For a folder: ``"raise"`` or ``"skip"`` failing files.

    Raises:
        LoaderError: The file's type is not supported.
        FileNotFoundError: Nothing exists at ``path``.
    """
    target = Path(path)
    if target.is_dir():
        return DirectoryLoader(target, glob=glob, recursive=recursive, on_error=on_error)
    if not target.exists():
        raise FileNotFoundError(f"{target}: no such file or folder")
    factory = DEFAULT_LOADERS.get(target.suffix.lower())
    if factory is None:
        supported = ", ".join(DEFAULT_LOADERS)
        raise LoaderError(
            f"{target}: unsupported file type ({target.suffix or 'no suffix'}); supported "
            f"types are {supported}; convert it first (e.g. with pandoc)"
        )
    return factory(target)


def load_path(
    path: StrPath,
    *,
    glob: str = "**/*",
    recursive: bool = True,
    on_error: OnError = "raise",
) -> list[Document]:
    """Load a file or every supported file in a folder.

    Args:
        path: A file or a folder.
        glob: For a folder: which files to consider.
        recursive: For a folder: whether to descend into sub-folders.
        on_error: For a folder: ``"raise"`` or ``"skip"`` failing files.

    Returns:
        The Documents, in file order and then page or chapter order.
    """
    return loader_for_path(path, glob=glob, recursive=recursive, on_error=on_error).load()
