"""The words of an article that related searches count (search/related.py): what its title and lead name.

Related searches are made of the words that set a search's matches apart
from the archive (significant terms). What one article brings is fixed when it
is indexed: the distinct words of its title and of its lead, the body's first
SAMPLE_CHARS characters cut back to a punctuation mark or a space (the words
of the whole folded text as the word fields cut it, at the top level, that end
inside the lead: the writer cuts each text once for both), that could name a
subject (``kept``):

- two to MAX_CHARS letters, digits and ideographs;
- no stop word, no word of the broadcast's boilerplate (BOILERPLATE) and no
  function word (FUNCTION_WORDS), no number or date with its unit (十二月,
  2023年度, 3000万元; 5G and G20 stay), no unit cut off a number (个省);
- jieba tags it, on its own, as a noun, a name, an abbreviation, a set
  phrase or Latin (``is_named``): a verb or an adverb (会见, 彼此, 共同) can
  be as common among the matches and name no subject.

Each word is kept with its form as first written (GDP, not gdp). The segment
writer keeps an article's words beside its names (indexer/entities.py, kind
``word``); a cluster's matches are read back and get the same words from
``words_of``.
"""

from __future__ import annotations

import functools
import re

import rjieba  # the tagger (indexer/analysis.py loads the build's dictionary into it)

from indexer import analysis

SAMPLE_CHARS = 200  # characters of a body read (cut back to a punctuation mark: segmented as the index did)
MAX_CHARS = 16  # a longer word is no search anyone types
# The broadcast's own words, in (nearly) every item and said in every lead,
# and words that carry no subject. The background share (search/related.py)
# catches most of them on a whole archive; a sample of a few days would not.
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
_CACHED = 1 << 18  # words whose verdict a process remembers (~30 MB at most)


def sample_text(title: str, body: str) -> str:
    """Return what an article brings to related searches: its title and its body's lead."""
    return f"{title}\n{lead(body)}"


def lead(body: str) -> str:
    """Return the body's first SAMPLE_CHARS characters, cut back to the last punctuation mark or space."""
    if len(body) <= SAMPLE_CHARS:
        return body
    cut = max((m.start() for m in _CUT_AT.finditer(body, 0, SAMPLE_CHARS)), default=0)
    return body[:cut]


def words_of(title: str, body: str, title_tokens: list | None = None, body_tokens: list | None = None) -> dict[str, str]:
    """Return the kept words of an article's title and lead, folded, each with its form as first written.

    A word is a token of the whole folded text, as the word fields cut it (Segmenter.cut), that ends
    inside the lead; title_tokens and body_tokens are those cuts, when the caller has them.
    """
    cut = analysis.get_segmenter().cut
    words: dict[str, str] = {}
    for original, tokens, end_at in ((title, title_tokens, len(title)), (body, body_tokens, len(lead(body)))):
        for word, start, end in cut(analysis.normalize(original)) if tokens is None else tokens:
            if end > end_at:
                break
            if end - start > 1 and word not in words and kept(word):
                words[word] = original[start:end]
    return words


def kept(word: str) -> bool:
    """Tell whether a folded word may be a related search's word (see the module docstring)."""
    return _kept(analysis.get_segmenter(), word)


@functools.lru_cache(maxsize=_CACHED)
def _kept(segmenter, word: str) -> bool:
    """kept(), remembered per segmenter: a user dictionary loaded later may tag a word otherwise."""
    return len(word) <= MAX_CHARS and is_word(word) and is_named(word)


def is_word(word: str) -> bool:
    """Tell whether a folded word is no stop word, boilerplate, number or date, whatever its tag."""
    if len(word) < 2 or not word.isalnum() or word in BOILERPLATE or word in FUNCTION_WORDS or analysis.is_stop_word(word):
        return False
    if _NUMBERISH.fullmatch(word) or (any(c.isdigit() for c in word) and not any("a" <= c <= "z" for c in word)):
        return False  # 十二月, 2023年度, 3000万元: a number or date, with its unit (5G and G20 stay)
    # The unit of a number the segmenter cut off (31 个省, 100 万剂), a repeated measure (一条条).
    return not (len(word) == 2 and word[0] in "个万亿" or len(word) == 3 and word[0] in "一两" and word[1] == word[2])


def is_named(word: str) -> bool:
    """Tell whether jieba tags a word, on its own, as a noun, a name, an abbreviation, a set phrase or Latin."""
    analysis.get_segmenter()  # loaded (with the build's user dictionary) before rjieba is asked directly
    tags = rjieba.tag(word)
    return len(tags) == 1 and (tags[0][1] in NAMED_TAGS or tags[0][1][0] == "n")
