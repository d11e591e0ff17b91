"""Words for the lexical index: one tokenizer for the texts stored and the queries asked.

A token is a run of letters, marks, digits and connectors (``_``) in any script, after Unicode
NFKC normalisation and case folding, so ``Straße`` finds ``STRASSE`` and full-width letters
find their plain forms; marks stay inside their word (Devanagari, Thai, Hebrew points). Scripts written
without spaces between words (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar) become
overlapping character bigrams, the usual way to index them without a dictionary. An identifier
joined by underscores is kept whole and also split into its parts, so ``add_texts`` matches both
the exact name and the words ``add`` and ``texts``; a dotted name (``os.path.join``, ``3.14``) is a
token of its own besides its parts, so a query naming it exactly ranks its own record first. There is no stemming and no stop-word list:
BM25's inverse document frequency already makes common words cheap.

>>> tokenize("Call os.path.join(), not PYTHONHASHSEED=0!")
['os.path.join', 'call', 'os', 'path', 'join', 'not', 'pythonhashseed', '0']
>>> tokenize("add_texts")
['add_texts', 'add', 'texts']
>>> tokenize("向量数据库")
['向量', '量数', '数据', '据库']
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Any

# Scripts that do not separate words with spaces; U+30FC (the katakana long-vowel mark) is
# "Common" script but belongs inside kana words.
_BIGRAM_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\u30fc\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"


@cache
def _patterns() -> tuple[Any, Any, Any, Any]:
    """(words, words or bigram runs, a bigram-script character, dotted names) as ``regex`` patterns.

    The ``regex`` module, since the standard ``re`` has no Unicode classes. Text without any
    bigram-script character (most text) takes the first, much faster, pattern.
    """
    import regex

    word = r"[\p{L}\p{M}\p{N}\p{Pc}]"
    return (
        regex.compile(rf"{word}+"),
        regex.compile(rf"(?P<bigram>[{_BIGRAM_SCRIPTS}]+)|(?:(?![{_BIGRAM_SCRIPTS}]){word})+"),
        regex.compile(rf"[{_BIGRAM_SCRIPTS}]"),
        regex.compile(rf"{word}+(?:\.{word}+)+"),
    )


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` in order, repeats kept (their counts are BM25's term frequencies)."""
    words, mixed, bigram_char, dotted = _patterns()
    folded = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = dotted.findall(folded) if "." in folded else []
    if bigram_char.search(folded) is None:
        found = words.findall(folded)
    else:
        found = []
        for m in mixed.finditer(folded):
            word = m.group()
            if m.group("bigram") is None:
                found.append(word)
            else:
                out += [word] if len(word) == 1 else [word[i : i + 2] for i in range(len(word) - 1)]
    for word in found:
        out.append(word)
        if "_" in word:
            out += [p for p in word.split("_") if p and p != word]
    return out


__all__ = ["tokenize"]
