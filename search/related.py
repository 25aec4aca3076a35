"""相关搜索: related searches made of the words that set a search's matches apart from the archive.

There is no query log: the words come from the matches themselves, the
significant-terms way (Elasticsearch's JLH score). The foreground is a sample
of the matches, the best-scoring SAMPLE of them, one per story: their titles
and the first SAMPLE_CHARS characters of their bodies, read from the stored
fields. The background is a word's document frequency in the index. A word
scores (fg - bg) * fg / bg, fg and bg the shares of the sample and of the
archive that hold it: a word far more common among the matches than in the
archive scores high; one as common (or rarer) is left out. Only words jieba
tags, on their own, as nouns, names, abbreviations or set phrases count
(is_named): a verb or an adverb can be as common among the matches and name
no subject.

Each related search is the query with one such word added (a short, simple
query), or the word alone. Either way it finds at least the sampled match the
word was read from: that match holds the word in its text, and (with the
query) it matched the query. So no related search is empty. None is a mere
variant of the query: a word that holds a query term, or lies inside one
(both folded as the index folds: width, case, script), is left out, and so are
stop words, words of the broadcast's boilerplate (BOILERPLATE, and any word in
more than MAX_BACKGROUND of the archive), numbers and dates.

The cost is capped like the other paths beside matching: SAMPLE stored
documents at most, the words of SAMPLE_CHARS characters each, the background
counts of MAX_CANDIDATES words, and a TIME_SHARE of the time the request has
left before its deadline; a sample cut by that time is named "related" in
``work.capped``. A search with fewer than MIN_HITS matches gets none.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import rjieba  # the segmenter and its tagger (indexer/analysis.py loads the build's dictionary into it)

from indexer import analysis
from indexer.schema import BODY, TITLE
from search.query import ParsedQuery, parse_query
from search.sets import firsts

RELATED = 10  # related searches an answer lists at most
MIN_HITS = 2  # a search with fewer matches has none: one article is no "set" to tell apart
SAMPLE = 60  # best-scoring matches (one per story) whose text is read
SAMPLE_CHARS = 200  # characters of a body read (cut back to a punctuation mark: segmented as the index did)
MAX_CANDIDATES = 400  # words, most frequent in the sample first, whose background counts are looked up
MAX_BACKGROUND = 0.2  # a word in more of the archive than this share is boilerplate or too broad
# Of a sample of at least this size, the articles that must hold a word (as
# Elasticsearch's min_doc_count 3): of sixty, two is chance; a word of one
# article is that article's, not the set's.
MIN_HELD = ((30, 3), (0, 2))
TIME_SHARE = 0.25  # of the time left before the request's deadline
SHORT_QUERY = 16  # characters of a query a word is added to; a longer one gives words alone
SHORT_CLAUSES = 3
# The broadcast's own words, in (nearly) every item and said in every lead,
# and words that carry no subject. The background share catches most of
# them on a whole archive; a sample of a few days would not.
BOILERPLATE = frozenset(
    "新闻联播 央视网 央视 中央电视台 中国网络电视台 网络电视台 本台 消息 本台消息 记者 编辑 责任编辑 主编 来源 原标题 "
    "中新网 中新社 新华社 新华网 人民网 报道 新闻 据悉 获悉 日电 电讯 直播 视频 图片 截图 网友 联播 联播快讯 国内联播快讯 国际联播快讯 快讯".split()
)
FUNCTION_WORDS = frozenset(
    "我们 你们 他们 她们 它们 我国 这个 那个 这些 那些 这样 那样 这里 那里 一个 一些 一种 一位 一次 一是 二是 三是 "
    "以及 进行 已经 正在 没有 可以 能够 需要 通过 作为 为了 由于 因为 所以 但是 而且 并且 同时 其中 之一 有关 相关 "
    "表示 认为 指出 强调 介绍 说 今年 去年 明年 今天 昨天 明天 目前 近日 日前 当天 当日 此前 此外 另外 还有 以来 "
    "全部 今年以来 月份 人们 先生 女士 方面 情况 问题 工作 活动 时间 期间 左右 以上 以下 等等 记者 了解 一起 开始 继续 不断 更加 非常 主要 重要".split()
)
NAMED_TAGS = frozenset({"vn", "eng", "j", "i", "l"})  # and every n* tag: nouns, names of people, places, bodies
_NUMBERISH = re.compile(r"[\d.%〇零一二三四五六七八九十百千万亿两年月日号时分秒点第余多几半]+")
_CUT_AT = re.compile(r"[，。！？；、,.!?;:：\s]")


def related_searches(matcher, story: np.ndarray | None, q: str, parsed: ParsedQuery,
                     docs: np.ndarray, scores: np.ndarray) -> list[dict]:
    """Return up to RELATED searches, as {"q", "word"}, from the distinctive words of a sample of the matches."""
    if len(docs) < MIN_HITS:
        return []
    deadline = None
    if matcher.deadline is not None:
        deadline = matcher.clock() + TIME_SHARE * max(0.0, matcher.deadline - matcher.clock())
    texts = _read_sample(matcher, sample_of(docs, scores, story), deadline)

    def background(words: list[str]) -> tuple[list[int], int]:
        counts = [max(a, b) for a, b in zip(matcher.counts(TITLE, words), matcher.counts(BODY, words))]
        return counts, matcher.doc_count

    return related_from_sample(texts, q, parsed, background)


def related_from_sample(texts: list[str], q: str, parsed: ParsedQuery, background) -> list[dict]:
    """Return up to RELATED searches from the sample's texts (sample_text of each match), best first.

    background(words) returns each word's document frequency in the archive (the larger of its title's
    and its body's) and the archive's size: the embedded index reads its term dictionary, a cluster
    counts them in one request.
    """
    if not texts:
        return []
    folded = [analysis.normalize(text) for text in texts]  # one code point for one: offsets stay valid
    held = _foreground(folded)
    least = next(n for size, n in MIN_HELD if len(texts) >= size)
    terms = _query_terms(parsed)
    words = sorted((w for w, n in held.items() if n >= least and is_candidate(w, terms)), key=lambda w: (-held[w], w))
    words = words[:MAX_CANDIDATES]
    counts, doc_count = background(words)
    most = MAX_BACKGROUND * doc_count
    scored = []
    for word, count in zip(words, counts):
        count = max(count, 1)
        score = jlh(held[word] / len(texts), count / doc_count) if count <= most else 0.0
        if score > 0:
            scored.append((-score, word))
    shown = [_written(word, texts, folded) for word in _distinct([w for _, w in sorted(scored)])]
    return [{"q": phrase_of(q, parsed, word), "word": word} for word in shown]


def sample_text(title: str, body: str) -> str:
    """Return what the sample reads of a match: its title and its body's first SAMPLE_CHARS characters."""
    return f"{title}\n{_lead(body)}"


def jlh(fg: float, bg: float) -> float:
    """Return the JLH score of a word held by share fg of the sample and share bg of the archive (0 when not more common)."""
    return (fg - bg) * fg / bg if fg > bg else 0.0


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


def _read_sample(matcher, docs: np.ndarray, deadline: float | None) -> list[str]:
    """Return the title and first SAMPLE_CHARS body characters of each document, folded, until the deadline."""
    texts = []
    for doc in docs.tolist():
        if deadline is not None and matcher.clock() >= deadline:
            matcher.work.cap("related")
            break
        stored = matcher.searcher.stored_fields(doc)
        matcher.work.sampled += 1
        texts.append(sample_text(stored.get(TITLE, ""), stored.get(BODY, "")))
    return texts


def _lead(body: str) -> str:
    """Return the body's first SAMPLE_CHARS characters, cut back to the last punctuation mark or space."""
    if len(body) <= SAMPLE_CHARS:
        return body
    cut = max((m.start() for m in _CUT_AT.finditer(body, 0, SAMPLE_CHARS)), default=0)
    return body[:cut]


def _foreground(folded: list[str]) -> Counter:
    """Return how many of the folded texts hold each word, as the index segments them at the top level.

    The smaller dictionary words inside a longer word are left out: 加值 of 增加值 is no search.
    """
    analysis.get_segmenter()  # loaded (with the build's user dictionary) before rjieba is asked directly
    held: Counter = Counter()
    for text in folded:
        held.update(set(rjieba.cut(text)))  # the segmenter's own words, without the offsets it costs twice as much to get
    return held


def _written(word: str, texts: list[str], folded: list[str]) -> str:
    """Return a folded word as first written in the sample (GDP, not gdp)."""
    for text, fold in zip(texts, folded):
        at = fold.find(word)
        if at >= 0:
            return text[at:at + len(word)]
    return word


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
    if len(word) < 2 or not word.isalnum() or word in BOILERPLATE or word in FUNCTION_WORDS or analysis.is_stop_word(word):
        return False
    if _NUMBERISH.fullmatch(word) or (any(c.isdigit() for c in word) and not any("a" <= c <= "z" for c in word)):
        return False  # 十二月, 2023年度, 3000万元: a number or date, with its unit (5G and G20 stay)
    if len(word) == 2 and word[0] in "个万亿" or len(word) == 3 and word[0] in "一两" and word[1] == word[2]:
        return False  # the unit of a number the segmenter cut off (31 个省, 100 万剂), a repeated measure (一条条)
    return not any(term in word or word in term for term in query_terms)


def is_named(word: str) -> bool:
    """Tell whether jieba tags a word, on its own, as a noun, a name, an abbreviation, a set phrase or Latin.

    Verbs, adverbs, pronouns and measure words (会见, 彼此, 共同, 十三届) can
    be as common among the matches, but name no subject to search for.
    """
    tags = rjieba.tag(word)
    return len(tags) == 1 and (tags[0][1] in NAMED_TAGS or tags[0][1][0] == "n")


def _distinct(words: list[str]) -> list[str]:
    """Return the first RELATED named words of which none holds another or lies inside another (the better kept)."""
    chosen: list[str] = []
    for word in words:
        if not any(word in other or other in word for other in chosen) and is_named(word):
            chosen.append(word)
            if len(chosen) == RELATED:
                break
    return chosen


def phrase_of(q: str, parsed: ParsedQuery, word: str) -> str:
    """Return the related search of a word: the query and the word when the query is short and stays
    itself with the word added, else the word alone."""
    text = " ".join(q.split())
    if len(text) <= SHORT_QUERY and len(parsed.clauses) <= SHORT_CLAUSES:
        joined = f"{text} {word}"
        again = parse_query(joined)
        if not again.warnings and again.clauses == [*parse_query(text).clauses, parse_query(word).clauses[0]]:
            return joined
    return word
