"""Completion and did-you-mean on the cluster, by search/spelling.py's own code over the cluster's lexicon.

The cluster holds the build's lexicon as an index of word entries
(indexer/opensearch_lexicon.py). A request fetches the entries its look-ups
can rank, in one ``_msearch``: for every prefix or key the spelling code will
look up, the best entries by the same order it ranks them in (documents, a
name's NAME_WEIGHT times, the word's bytes breaking ties; the entries whose
whole key was typed apart, as they weigh WHOLE_WEIGHT more), and for every
term a correction is looked for, the most frequent words one edit from it
(a ``fuzzy`` query: same first character, one substitution, insertion,
deletion or swap). Those entries make a small lexicon in memory
(indexer/lexicon.py make_lexicon) holding the best words of every look-up,
so spelling.py's ranking picks what it picks from the whole lexicon.

ClusterMatcher answers the few matcher calls spelling.py makes (document
counts, pairs in titles, a repaired query's total) with cluster requests,
each within the request's deadline (search/opensearch_calls.py); a call with
no time left raises OutOfTime, which ends repairs and completion as the
embedded deadline does.
"""

from __future__ import annotations

from collections import namedtuple

from indexer.lexicon import make_lexicon
from indexer.opensearch_lexicon import entry_keys, lexicon_alias
from indexer.schema import BODY, TITLE, TITLE_GRAMS
from search import spelling
from search.budget import OutOfTime, Work
from search.opensearch_calls import ClusterTimeoutError, ClusterUnavailableError, Deadline
from search.opensearch_query import runs_query, text_query
from search.query import ParsedQuery

FIELDS = {TITLE: f"{TITLE}_words", BODY: f"{BODY}_words", TITLE_GRAMS: f"{TITLE}_text"}
BY_DF = [{"df": "desc"}, {"word": "asc"}]  # the lexicon's order: documents, then the word's bytes
CORRECTIONS = 2 * spelling.MAX_CANDIDATES + 2  # one-edit words fetched per term: room for the term and one character
Found = namedtuple("Found", "docs")  # a count in the shape spelling.py reads (len(found.docs))


class ClusterMatcher:
    """The matcher calls spelling.py makes, answered by the cluster within one request's deadline."""

    def __init__(self, caller, deadline: Deadline) -> None:
        self.caller = caller
        self.limit = deadline
        self.clock = deadline.clock
        self.deadline = deadline.started + deadline.seconds  # spelling.py's late() reads it
        self.work = Work(passes=1)
        self.counted: dict[tuple[str, str], int] = {}

    def call(self, method, **kwargs):
        """Call the cluster within the request's deadline; no time left is OutOfTime."""
        try:
            return self.caller.call(self.limit, method, **kwargs)
        except ClusterTimeoutError:
            raise OutOfTime from None

    def count(self, field: str, term: str) -> int:
        """Return the documents holding a term in a field (a word field, or title pairs)."""
        return self.counts(field, [term])[0]

    def counts(self, field: str, terms: list[str]) -> list[int]:
        """Return each term's documents in a field, the ones not known yet in one request."""
        missing = [t for t in dict.fromkeys(terms) if (field, t) not in self.counted]
        if missing:
            wanted = {(f, t) for t in missing for f in ((TITLE, BODY) if field in (TITLE, BODY) else (field,))}
            self._count_all(sorted(wanted))
        return [self.counted[field, t] for t in terms]

    def _count_all(self, wanted: list[tuple[str, str]]) -> None:
        """Count (field, term) pairs' documents in one filters aggregation."""
        filters = {str(n): {"term": {FIELDS[f]: t}} for n, (f, t) in enumerate(wanted)}
        body = {"size": 0, "aggs": {"n": {"filters": {"filters": filters}}}}
        buckets = self.call(self.caller.client.search, index=self.caller.alias, body=body)["aggregations"]["n"]["buckets"]
        self.counted.update((key, buckets[str(n)]["doc_count"]) for n, key in enumerate(wanted))

    def substring(self, field: str, text: str) -> range:
        """Return whether a title holds text's characters, as a count of 0 or 1 (all spelling.py asks)."""
        query = runs_query(field, text)
        if query is None:
            return range(0)
        found = self.call(self.caller.client.count, index=self.caller.alias, body={"query": query},
                          terminate_after=1)
        return range(min(int(found["count"]), 1))

    def query(self, parsed: ParsedQuery, late_passes: bool = False) -> Found | None:
        """Return how many documents a repaired query finds (a count, not the documents)."""
        query = text_query(parsed)
        if query is None:
            return None
        found = self.call(self.caller.client.count, index=self.caller.alias, body={"query": query})
        return Found(range(int(found["count"])))


def _lookup(field: str, text: str, size: int, exact: bool = False, within: str | None = None,
            name: bool | None = None) -> dict:
    """Return one search of the lexicon: entries whose field starts with (exact: equals) text, the most
    frequent first (within: of the words starting with it; name: names only, or none)."""
    query = [{"term" if exact else "prefix": {field: text}}]
    if within is not None:
        query.append({"prefix": {"word": within}})
    if name is not None:
        query.append({"term": {"name": name}})
    return {"query": {"bool": {"filter": query}}, "size": size, "sort": BY_DF}


def _weighed(field: str, text: str, size: int, exact: bool = False, within: str | None = None) -> list[dict]:
    """Return the searches holding the size best entries as spelling.py weighs them (a name's documents
    NAME_WEIGHT times): the best names and the best other words, each by documents."""
    return [_lookup(field, text, size, exact, within, name) for name in (True, False)]


def _corrections(text: str) -> dict:
    """Return the search of the most frequent words one edit from text with its first character."""
    fuzzy = {"value": text, "fuzziness": 1, "prefix_length": 1, "transpositions": True, "rewrite": "constant_score"}
    return {"query": {"fuzzy": {"word": fuzzy}}, "size": CORRECTIONS, "sort": BY_DF}


def fetch_lexicon(matcher: ClusterMatcher, searches: list[dict]):
    """Return the lexicon made of the entries the searches find in one request; None: the cluster has none."""
    lines = []
    for body in searches:
        lines += [{}, {**body, "_source": ["word", "df", "name", "pinyin", "initials"]}]
    found = matcher.call(matcher.caller.client.msearch, index=lexicon_alias(matcher.caller.alias), body=lines)
    entries = {}
    for answer in found["responses"]:
        if "error" in answer:
            if answer["error"].get("type") == "index_not_found_exception":
                return None  # an index loaded before it had a lexicon (a rebuild makes one)
            raise ClusterUnavailableError(f"the OpenSearch cluster at {matcher.caller.url} failed: {answer['error']}")
        for hit in answer["hits"]["hits"]:
            entries[hit["_source"]["word"]] = hit["_source"]
    return make_lexicon((word, int(e["df"]), entry_keys(e)) for word, e in entries.items())


def completion_searches(folded: str, limit: int, compounds: bool) -> list[dict]:
    """Return the lexicon searches completions_of() needs: each look-up's best entries (compounds: also the
    head and tail words of two typed as one)."""
    mixed = spelling.is_mixed(folded)
    key = folded.replace(" ", "")
    if mixed:
        from indexer.lexicon import keys_of

        keys = keys_of(mixed.group(1))
        typed = keys[0] + mixed.group(2) if keys else None
        return [] if typed is None else [s for exact in (False, True)
                                         for s in _weighed("pinyin", typed, limit + 1, exact, mixed.group(1))]
    if not spelling.is_latin(folded):
        return [_lookup("word", folded, limit + 1)]
    out = _weighed("word", key, limit + 1)
    for field in ("pinyin", "initials"):
        for exact in (False, True):  # the entries whose whole key was typed weigh more: their best apart
            out += _weighed(field, key, limit + 1, exact)
        for cut in range(len(key) - 1, 1, -1) if compounds else ():
            out += _weighed(field, key[:cut], 2, exact=True)
            for exact in (False, True):
                out += _weighed(field, key[cut:], spelling.MAX_TAILS, exact)
    return out


def complete_words(matcher: ClusterMatcher, folded: str, limit: int) -> list[str]:
    """Return completions_of() folded text over the cluster's lexicon (none when it has none)."""
    searches = completion_searches(folded, limit, compounds=False)
    lexicon = fetch_lexicon(matcher, searches) if searches else None  # none: Chinese too long to have keys
    if lexicon is None:
        return []
    key = folded.replace(" ", "")
    if spelling.is_latin(folded) and len({lexicon.word(n) for n in range(len(lexicon))} - {key}) < limit:
        # Fewer words than asked for start with it: completions_of() will look for two words typed as one.
        lexicon = fetch_lexicon(matcher, completion_searches(folded, limit, compounds=True))
    return spelling.completions_of(matcher, lexicon, folded, limit)


def suggest(matcher: ClusterMatcher, parsed: ParsedQuery, hits: int) -> str | None:
    """Return spelling.suggest() over the cluster's lexicon: the entries and counts it reads fetched first."""
    if not spelling.worth_repairing(parsed, hits):
        return None
    joined, terms, pieces = spelling.repaired_texts(parsed, hits)
    searches = []
    for text in dict.fromkeys(joined + terms):
        searches += [_lookup("word", text, 1, exact=True),
                     *_weighed("pinyin", text, 2 * spelling.MAX_CANDIDATES, exact=True)]
    searches += [_corrections(text) for text in dict.fromkeys(terms + pieces) if 1 < len(text) <= 12]
    if not searches:
        return None
    lexicon = fetch_lexicon(matcher, searches)
    if lexicon is None:
        return None
    if joined or pieces:
        matcher.counts(TITLE, joined + pieces)  # one request for every count suggest() reads
    return spelling.suggest(matcher, parsed, hits, lexicon)
