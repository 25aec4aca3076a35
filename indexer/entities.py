"""The people, places and organisations of each article, found when it is indexed.

jieba's part-of-speech tags (through rjieba: nr/nrfg/nrt person, ns place, nt
organisation) name candidates; rules keep the ones that look like names, and
``entities.txt`` beside this module corrects the tags known to be wrong in news
text (people tagged as places, names cut apart, common words tagged as names).
The tagger is a jieba of its own: the words it adds never change how the
index cuts text.

Rules, in order (``EntityTagger.extract``):

- a word in entities.txt has the kind written there (x: none);
- only runs of ideographs of 2 to 12 characters (no digits, Latin or single characters);
- a person is a Chinese name (2 to 4 characters, a common surname first), or a
  transliterated name (3 characters or more) right after a title such as 总统
  or 外长; a title glued to a name (习近平总书记) is cut off;
- a place or organisation of 2 characters is not two one-character country
  abbreviations (中美, 中非: relations, not places); an organisation is not a
  phrase ending like 关系, 进展 or 化.

What a segment keeps (``SegmentEntities``, ``<segment id>.ents.npz``) and what a
build keeps (``entities.npz``, joined from them when a build or an update is
written), per kind (person, place, org), without pickles:

    <kind>_labels (str: the segment's names, in first-seen order; the build's, sorted),
    <kind>_offsets (int64, documents + 1), <kind>_codes (int32): document d's
    names are labels[codes[offsets[d]:offsets[d + 1]]], each once.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from array import array
from pathlib import Path

import numpy as np

from indexer import store

KINDS = ("person", "place", "org")
TAG_KINDS = {"nr": "person", "nrfg": "person", "nrt": "person", "ns": "place", "nt": "org", "x": None}
DICTIONARY = Path(__file__).with_name("entities.txt")
ENTITIES_FILE = "entities.npz"
MAX_CHARS = 3000  # a body is tagged up to here: the names of a news item are in its first paragraphs
NAME = re.compile(r"[\u4e00-\u9fff]{2,12}")
# Common Chinese surnames (single and compound): a Chinese name starts with one.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛"
    "邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝"
    "路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂"
    "全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝栗"
) | {"欧阳", "司马", "诸葛", "上官", "司徒", "令狐", "慕容", "尉迟", "长孙", "东方", "夏侯", "皇甫"}
# Titles and roles: glued to a name they are cut off; right before a transliterated name they vouch for it.
TITLES = ("总书记", "国家主席", "主席", "委员长", "总理", "副总理", "总统", "副总统", "首相", "外长", "外交部长",
          "部长", "秘书长", "国王", "议长", "大使", "书记", "省长", "市长", "主任", "院士", "同志", "领导人", "发言人",
          "总司令", "司令", "王储", "女王", "亲王", "总督", "特使", "先生", "女士")
# One-character abbreviations of countries and regions: two of them are a relation (中美), not a place.
ABBREVIATIONS = set("中美俄日韩欧非英法德印巴朝阿澳加意越老泰蒙哈乌叙伊以土沙埃拉亚港澳台京沪津渝粤苏浙")
ORG_ENDINGS = ("关系", "进展", "格局", "化", "合作", "会谈")


def read_dictionary(path: Path = DICTIONARY) -> dict[str, str]:
    """Return the corrections of entities.txt: word -> nr, ns, nt or x."""
    fixes = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 2 and parts[1] in TAG_KINDS:
            fixes[parts[0]] = parts[1]
    return fixes


class EntityTagger:
    """Find an article's people, places and organisations with a jieba of its own."""

    def __init__(self, dictionary: Path = DICTIONARY) -> None:
        import rjieba

        self.fixes = read_dictionary(dictionary)
        self.jieba = rjieba.Jieba()
        for word, tag in self.fixes.items():
            if tag != "x":
                self.jieba.add_word(word, None, tag)

    def extract(self, title: str, body: str) -> dict[str, list[str]]:
        """Return each kind's names in the title and the first MAX_CHARS of the body, each once, first seen first."""
        found: dict[str, dict[str, None]] = {kind: {} for kind in KINDS}
        for text in (title, body[:MAX_CHARS]):
            words = self.jieba.tag(text)
            for i, (word, tag) in enumerate(words):
                kind, name = self._judge(word, tag, words[i - 1][0] if i else "")
                if kind is not None:
                    found[kind][name] = None
        return {kind: list(names) for kind, names in found.items()}

    def _judge(self, word: str, tag: str, before: str) -> tuple[str | None, str]:
        """Return the kind of a tagged word (None: not a name) and the name it holds."""
        if word in self.fixes:
            return TAG_KINDS[self.fixes[word]], word
        kind = TAG_KINDS.get(tag)
        if kind is None:
            return None, word
        if kind == "person":
            return _person(word, before)
        if not NAME.fullmatch(word):
            return None, word
        if len(word) == 2 and set(word) <= ABBREVIATIONS:
            return None, word
        if kind == "org" and word.endswith(ORG_ENDINGS):
            return None, word
        return kind, word


def _person(word: str, before: str) -> tuple[str | None, str]:
    """Return ("person", name) when a word tagged as a person (or after a title) looks like a name."""
    for title in TITLES:
        if word.endswith(title) and len(word) > len(title) + 1:
            word = word[:-len(title)]
            break
    if not NAME.fullmatch(word):
        return None, word
    chinese = len(word) <= 4 and (word[0] in SURNAMES or word[:2] in SURNAMES)
    if chinese and not word.startswith(("老", "小")):
        return "person", word
    if len(word) >= 3 and before in TITLES:  # a transliterated name, vouched for by the title before it
        return "person", word
    return None, word


_tagger: EntityTagger | None = None


def get_tagger() -> EntityTagger:
    """Return this process's tagger, loaded on first use."""
    global _tagger
    if _tagger is None:
        _tagger = EntityTagger()
    return _tagger


def entities_file(seg) -> str:
    """Return the name of a segment's entities file: Whoosh's clean-up keeps and drops it with the segment."""
    return f"{seg.segment_id()}.ents.npz"


class SegmentEntities:
    """The names of one segment's documents, as they are added."""

    def __init__(self) -> None:
        self.labels: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self.codes = {kind: array("i") for kind in KINDS}
        self.ends = {kind: array("q", [0]) for kind in KINDS}
        self.nbytes = 0

    def add(self, title: str, body: str) -> None:
        """Find and keep the names of the next document."""
        for kind, names in get_tagger().extract(title, body).items():
            labels = self.labels[kind]
            self.codes[kind].extend(labels.setdefault(name, len(labels)) for name in names)
            self.ends[kind].append(len(self.codes[kind]))
        self.nbytes = sum(4 * len(c) + 8 * len(e) + 40 * len(self.labels[k])
                          for (k, c), e in zip(self.codes.items(), self.ends.values()))

    def save(self, path: Path) -> None:
        """Write the segment's names (see the module docstring)."""
        arrays = {}
        for kind in KINDS:
            arrays[f"{kind}_labels"] = np.array(list(self.labels[kind]), dtype=str)
            arrays[f"{kind}_offsets"] = np.array(self.ends[kind], dtype=np.int64)
            arrays[f"{kind}_codes"] = np.array(self.codes[kind], dtype=np.int32)
        with store.create_file(path) as stream:
            np.savez(stream, **arrays)


def write_entities(build: Path, segments: list) -> None:
    """Join the segments' entities files into the build's entities.npz; write none when a segment lacks one."""
    paths = [Path(build) / entities_file(seg) for seg in segments]
    (Path(build) / ENTITIES_FILE).unlink(missing_ok=True)  # an update's build must not keep the one it linked in
    if not all(path.is_file() for path in paths):
        return
    parts = []
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            parts.append({name: data[name] for name in data.files})
    arrays = {}
    for kind in KINDS:
        arrays.update(_join_kind(kind, parts))
    with store.create_file(Path(build) / ENTITIES_FILE) as stream:
        np.savez(stream, **arrays)


def _join_kind(kind: str, parts: list[dict]) -> dict[str, np.ndarray]:
    """Return one kind's build arrays: sorted labels, the segments' offsets and codes recoded and joined."""
    labels = [part[f"{kind}_labels"] for part in parts]
    every = np.unique(np.concatenate(labels)) if labels else np.array([], dtype=str)
    offsets, codes, base = [np.zeros(1, np.int64)], [], 0
    for seg_labels, part in zip(labels, parts):
        seg_codes, seg_offsets = part[f"{kind}_codes"], part[f"{kind}_offsets"]
        codes.append(np.searchsorted(every, seg_labels)[seg_codes] if len(seg_codes) else seg_codes)
        offsets.append(seg_offsets[1:] + base)
        base += len(seg_codes)
    return {f"{kind}_labels": every, f"{kind}_offsets": np.concatenate(offsets),
            f"{kind}_codes": np.concatenate(codes).astype(np.int32) if codes else np.zeros(0, np.int32)}


def load_entities(build: Path) -> dict[str, np.ndarray]:
    """Return a build's entity arrays, or none when it has no entities.npz (built without them).

    :raises store.DamagedFileError: when its entities.npz cannot be read.
    """
    path = Path(build) / ENTITIES_FILE
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise store.DamagedFileError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
