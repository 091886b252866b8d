"""Pure functions over MediaWiki wikitext: titles, links, first paragraph, disambiguation.

No I/O. Everything is pre-compiled regular expressions over `str`, so a page costs a few
C-level scans rather than a Python loop per character. `kb.dump` runs these in worker
processes.
"""
from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable

# Namespace names (and aliases) of English Wikipedia; `kb.dump` adds those from <siteinfo>.
DEFAULT_NAMESPACES = frozenset(
    ["media", "special", "talk", "user", "user talk", "wikipedia", "wikipedia talk", "project",
     "file", "file talk", "image", "image talk", "mediawiki", "mediawiki talk", "template",
     "template talk", "help", "help talk", "category", "category talk", "portal", "portal talk",
     "book", "book talk", "draft", "draft talk", "module", "module talk", "timedtext",
     "timedtext talk", "education program", "gadget", "gadget definition", "topic", "wp", "wt",
     "cat", "mos", "h", "p", "t"]
)
# Interwiki prefixes that are not language codes (language codes are caught by _LANG).
INTERWIKI = frozenset(
    "wikt wiktionary wikisource s wikiquote q wikibooks b wikinews n wikiversity v wikivoyage voy "
    "wikispecies species commons c meta m d wikidata mw mediawikiwiki foundation wmf phab "
    "phabricator metawikipedia w wikipedia arxiv doi google imdb rfc bugzilla".split()
)
_LANG = re.compile(r"[a-z]{2,3}(?:-[a-z]{2,8})*")

_LINK = re.compile(r"\[\[([^\[\]|\n]*)(\|[^\[\]]*)?\]\]([a-z]*)")
_SPACES = re.compile(r"[\s_]+")
_WS = re.compile(r"\s+")
_ODD_TITLE = re.compile(r"[_\t\n\r\u00a0]|  ")
_PAREN_TAIL = re.compile(r"\s*\([^()]*\)$")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_REF = re.compile(r"<ref\b[^>/]*/>|<ref\b[^>]*>.*?(?:</ref\s*>|$)", re.S | re.I)
_TAG_BLOCK = re.compile(
    r"<(math|gallery|timeline|imagemap|score|syntaxhighlight|source|pre|nowiki|chem|hiero|div"
    r"|table|references)\b[^>]*>.*?</\1\s*>",
    re.S | re.I,
)
_TEMPLATE = re.compile(r"\{\{(?:[^{}]|\{(?!\{)|\}(?!\}))*\}\}")  # innermost {{...}}
_TABLE = re.compile(r"\{\|(?:(?!\{\||\|\}).)*\|\}", re.S)  # innermost {| ... |}
_BRACKET_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")  # innermost [[...]]
_EXT_LINK = re.compile(r"\[(?:https?:)?//[^\s\]]+\s*([^\]]*)\]")
_QUOTES = re.compile(r"'{2,}")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPTY_PARENS = re.compile(r"\(\s*(?:[,;:–—-]\s*)*\)|\[\s*\]")
_SPACE_PUNCT = re.compile(r"\s+([,.;:!?)])")
_OPEN_PAREN_SPACE = re.compile(r"\(\s*(?:[,;:]\s*)+|\(\s+")
_CLOSE_PAREN_SPACE = re.compile(r"(?:\s*[,;:])+\s*\)")
_PARAGRAPH_SKIP = re.compile(r"^\s*(?:[*#:;|!{}=<]|__|-{4})")
_HEADING = re.compile(r"\n=+[^=\n]+=+\s*\n")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s")
_REDIRECT = re.compile(r"^\s*#\s*redirect\s*:?\s*\[\[([^\]|#\n]*)", re.I)
_DISAMBIG = re.compile(
    r"\{\{\s*(?:disambiguation|disambig|disamb|dab|dis|hndis|geodis|numberdis|schooldis|"
    r"hospitaldis|mathdab|roaddis|letter-number combination disambiguation|"
    r"[a-z ]*disambiguation(?: cleanup)?|[a-z]+ ?dis)\s*(?:\||\}\})",
    re.I,
)

DESCRIPTION_CHARS = 500


def normalise_title(title: str) -> str:
    """A page title in MediaWiki's canonical form.

    Underscores and runs of whitespace become one space, the edges are trimmed, a leading
    `:` is dropped and the first letter is upper-cased (`"united_states"` → `"United states"`).
    """
    if "&" in title:
        title = html.unescape(title)
    if _ODD_TITLE.search(title):
        title = _SPACES.sub(" ", title)
    title = title.strip()
    if title[:1] == ":":
        title = title[1:].strip()
    if not title or title[0].isupper():
        return title
    return title[0].upper() + title[1:]


def is_other_namespace(target: str, namespaces: frozenset[str] = DEFAULT_NAMESPACES) -> bool:
    """True for `File:x`, `Category:y`, `fr:Paris`, `wikt:word` and the like; false for `Star Trek: Voyager`."""
    head, sep, _ = target.lstrip(" :").partition(":")
    if not sep:
        return False
    prefix = _SPACES.sub(" ", head).strip().lower()
    return prefix in namespaces or prefix in INTERWIKI or _LANG.fullmatch(prefix) is not None


def link_counts(
    text: str, namespaces: frozenset[str] = DEFAULT_NAMESPACES
) -> dict[tuple[str, str], int]:
    """`{(anchor text, normalised target title): count}` over every article link in `text`.

    Handles `[[Target]]`, `[[Target|anchor]]`, `[[Target#Section|anchor]]`, the pipe trick
    `[[Target (x)|]]` and trailing letters (`[[cat]]s` → anchor `cats`). Links into other
    namespaces and other wikis, links to a section of the same page, and anchors holding
    markup are skipped. Each distinct raw link is processed once.
    """
    out: dict[tuple[str, str], int] = {}
    for (raw, piped, tail), n in Counter(_LINK.findall(text)).items():
        pair = _link_pair(raw, piped, tail, namespaces)
        if pair is not None:
            out[pair] = out.get(pair, 0) + n
    return out


def _link_pair(raw: str, piped: str, tail: str, namespaces: frozenset[str]) -> tuple[str, str] | None:
    if ":" in raw and is_other_namespace(raw, namespaces):
        return None
    target = normalise_title(raw.partition("#")[0]) if "#" in raw else normalise_title(raw)
    if not target:
        return None
    if not piped:
        anchor = raw
    elif piped == "|":  # pipe trick: [[Paris (band)|]] shows "Paris"
        anchor = _PAREN_TAIL.sub("", raw)
    else:
        anchor = piped[1:]
    if "'" in anchor:
        anchor = _QUOTES.sub("", anchor)
    if "<" in anchor or "{" in anchor or "|" in anchor:
        return None  # markup in the anchor: not a clean surface form
    anchor = _WS.sub(" ", anchor + tail if tail else anchor).strip()
    return (anchor, target) if anchor else None


def redirect_target(text: str) -> str | None:
    """The target of a `#REDIRECT [[Target]]` page text, normalised; None if not a redirect."""
    m = _REDIRECT.match(text)
    return normalise_title(m.group(1)) if m and m.group(1).strip() else None


def is_disambiguation(title: str, text: str) -> bool:
    """A disambiguation page: a `(disambiguation)` title or a `{{disambiguation}}`-family template."""
    return title.endswith("(disambiguation)") or _DISAMBIG.search(text) is not None


def _strip_nested(pattern: re.Pattern, text: str, repl: str = "") -> str:
    """Remove innermost matches of `pattern` until none remain (handles nesting)."""
    while True:
        text, n = pattern.subn(repl, text)
        if not n:
            return text


def _link_text(m: re.Match, namespaces: frozenset[str]) -> str:
    inner = m.group(1)
    target, sep, anchor = inner.partition("|")
    if ":" in target and is_other_namespace(target, namespaces):
        return ""
    if not sep:
        return target
    return anchor or _PAREN_TAIL.sub("", target)


def plain_text(wikitext: str, namespaces: frozenset[str] = DEFAULT_NAMESPACES) -> str:
    """Wikitext as plain text: comments, refs, templates, tables, files and markup removed,
    links replaced by their anchor text. Paragraph breaks (blank lines) are kept."""
    text = _COMMENT.sub("", wikitext)
    text = _REF.sub("", text)
    text = _TAG_BLOCK.sub("", text)
    text = _strip_nested(_TEMPLATE, text)
    text = _strip_nested(_TABLE, text)
    text = _replace_links(text, namespaces)
    text = _EXT_LINK.sub(r"\1", text)
    text = _QUOTES.sub("", text)
    text = _TAG.sub("", text)
    return text


def _replace_links(text: str, namespaces: frozenset[str]) -> str:
    # Innermost first, so a file caption's own links are resolved before the file is dropped.
    while True:
        new = _BRACKET_LINK.sub(lambda m: _link_text(m, namespaces), text)
        if new == text:
            return new
        text = new


def truncate(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """`text` cut to at most `limit` characters at a sentence end, else a word boundary (+ "…")."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]].rstrip()
    cut = head.rfind(" ", 0, limit)
    return (head[:cut] if cut > limit // 2 else head[: limit - 1]).rstrip(" ,;:") + "…"


def first_paragraph(
    wikitext: str,
    limit: int = DESCRIPTION_CHARS,
    namespaces: frozenset[str] = DEFAULT_NAMESPACES,
) -> str:
    """The first real paragraph of an article as plain text, at most `limit` characters.

    Only the lead (text before the first section heading) is cleaned, so long articles cost
    little. Lines that are lists, headings, table rows or leftovers of markup are skipped.
    """
    head = _HEADING.search(wikitext)
    lead = wikitext[: head.start()] if head else wikitext
    for candidate in _paragraphs(plain_text(lead, namespaces)):
        return truncate(candidate, limit)
    if head:  # a lead that is only an infobox: try the first section
        for candidate in _paragraphs(plain_text(wikitext[head.end(): head.end() + 20_000], namespaces)):
            return truncate(candidate, limit)
    return ""


def _paragraphs(text: str) -> Iterable[str]:
    for line in text.split("\n"):
        if not line.strip() or _PARAGRAPH_SKIP.match(line):
            continue
        line = html.unescape(line) if "&" in line else line
        line = _OPEN_PAREN_SPACE.sub("(", line)
        line = _CLOSE_PAREN_SPACE.sub(")", line)
        line = _EMPTY_PARENS.sub("", line)
        line = _SPACE_PUNCT.sub(r"\1", _WS.sub(" ", line.replace("\u00a0", " "))).strip()
        if sum(c.isalpha() for c in line[:80]) >= 10:
            yield line


_MARK_OPEN, _MARK_MID, _MARK_CLOSE = "\x02", "\x03", "\x04"  # around a link while the text is cleaned
_MARKED = re.compile("\x02(\\d+)\x03([^\x02\x03\x04]*)\x04([a-z]*)")
_MARKS = re.compile("[\x02\x03\x04]")


def linked_paragraphs(
    wikitext: str, namespaces: frozenset[str] = DEFAULT_NAMESPACES, min_chars: int = 40
) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """The paragraphs of a whole article as plain text (cleaned as `first_paragraph` cleans the
    lead), each with its article links as `(start, end, target title)` spans of that text.

    A link's span is its anchor text plus trailing letters (`[[cat]]s` → "cats", as
    `link_counts` reads it); links to other namespaces, to a section of the same page and links
    inside templates, tables, files and refs are dropped, like the text around them. Paragraphs
    shorter than `min_chars` characters are skipped."""
    targets: list[str] = []

    def mark(m: re.Match) -> str:
        inner = m.group(1)
        raw, sep, _ = inner.partition("|")
        text = _link_text(m, namespaces)
        if not text or (":" in raw and is_other_namespace(raw, namespaces)):
            return text
        target = normalise_title(raw.partition("#")[0])
        if not target or "<" in text or "{" in text:
            return text
        targets.append(target)
        return f"{_MARK_OPEN}{len(targets) - 1}{_MARK_MID}{_QUOTES.sub('', text)}{_MARK_CLOSE}"

    text = _COMMENT.sub("", wikitext)
    text = _REF.sub("", text)
    text = _TAG_BLOCK.sub("", text)
    text = _strip_nested(_TEMPLATE, text)
    text = _strip_nested(_TABLE, text)
    while True:  # innermost first: a file caption's links are marked, then dropped with the file
        new = _BRACKET_LINK.sub(mark, text)
        if new == text:
            break
        text = new
    text = _EXT_LINK.sub(r"\1", text)
    text = _QUOTES.sub("", text)
    text = _TAG.sub("", text)
    out = []
    for line in _paragraphs(text):
        plain, spans, pos = [], [], 0
        length = 0
        for m in _MARKED.finditer(line):
            before = _MARKS.sub("", line[pos : m.start()])
            plain.append(before)
            length += len(before)
            anchor = m.group(2) + m.group(3)
            lead = len(anchor) - len(anchor.lstrip())
            surface = anchor.strip()
            if surface:
                spans.append((length + lead, length + lead + len(surface), targets[int(m.group(1))]))
            plain.append(anchor)
            length += len(anchor)
            pos = m.end()
        plain.append(_MARKS.sub("", line[pos:]))
        para = "".join(plain)
        if len(para) >= min_chars:
            out.append((para, spans))
    return out
