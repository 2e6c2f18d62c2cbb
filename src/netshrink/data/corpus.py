"""An offline English corpus: the prose of the Python 3.11 documentation, as Debian ships it.

    from netshrink.data import corpus
    text = corpus.load()                 # Corpus(train=[...], heldout=[...])
    text.heldout[:2000]                  # sentences never used for training

Source: Debian's package `python3.11-doc` (main, bookworm; `apt-get install python3.11-doc`),
whose reStructuredText sources lie in
/usr/share/doc/python3.11/html/_sources. The documentation is copyright the Python Software
Foundation and distributed under the PSF License Agreement (Debian's
/usr/share/doc/python3.11-doc/copyright); netshrink ships none of it, it reads the installed
files.

What counts as a sentence: the markup is stripped from each paragraph of prose (code blocks,
directives and their bodies, tables, comments, section titles and index entries are dropped;
roles such as :func:`len` keep their text), the paragraph is cut after '.', '?' or '!'
followed by a capital (not after 'e.g.', 'i.e.' and the like), and a sentence is kept when it
has 6 to 60 words, starts with a capital and ends with a full stop. Sentences are deduplicated
across the whole corpus (the first occurrence, in file order, wins).

The held-out part is whole documents, chosen by a hash of their path (so near-identical
sentences of one page never straddle the split, and adding a page moves no other): about
`HELDOUT_FRACTION` of the files. The order is fixed (sorted paths, then position).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from netshrink.errors import DataError

DEBIAN_PACKAGE = "python3.11-doc"
SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
HELDOUT_FRACTION = 0.15
MIN_WORDS, MAX_WORDS = 6, 60
# Paths left out: release notes (lists of changes and issue numbers), the license text.
EXCLUDED = ("whatsnew/", "license.rst.txt", "copyright.rst.txt")

_ROLE = re.compile(r":[\w:.+-]+:`([^`]*)`")
_LINK = re.compile(r"`([^`<]*?)\s*<[^>]*>`_{1,2}")
_LITERAL = re.compile(r"``([^`]*)``")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_REFERENCE = re.compile(r"`([^`]*)`_{0,2}")
_FOOTNOTE = re.compile(r"\s*\[(?:#\w*|\d+|\*)\]_")
_TITLE = re.compile(r"^([=\-~^\"'`#*+<>.:_])\1{2,}\s*$")
_SPLIT = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"'(])")
_CODE_DIRECTIVES = frozenset({
    "code-block", "sourcecode", "code", "testcode", "testsetup", "testcleanup", "testoutput",
    "doctest", "literalinclude", "productionlist", "highlight", "csv-table", "table",
    "list-table", "index", "toctree", "image", "figure", "raw", "math", "only", "opcode",
    "cmdoption", "option", "envvar", "program", "module", "currentmodule", "moduleauthor",
    "sectionauthor", "audit-event", "availability", "impl-detail", "tabularcolumns",
    "include", "seealso", "rubric", "c:macro", "c:type", "c:var", "c:member", "c:function",
})
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "Mr.", "Dr.", "No.", "approx.")


@dataclass(frozen=True)
class Corpus:
    """Sentences for training and, never overlapping them, held-out sentences."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]
    source: str

    def __repr__(self) -> str:
        return (f"Corpus(train={len(self.train):,} sentences, heldout={len(self.heldout):,}, "
                f"source={self.source!r})")


def root(path: str | os.PathLike | None = None) -> Path:
    """The folder of the documentation sources: `path`, $NETSHRINK_CORPUS, or Debian's."""
    folder = Path(path or os.environ.get("NETSHRINK_CORPUS") or SOURCES)
    if not folder.is_dir() or not any(folder.rglob("*.rst.txt")):
        raise DataError(
            f"{folder}: no Python documentation sources (*.rst.txt); install Debian's package "
            f"{DEBIAN_PACKAGE} (`apt-get install {DEBIAN_PACKAGE}`) or set "
            "NETSHRINK_CORPUS to a folder of reStructuredText files"
        )
    return folder


def available(path: str | os.PathLike | None = None) -> bool:
    """Whether the corpus can be read (tests skip without it)."""
    try:
        root(path)
    except DataError:
        return False
    return True


def is_heldout(relative_path: str) -> bool:
    """Whether a document (its path relative to the root) belongs to the held-out part."""
    digest = hashlib.sha256(relative_path.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_FRACTION


def load(path: str | os.PathLike | None = None) -> Corpus:
    """The deduplicated sentences of the documentation, split into train and held-out (read
    once per process and folder)."""
    return _load(root(path).resolve())


@functools.lru_cache(maxsize=2)
def _load(folder: Path) -> Corpus:
    seen: set[str] = set()
    train: list[str] = []
    heldout: list[str] = []
    for file in sorted(folder.rglob("*.rst.txt")):
        relative = file.relative_to(folder).as_posix()
        if any(relative.startswith(x) or relative == x for x in EXCLUDED):
            continue
        target = heldout if is_heldout(relative) else train
        for sentence in sentences(file.read_text(encoding="utf-8", errors="replace")):
            if sentence not in seen:
                seen.add(sentence)
                target.append(sentence)
    if not train or not heldout:
        raise DataError(f"{folder}: too few documents for both a training and a held-out part")
    return Corpus(tuple(train), tuple(heldout), str(folder))


def sentences(text: str) -> Iterator[str]:
    """The prose sentences of one reStructuredText document (see the module docstring)."""
    for paragraph in paragraphs(text):
        for sentence in split_sentences(strip_markup(paragraph)):
            if keep(sentence):
                yield sentence


def paragraphs(text: str) -> Iterator[str]:
    """Paragraphs of prose: runs of lines at one indentation, list items included; literal
    blocks (after '::'), code, tables, comments and markup-only directives are skipped, while
    the bodies of descriptive directives (function, class, note, ...) are prose."""
    block: list[str] = []
    block_indent = -1
    skip_deeper = -1  # skip lines indented deeper than this (a literal block's body)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_deeper >= 0:
            if not stripped or indent > skip_deeper:
                continue
            skip_deeper = -1
        if not stripped:
            yield from _flush(block)
            continue
        underline = i + 1 < len(lines) and _TITLE.match(lines[i + 1].strip() or "-")
        if stripped.startswith(".."):
            yield from _flush(block)
            directive = re.match(r"\.\.\s+([\w:-]+)::", stripped)
            if directive is None or directive.group(1) in _CODE_DIRECTIVES:
                skip_deeper = indent  # a comment, a target or code: its body goes too
            continue
        if _TITLE.match(stripped) or (underline and lines[i + 1].strip()) or \
                stripped.startswith(("|", "+-", "+=", ">>>", "...")) or \
                re.match(r"^:[\w -]+:(\s|$)", stripped):  # a field list, not a role
            yield from _flush(block)
            continue
        item = re.match(r"^([*+-]|\d+\.|#\.|\(\w\))\s+", stripped)
        if item:
            yield from _flush(block)
            stripped = stripped[item.end():]
            indent += item.end()
        elif indent != block_indent:
            yield from _flush(block)
        block_indent = indent
        block.append(stripped)
        if stripped.endswith("::"):
            yield from _flush(block)
            skip_deeper = indent - (item.end() if item else 0)
    yield from _flush(block)


def _flush(block: list[str]) -> Iterator[str]:
    if block:
        text = " ".join(block)
        block.clear()
        if text.endswith("::"):
            text = text[:-2].rstrip() + ("" if text[:-2].rstrip().endswith(":") else ":")
        yield text


def strip_markup(paragraph: str) -> str:
    """Inline reStructuredText reduced to its text: roles, links, literals, emphasis."""
    text = _FOOTNOTE.sub("", paragraph)
    text = _LINK.sub(r"\1", text)
    text = _ROLE.sub(lambda m: _role_text(m.group(1)), text)
    text = _LITERAL.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = _REFERENCE.sub(r"\1", text)
    text = text.replace("\\ ", "").replace("\\", "")
    return re.sub(r"\s+", " ", text).strip()


def _role_text(inner: str) -> str:
    """:ref:`title <target>` -> title; :func:`~os.path.join` -> join; '!' and '~' dropped."""
    inner = inner.strip()
    if "<" in inner and inner.endswith(">"):
        inner = inner[:inner.index("<")].strip()
    if inner.startswith("~"):
        inner = inner[1:].rsplit(".", 1)[-1]
    return inner.lstrip("!")


def split_sentences(paragraph: str) -> list[str]:
    """Cut a paragraph after '.', '?' or '!' followed by a capital, not after abbreviations."""
    pieces = _SPLIT.split(paragraph)
    out: list[str] = []
    for piece in pieces:
        if out and out[-1].endswith(_ABBREVIATIONS):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return [p.strip() for p in out if p.strip()]


def keep(sentence: str) -> bool:
    """A sentence of prose: 6 to 60 words, a capital first, a full stop last, little code."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if not sentence[0].isupper() or not sentence.endswith("."):
        return False
    symbols = sum(c in "()[]{}=<>_*/\\|#@$%^~`" for c in sentence)
    return symbols <= len(sentence) / 25 and ".." not in sentence


def batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
