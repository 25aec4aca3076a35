"""The Atom feed of a search: its newest matches, built with feedgen.

An entry's id comes from the article's id (stable across rebuilds), its times
are Beijing time (+08:00), its author is the article's source, its summary the
highlighted snippet as plain text. Characters XML cannot hold (control
characters, lone surrogates) are dropped from every text first.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape
from urllib.parse import quote

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

BEIJING = timezone(timedelta(hours=8))
FEED_SIZE = 50
# XML 1.0's characters: tab, newline, carriage return and U+0020 up, less the surrogates, U+FFFE and U+FFFF.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
TAG = re.compile(r"<[^>]*>")


class _Entry(FeedEntry):
    """A feedgen entry whose links keep their rel and type.

    feedgen 1.0.0 writes an entry's links with href only (its loop over them
    rebinds the name of the link it reads), so a second link would become a
    second rel="alternate"; this puts the attributes back on the element.
    """

    def atom_entry(self, extensions=True):
        entry = super().atom_entry(extensions)
        elements = [child for child in entry if etree.QName(child).localname == "link"]
        for element, link in zip(elements, self.link()):
            for name in ("rel", "type"):
                if link.get(name):
                    element.set(name, link[name])
        return entry


def xml_text(text: str | None) -> str:
    """Return text without the characters XML 1.0 cannot hold."""
    return NOT_XML.sub("", text or "")


def plain(html: str) -> str:
    """Return highlight HTML (our <mark> tags, escaped text) as plain text."""
    return xml_text(unescape(TAG.sub("", html)))


def beijing(published: str | None) -> datetime | None:
    """Return a stored 'YYYY-MM-DD HH:MM:SS' Beijing wall-clock time as an aware datetime."""
    return datetime.fromisoformat(published).replace(tzinfo=BEIJING) if published else None


def entry_id(doc_id: str) -> str:
    """Return an article's Atom id: the same for the same article in every build."""
    return "urn:newsearch:article:" + quote(xml_text(doc_id), safe="")


def build_feed(answer: dict | None, *, title: str, feed_id: str, self_url: str, page_url: str,
               article_url, fallback_updated: datetime) -> tuple[bytes, datetime]:
    """Return the Atom document of an answer's hits (newest first) and the feed's updated time.

    article_url(doc_id) gives our article page's URL; fallback_updated dates a
    feed without dated entries and an entry without a date.
    """
    hits = answer["hits"] if answer else []
    dates = [beijing(h["published"]) for h in hits]
    updated = max((d for d in dates if d), default=fallback_updated)
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(xml_text(title))
    fg.author({"name": "newsearch"})
    fg.link(href=page_url, rel="alternate", type="text/html")
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.language("zh-CN")
    fg.updated(updated)
    for hit, when in zip(hits, dates):
        entry = fg.add_entry(_Entry(), order="append")  # feedgen prepends by default; the hits are newest first
        entry.id(entry_id(hit["id"]))
        entry.title(xml_text(hit["title"]) or "（无标题）")
        entry.link(href=article_url(hit["id"]), rel="alternate", type="text/html")
        if hit.get("url"):
            entry.link(href=xml_text(hit["url"]), rel="related")
        entry.published(when or updated)
        entry.updated(when or updated)
        if hit.get("source"):
            entry.author({"name": xml_text(hit["source"])})
        summary = plain(hit["snippet_html"])
        if summary:
            entry.summary(summary, type="text")
    return fg.atom_str(pretty=True), updated
