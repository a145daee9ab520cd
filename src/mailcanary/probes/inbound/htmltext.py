"""HTML reduced to the words a reader sees, in time linear in its size.

A stranger's mail reaches this code, so no regex over markup (``<[^>]*>`` rescans the rest
of the text from every ``<``: quadratic) and no tree: libxml2's HTML tokenizer (through
lxml, parsing events only) feeds a list of text pieces. Python's own ``html.parser`` is
quadratic on unclosed tags in the Pythons still shipped (``<a `` repeated: 66 s at 64 KB).
"""

from __future__ import annotations

# Elements whose text the reader never sees.
_HIDDEN = frozenset({"script", "style", "head", "template", "noscript", "title"})
# Elements that end a line on screen: words on both sides must not run together.
_BREAKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                     "table", "ul", "ol", "blockquote", "pre", "hr", "td", "th"})


class _Text:
    """An lxml parser target: keeps visible text, turns block ends into line breaks."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.hidden = 0

    def start(self, tag: str | bytes, attrib: dict[str | bytes, str | bytes]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BREAKS:
            self.pieces.append("\n")

    def end(self, tag: str | bytes) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BREAKS:
            self.pieces.append("\n")
        else:
            self.pieces.append(" ")  # </td>, </span>: a word boundary on screen as a rule

    def data(self, data: str | bytes) -> None:
        if not self.hidden:  # str in, str out (bytes only for bytes fed in)
            self.pieces.append(data if isinstance(data, str) else data.decode("utf-8", "replace"))

    def comment(self, text: str | bytes) -> None:
        return None

    def close(self) -> None:
        return None


def html_text(markup: str) -> str:
    """The visible text of `markup`; entities decoded, a non-breaking space a space."""
    from lxml import etree  # noqa: PLC0415 (on first use: `--version` and `check` start quick)

    # libxml2 takes UTF-8: a lone surrogate (from an odd charset) becomes U+FFFD first.
    markup = markup.encode("utf-8", "replace").decode("utf-8")
    target = _Text()
    parser = etree.HTMLParser(target=target, recover=True, no_network=True)
    parser.feed(markup)
    parser.close()
    text = "".join(target.pieces)
    # A non-breaking space reads as a space: regexes are written against what people read.
    return text.replace("\xa0", " ")
