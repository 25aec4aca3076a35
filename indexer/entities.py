"""The people, places and organisations of each article, found when it is indexed.

jieba's part-of-speech tags (through rjieba: nr/nrfg/nrt person, ns place, nt
organisation) name candidates; rules keep the ones that look like names, and
``entities.txt`` beside this module corrects the tags known to be wrong in news
text (people tagged as places, names cut apart, common words tagged as names).
The tagger is a jieba of its own: the words it adds never change how the
index cuts text.

Rules (``EntityTagger.extract``; the figures they reach are in README):

- a word in entities.txt has the kind written there (x: none);
- only runs of 2 to 12 ideographs: no digits, Latin or single characters, no
  piece of a longer name (a lone ideograph glued on either side: 马库|扎), no
  preposition glued on (向普京), no title (习近平总书记 is 习近平);
- a person is a Chinese name (a common surname and one or two characters) or a
  transliterated name right after a title (总统普京); a place or organisation is
  no relation (中美) and an organisation ends like one (…部, …委员会, …集团);
- a candidate is kept when something vouches for it: a title or a deed next to
  a person (委员汪洋, 王毅表示), a place's own ending (…省, …海峡) or a word
  leading to it (在, 访问), an organisation's ending; or when it is in the
  title, said twice, or listed (、 和 与) next to a kept name of its kind.

What a segment keeps (``SegmentEntities``, ``<segment id>.ents.npz``) and what a
build keeps (``entities.npz``, joined from them when a build or an update is
written), per kind (person, place, org, and ``word``: the words related
searches count, indexer/related_words.py), without pickles:

    <kind>_labels (str: the segment's names, in first-seen order; the build's, sorted),
    <kind>_offsets (int64, documents + 1), <kind>_codes (int32): document d's
    names are labels[codes[offsets[d]:offsets[d + 1]]], each once;
    word_written (str, as word_labels): each word as first written (GDP for gdp).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from array import array
from pathlib import Path

import numpy as np

from indexer import store

KINDS = ("person", "place", "org")  # the names the facets count
WORD = "word"  # the words of an article's title and lead that related searches count (related_words.py)
STORED = (*KINDS, WORD)
TAG_KINDS = {"nr": "person", "nrfg": "person", "nrt": "person", "ns": "place", "nt": "org"}
FIXES = (*TAG_KINDS, "x")  # what entities.txt may say
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
    "全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝栗习"
) | {"欧阳", "司马", "诸葛", "上官", "司徒", "令狐", "慕容", "尉迟", "长孙", "东方", "夏侯", "皇甫"}
# Titles and roles: glued to a name they are cut off; next to a name they vouch for it.
TITLES = ("总书记", "国家主席", "主席", "委员长", "总理", "副总理", "总统", "副总统", "首相", "外长", "外交部长",
          "部长", "秘书长", "国王", "议长", "大使", "书记", "省长", "市长", "主任", "院士", "同志", "领导人", "发言人",
          "总司令", "司令", "王储", "女王", "亲王", "总督", "特使", "先生", "女士", "委员", "常委", "代表", "记者",
          "村民", "教授", "专家", "队长", "董事长", "总经理", "局长", "厅长", "组长", "会长", "校长", "夫人")
# What a person is said to do right after the name: it vouches for a name of two characters.
DEEDS = ("说", "表示", "指出", "强调", "认为", "介绍", "称", "告诉", "主持", "出席", "参加", "会见", "会谈",
         "致辞", "讲话", "发表", "宣布", "希望", "谈到", "回忆", "带领")
# Words before a place: 在北京, 赴武汉, 访问南京.
TOWARDS = ("在", "到", "赴", "于", "从", "至", "抵达", "前往", "访问", "位于", "来自", "途经", "飞往", "开往",
           "离开", "进入", "回到", "返回", "来到", "包括", "对", "向", "同", "与")
# Words after a place: 山东等地, 伊朗总统, 香港市民.
PLACE_AFTER = ("等地", "等", "地区", "境内", "当地", "方面", "政府", "人民", "总统", "总理", "外长", "边境", "市委",
               "省委", "代表团", "市民", "居民", "人")
PLACE_ENDINGS = tuple("省市县区镇乡村州岛湾港峡洲") + ("山脉", "群岛", "地带", "地区", "共和国", "公国", "王国",
                                                      "沙漠", "高原", "盆地", "平原")
# Characters that may stand alone next to a name: what is left is a piece of a longer name (马库|扎, 闫|青海).
FUNCTION = set("的地得了着过在和与同跟及并说称讲问是为对向将已就还又也都曾却均等会要能去来到从把被让给由于以而或随"
               "用请经据后前时上中下里内外年月日号个位名人即则但再更最很不没无有做作看听")
LISTS = ("、", "和", "与", "及", "同")
# One-character abbreviations of countries and regions: two of them are a relation (中美), not a place.
ABBREVIATIONS = set("中美俄日韩欧非英法德印巴朝阿澳加意越老泰蒙哈乌叙伊以土沙埃拉亚港澳台京沪津渝粤苏浙塞坦卢菲摩尼希匈塔")
ORG_ENDINGS = ("关系", "进展", "格局", "化", "合作", "会谈")
# How the name of an organisation ends: 外交部, 统计局, 国务院, 联合国, 哈马斯 (those in entities.txt need not).
ORG_TYPES = tuple("部局院委会厅署办党军队团社校所行司组台馆盟国处") + (
    "公司", "集团", "中心", "组织", "政府", "议院", "大学", "学院", "日报", "武装", "中央", "军委", "政协", "人大",
    "联合会", "协会", "基金", "法院", "检察院", "银行", "交易所", "电视台")
# Two characters, a numeral and a place word, are a count (四省, 两岸), not a name.
NUMERALS = set("一二三四五六七八九十两几数多各")
# Prepositions jieba glues to a name: 向普京, 同海合会.
LEADING = set("向对同与和在给让被把将")
# Last characters of places and institutions, never of a person's name (石家庄, 唐山站, 仲裁庭).
NOT_NAME_ENDINGS = set("省市县区镇乡村州岛港湾庄站庭所院局部厅司处队性化傅法作物图质档口湖")
# Characters of transliterations, rare in Chinese given names: 罗维奇 is a piece of 基塔罗维奇.
FOREIGN = set("维奇斯尔夫娃瓦洛库凯贾姆契诺茨萨耶里拉克德特")


def read_dictionary(path: Path = DICTIONARY) -> dict[str, str]:
    """Return the corrections of entities.txt: word -> nr, ns, nt or x."""
    fixes = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 2 and parts[1] in FIXES:
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
        """Return each kind's names in the title and the first MAX_CHARS of the body, each once, first seen first.

        A name is kept when something vouches for it (see _judge), when it is in
        the title or said twice, or when it is listed (、 和 与) next to a kept name of its kind.
        """
        seen: dict[tuple[str, str], list] = {}  # (kind, name) -> [sure, mentions]
        for text, in_title in ((title, True), (body[:MAX_CHARS], False)):
            tagged = self.jieba.tag(text)
            words, tags = [word for word, _ in tagged], [tag for _, tag in tagged]
            fixes = self.fixes
            found = {i: self._judge(words, tags, i) for i, (word, tag) in enumerate(tagged)
                     if tag in TAG_KINDS or word in fixes}  # a name's tag, or a correction
            found = {i: f for i, f in found.items() if f[0] is not None}
            for i, (kind, name, sure) in found.items():
                entry = seen.setdefault((kind, name), [False, 0])
                entry[0] |= sure or in_title
                entry[1] += 1
            _spread(words, found, seen)
        names: dict[str, list[str]] = {kind: [] for kind in KINDS}
        for (kind, name), entry in seen.items():
            if _kept(entry):
                names[kind].append(name)
        return names

    def _judge(self, words: list[str], tags: list[str], i: int) -> tuple[str | None, str, bool]:
        """Return the kind of a tagged word (None: not a name), the name it holds and whether that is sure."""
        word, kind = words[i], TAG_KINDS.get(tags[i])
        before, after = words[i - 1] if i else "", words[i + 1] if i + 1 < len(words) else ""
        if len(word) >= 3 and word[0] in LEADING and word[1:] in self.fixes:  # 向普京: a preposition glued on
            word, before = word[1:], word[0]
        if word in self.fixes:
            return TAG_KINDS.get(self.fixes[word]), word, True
        if kind is None or _piece(before) or _piece(after) or not NAME.fullmatch(word):
            return None, word, False
        if kind == "person":
            joined = any(tags[j][:2] in ("nr", "ns") and NAME.fullmatch(words[j])
                         for j in (i - 1, i + 1) if 0 <= j < len(words))
            return (None, word, False) if joined else _person(word, before, after, tags[i])
        counted = len(word) == 2 and word[0] in NUMERALS and word[1] in "省市县区国方地岸洲"  # 四省, 两岸
        relation = len(word) == 2 and word[0] == "中" and word != "中国"  # 中科, 中坦: China and a country
        if relation or kind == "place" and word[0] == "驻" or counted \
                or word.endswith("化"):
            return None, word, False
        if kind == "org":
            if word.endswith(ORG_ENDINGS) or not word.endswith(ORG_TYPES):
                return None, word, False
            if word[0] in LEADING and len(word) >= 4:  # 同海合会
                word = word[1:]
            elif i and tags[i - 1] in ("ns", "nt", "j") and NAME.fullmatch(before) and len(word) <= 5 \
                    and not word.startswith(("全国", "中国", "中央", "国家")):
                word = before + word  # 卡塔尔|外交部: the organisation is the whole
            return kind, word, True
        if len(word) == 2 and set(word) <= ABBREVIATIONS:
            return None, word, False
        sure = word.endswith(PLACE_ENDINGS) or before in TOWARDS or after in PLACE_ENDINGS + PLACE_AFTER
        return kind, word, sure


def _piece(neighbour: str) -> bool:
    """Return whether a word next to a name is a lone ideograph that belongs to the name (马库|扎)."""
    return len(neighbour) == 1 and "\u4e00" <= neighbour <= "\u9fff" and neighbour not in FUNCTION


def _person(word: str, before: str, after: str, tag: str) -> tuple[str | None, str, bool]:
    """Return ("person", name, sure) when a word tagged as a person looks like a name."""
    if len(word) >= 4 and word.endswith(TITLES):  # one call for the common case: no title glued on
        title = max((t for t in TITLES if word.endswith(t)), key=len)
        if len(word) > len(title) + 1:
            word, after = word[:-len(title)], title
    if word[-1] in NOT_NAME_ENDINGS or word.startswith(("老", "小")) or word in TITLES:
        return None, word, False
    vouched = tag == "nrfg" or before in TITLES or after in TITLES or after in DEEDS
    surname = word[:2] if word[:2] in SURNAMES else word[0]
    if surname in SURNAMES and len(word) - len(surname) in (1, 2):
        foreign = len(word) == 3 and set(word[1:]) <= FOREIGN
        return ("person", word, vouched) if not foreign else (None, word, False)
    if len(word) >= 3 and before in TITLES:  # a transliterated name, vouched for by the title before it
        return "person", word, True
    return None, word, False


def _spread(words: list[str], found: dict, seen: dict) -> None:
    """Make sure the names listed next to a sure name of their kind (甲、乙和丙; places also 海南三亚)."""
    changed = True
    while changed:
        changed = False
        for i, (kind, name, _) in found.items():
            if _kept(seen[(kind, name)]):
                continue
            for j in (i - 2, i - 1, i + 1, i + 2):
                other = found.get(j)
                if other is None or other[0] != kind or not _kept(seen[other[:2]]):
                    continue
                if abs(i - j) == 1 and kind == "place" or abs(i - j) == 2 and words[(i + j) // 2] in LISTS:
                    seen[(kind, name)][0] = changed = True
                    break


def _kept(entry: list) -> bool:
    """Return whether a name is kept: sure, or said twice."""
    return entry[0] or entry[1] >= 2


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
        self.labels: dict[str, dict[str, int]] = {kind: {} for kind in STORED}
        self.codes = {kind: array("i") for kind in STORED}
        self.ends = {kind: array("q", [0]) for kind in STORED}
        self.written: list[str] = []  # as self.labels[WORD]
        self.nbytes = 0

    def add(self, title: str, body: str, words: dict[str, str]) -> None:
        """Find and keep the names of the next document, and keep its words (folded -> as written)."""
        for kind, names in get_tagger().extract(title, body).items():
            self._keep(kind, names)
        labels = self.labels[WORD]
        self.written.extend(form for word, form in words.items() if word not in labels)
        self._keep(WORD, words)
        self.nbytes = sum(4 * len(c) + 8 * len(e) + 40 * len(self.labels[k])
                          for (k, c), e in zip(self.codes.items(), self.ends.values())) + 40 * len(self.written)

    def _keep(self, kind: str, names) -> None:
        labels = self.labels[kind]
        self.codes[kind].extend(labels.setdefault(name, len(labels)) for name in names)
        self.ends[kind].append(len(self.codes[kind]))

    def save(self, path: Path) -> None:
        """Write the segment's names and words (see the module docstring)."""
        arrays = {}
        for kind in STORED:
            arrays[f"{kind}_labels"] = np.array(list(self.labels[kind]), dtype=str)
            arrays[f"{kind}_offsets"] = np.array(self.ends[kind], dtype=np.int64)
            arrays[f"{kind}_codes"] = np.array(self.codes[kind], dtype=np.int32)
        arrays[f"{WORD}_written"] = np.array(self.written, dtype=str)
        with store.create_file(path) as stream:
            np.savez_compressed(stream, **arrays)


def write_entities(build: Path, segments: list, previous: Path | None = None, rows: dict | None = None) -> None:
    """Join the segments' names and words into the build's entities.npz, then delete the segments' own files:
    the build's file is their only copy. Write none when a segment has neither.

    A new segment's come from its file; an earlier build's segment's (an update) from previous's
    entities.npz, at its rows there (rows: segment id -> (first, end) document numbers in previous).
    """
    build, rows = Path(build), rows or {}
    paths = [build / entities_file(seg) for seg in segments]
    (build / ENTITIES_FILE).unlink(missing_ok=True)  # an update's build must not keep the one it linked in
    old = load_entities(previous) if previous is not None else {}
    if not all(path.is_file() or (old and seg.segment_id() in rows) for seg, path in zip(segments, paths)):
        return
    parts = []
    for seg, path in zip(segments, paths):
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                parts.append({name: data[name] for name in data.files})
        else:
            parts.append(_part_of(old, *rows[seg.segment_id()]))
    arrays = {}
    for kind in STORED:
        arrays.update(_join_kind(kind, parts))
    with store.create_file(build / ENTITIES_FILE) as stream:
        np.savez_compressed(stream, **arrays)
    for path in paths:  # in an update's build, its links to the live build's files
        path.unlink(missing_ok=True)


def _part_of(arrays: dict[str, np.ndarray], first: int, end: int) -> dict[str, np.ndarray]:
    """Return documents first .. end - 1 of a build's entities arrays as a segment's file holds them."""
    part = {}
    for kind in STORED:
        offsets = arrays[f"{kind}_offsets"]
        codes = arrays[f"{kind}_codes"][offsets[first]:offsets[end]]
        used = np.flatnonzero(np.bincount(codes, minlength=len(arrays[f"{kind}_labels"])))
        part[f"{kind}_labels"] = arrays[f"{kind}_labels"][used]
        part[f"{kind}_offsets"] = offsets[first:end + 1] - offsets[first]
        part[f"{kind}_codes"] = np.searchsorted(used, codes).astype(np.int32)
        if kind == WORD:
            part[f"{kind}_written"] = arrays[f"{kind}_written"][used]
    return part


def _join_kind(kind: str, parts: list[dict]) -> dict[str, np.ndarray]:
    """Return one kind's build arrays: sorted labels, the segments' offsets and codes recoded and joined."""
    labels = [part[f"{kind}_labels"] for part in parts]
    every, first = np.unique(np.concatenate(labels), return_index=True) if labels else (np.array([], dtype=str),) * 2
    joined = {}
    if kind == WORD:  # a word as first written: in the first segment (first document) that holds it
        joined[f"{kind}_written"] = np.concatenate([part[f"{kind}_written"] for part in parts])[first] if parts else every
    offsets, codes, base = [np.zeros(1, np.int64)], [], 0
    for seg_labels, part in zip(labels, parts):
        seg_codes, seg_offsets = part[f"{kind}_codes"], part[f"{kind}_offsets"]
        codes.append(np.searchsorted(every, seg_labels)[seg_codes] if len(seg_codes) else seg_codes)
        offsets.append(seg_offsets[1:] + base)
        base += len(seg_codes)
    return {f"{kind}_labels": every, f"{kind}_offsets": np.concatenate(offsets),
            f"{kind}_codes": np.concatenate(codes).astype(np.int32) if codes else np.zeros(0, np.int32), **joined}


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
