"""The nouns of the project: frozen, slotted dataclasses passed between modules.

Offsets are character offsets into `Document.text`, half-open (`text[start:end]`).
Boxes are pixel coordinates `(left, top, right, bottom)` in the original image.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Entity:
    """One knowledge-base entry. `id` is the QID or the Wikipedia title.

    Optional, from sources that know them (a Wikidata dump, an entity list): `title`, the English
    Wikipedia article (a dump's anchors attach to it); `popularity` (e.g. the number of Wikidata
    sitelinks; None: unknown); `types`, class ids (Wikidata P31 instance of, then P279 subclass
    of); `images`, Commons file names (Wikidata P18).
    """

    id: str
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    title: str | None = None
    popularity: float | None = None
    types: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def __reduce__(self):
        # pickled as its fields: parser processes send entities by the million, and the state
        # protocol of a frozen slotted dataclass is about 5x slower
        return (Entity, (self.id, self.name, self.description, self.aliases, self.title, self.popularity,
                         self.types, self.images))


@dataclass(frozen=True, slots=True)
class TextMention:
    start: int
    end: int
    surface: str


@dataclass(frozen=True, slots=True)
class ImageRef:
    id: str
    path: str


@dataclass(frozen=True, slots=True)
class FaceMention:
    image: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Document:
    """A document to link. `mentions=None` means: detect mentions in `text`."""

    id: str
    text: str
    images: tuple[ImageRef, ...] = ()
    mentions: tuple[TextMention, ...] | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A candidate entity for one mention, with the evidence that ranked it."""

    entity: str
    name: str
    score: float
    prior: float = 0.0
    features: tuple[float, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Link:
    """The decision for one mention: `entity=None` is NIL (not in the KB). `score` is the raw
    score of the best candidate; `confidence` the probability that the best candidate is the
    right entity (`linker.calibration`; None from a model without calibration)."""

    mention: TextMention | FaceMention
    entity: str | None
    score: float
    candidates: tuple[Candidate, ...] = ()
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class LinkedDocument:
    """A document with its text and face links, and per-image warnings (unreadable image, ...)."""

    document: Document
    links: tuple[Link, ...]
    warnings: tuple[str, ...] = ()
