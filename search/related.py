"""相关搜索: related searches made of the words that set a search's matches apart from the archive.

There is no query log: the words come from the matches themselves, the
significant-terms way (Elasticsearch's JLH score). What each article brings is
fixed when it is indexed (indexer/related_words.py): the nouns and names of
its title and lead. The foreground is the best-scoring SAMPLE matches, one per
story; the background is the whole archive, the same words of every article
(deleted ones included, as the term dictionary counts them). A word scores
(fg - bg) * fg / bg, fg and bg the shares of the sample and of the archive
whose titles and leads hold it: a word far more common among the matches than
in the archive scores high; one as common (or rarer) is left out, and so is a
word in more than MAX_BACKGROUND of the archive (boilerplate, or too broad).
Both shares are counts over one index-time list per article: a related search
costs a few array operations on SAMPLE short lists, whatever the archive's size.

Each related search is the query with one such word added (a short, simple
query), or the word alone. Either way it finds at least the sampled match the
word was read from: that match holds the word in its text, and (with the
query) it matched the query. So no related search is empty. None is a mere
variant of the query: a word that holds a query term, or lies inside one
(both folded as the index folds: width, case, script), is left out.

The cost is capped like the other paths beside matching: SAMPLE documents and
a TIME_SHARE of the time the request has left before its deadline (none left:
"related" in ``work.capped``). A search with fewer than MIN_HITS matches gets
none. A cluster reads its sample's titles and bodies, finds the same words in
them (related_from_sample) and counts the MAX_CANDIDATES they hold most in its
titles and bodies.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from indexer import analysis, related_words
from search.query import ParsedQuery, parse_query
from search.sets import firsts

RELATED = 10  # related searches an answer lists at most
MIN_HITS = 2  # a search with fewer matches has none: one article is no "set" to tell apart
SAMPLE = 60  # best-scoring matches (one per story) whose words are counted
MAX_CANDIDATES = 400  # words, most frequent in the sample first, whose background counts a cluster looks up
MAX_BACKGROUND = 0.2  # a word in more of the archive than this share is boilerplate or too broad
# Of a sample of at least this size, the articles that must hold a word (as
# Elasticsearch's min_doc_count 3): of sixty, two is chance; a word of one
# article is that article's, not the set's.
MIN_HELD = ((30, 3), (0, 2))
TIME_SHARE = 0.25  # of the time left before the request's deadline
SHORT_QUERY = 16  # characters of a query a word is added to; a longer one gives words alone
SHORT_CLAUSES = 3
_PROBE = "词"  # a word like any related search's, to see whether the query takes one more clause


def related_searches(matcher, words, story: np.ndarray | None, q: str, parsed: ParsedQuery,
                     docs: np.ndarray, scores: np.ndarray) -> list[dict]:
    """Return up to RELATED searches, as {"q", "word"}, from the words of a sample of the matches.

    words is the build's WordColumn (search/facets.py): each document's words and their document counts.
    """
    if len(docs) < MIN_HITS or words is None:
        return []
    if matcher.deadline is not None and TIME_SHARE * (matcher.deadline - matcher.clock()) <= 0:
        matcher.work.cap("related")
        return []
    picked = sample_of(docs, scores, story)
    matcher.work.sampled += len(picked)
    size = len(picked)
    codes, held = words.held(picked)
    enough = held >= least_held(size)
    codes = codes[enough][_ranked(held[enough], words.df[codes[enough]], size, words.size)]  # labels sorted: ties by word
    terms = _query_terms(parsed)
    ranked = ((code, str(words.labels[code])) for code in codes.tolist())
    chosen = _distinct((code, word) for code, word in ranked if is_candidate(word, terms))  # read as text lazily
    shown = [str(words.written[code]) for code, _ in chosen]
    return [{"q": phrase, "word": word} for phrase, word in zip(phrases_of(q, parsed, shown), shown)]


def related_from_sample(samples: list[dict[str, str]], q: str, parsed: ParsedQuery, background) -> list[dict]:
    """Return up to RELATED searches from the words of each sampled match (related_words.words_of), best first."""
    held = Counter(word for words in samples for word in words)
    written = {}
    for words in reversed(samples):  # the first match's form wins
        written.update(words)
    return related_from_words(dict(held), len(samples), q, parsed, background, written.__getitem__)


def related_from_words(held: dict[str, int], size: int, q: str, parsed: ParsedQuery, background, written) -> list[dict]:
    """Return up to RELATED searches from how many of size sampled matches hold each word, best first.

    background(words) returns each word's document count in the archive and the archive's size: the
    embedded index counts its words' lists, a cluster counts them in one request. written(word) gives
    a folded word's form as first written.
    """
    if not size:
        return []
    least = least_held(size)
    terms = _query_terms(parsed)
    words = sorted((w for w, n in held.items() if n >= least and is_candidate(w, terms)), key=lambda w: (-held[w], w))
    words = sorted(words[:MAX_CANDIDATES])  # in word order: ties go to the word first
    counts, doc_count = background(words)
    order = _ranked(np.array([held[w] for w in words]), np.array(counts, dtype=np.int64), size, doc_count)
    shown = [written(word) for word, _ in _distinct((words[i], words[i]) for i in order.tolist())]
    return [{"q": phrase, "word": word} for phrase, word in zip(phrases_of(q, parsed, shown), shown)]


def least_held(size: int) -> int:
    """Return how many of a sample of size matches must hold a word (MIN_HELD)."""
    return next(n for at_least, n in MIN_HELD if size >= at_least)


def _ranked(held: np.ndarray, df: np.ndarray, size: int, total: int) -> np.ndarray:
    """Return the indexes of the words that score, best first (ties: the lower index first).

    A word held by held of the size sampled matches and by df of the total documents scores JLH,
    (fg - bg) * fg / bg with fg = held / size and bg = df / total, when fg > bg and it is in at most
    MAX_BACKGROUND of the archive.
    """
    df = np.maximum(df, 1)
    fg, bg = held / size, df / total
    score = np.where((df <= MAX_BACKGROUND * total) & (fg > bg), (fg - bg) * fg / bg, 0.0)
    order = np.lexsort((np.arange(len(score)), -score))
    return order[score[order] > 0]


def sample_of(docs: np.ndarray, scores: np.ndarray, story: np.ndarray | None) -> np.ndarray:
    """Return the best-scoring SAMPLE matches, one per story, best first (ties: lower document number first)."""
    pool = 4 * SAMPLE  # enough to leave SAMPLE stories after dropping a story's other copies, in practice
    if len(docs) > pool:
        floor = np.partition(scores, len(scores) - pool)[len(scores) - pool]
        keep = scores >= floor  # every tie at the floor: the sample does not depend on partition's order
        docs, scores = docs[keep], scores[keep]
    order = np.lexsort((docs, -scores))
    ranked = docs[order]
    if story is not None:
        ranked = ranked[np.sort(firsts(story[ranked]))]
    return ranked[:SAMPLE]


def _query_terms(parsed: ParsedQuery) -> set[str]:
    """Return the query's folded texts and words: a word holding one of them, or inside one, is a variant."""
    terms = set()
    for clause in parsed.clauses:
        for part in (clause, *clause.alternatives):
            folded = analysis.normalize(part.text)
            terms.update(analysis.word_runs(folded))
            terms.update(part.terms())
    return {t for t in terms if t}


def is_candidate(word: str, query_terms: set[str]) -> bool:
    """Tell whether a folded word may be a related search's word: no variant of the query, stop, boilerplate or number."""
    return related_words.is_word(word) and not any(term in word or word in term for term in query_terms)


def _distinct(ranked) -> list[tuple]:
    """Return the first RELATED (key, word) pairs of which no word holds another or lies inside another (the better kept)."""
    chosen: list[tuple] = []
    for key, word in ranked:
        if not any(word in other or other in word for _, other in chosen):
            chosen.append((key, word))
            if len(chosen) == RELATED:
                break
    return chosen


def phrase_of(q: str, parsed: ParsedQuery, word: str) -> str:
    """Return the related search of a word: the query and the word when the query is short and stays
    itself with the word added, else the word alone."""
    return phrases_of(q, parsed, [word])[0]


def phrases_of(q: str, parsed: ParsedQuery, words: list[str]) -> list[str]:
    """Return the related search of each word (phrase_of): the query is parsed twice, not thrice a word.

    A word is letters, digits and ideographs (related_words.is_word), so it reads as a clause of its own
    after the query exactly when any other such word does, unless it is the operator OR.
    """
    text = " ".join(q.split())
    if len(text) > SHORT_QUERY or len(parsed.clauses) > SHORT_CLAUSES:
        return list(words)
    again = parse_query(f"{text} {_PROBE}")
    if again.warnings or again.clauses != [*parse_query(text).clauses, parse_query(_PROBE).clauses[0]]:
        return list(words)
    return [word if word == "OR" else f"{text} {word}" for word in words]
