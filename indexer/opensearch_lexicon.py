"""The build's lexicon in the cluster: one index of word entries beside the articles' index.

Completion and did-you-mean on the cluster (search/opensearch_spelling.py)
read the same lexicon as the embedded engine (indexer/lexicon.py): every
word of the titles and bodies with the documents holding it (``df``), its
full pinyin and initials (keyword fields, for prefix look-ups) and whether it
is a name. A rebuild loads it from the embedded build into ``NAME-lexicon``
beside the articles' index ``NAME`` and moves both aliases (``ALIAS`` and
``ALIAS-lexicon``) in one request (indexer/opensearch_index.py), so readers
see a pair made together; a failed rebuild deletes both. An update from the
embedded build sends the entries whose count or keys changed
(sync_lexicon); an update straight to the cluster adds the new articles'
words to the counts (add_words) and does not lower them for the articles it
deletes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from indexer.lexicon import MIN_KEYED_DF, NAME, keys_of, open_lexicon

SUFFIX = "-lexicon"  # of the lexicon's index after its articles' index's name, and of its alias after the alias
LOOKUP = 1_000  # entries looked up by id in one request


def lexicon_alias(alias: str) -> str:
    """Return the alias naming the live lexicon of an articles' alias."""
    return alias + SUFFIX


def lexicon_body() -> dict:
    """Return the settings and mapping of a lexicon index."""
    keyword = {"type": "keyword"}
    properties = {"id": {"type": "keyword", "index": False, "doc_values": False}, "word": keyword,
                  "df": {"type": "long"}, "name": {"type": "boolean"}, "pinyin": keyword, "initials": keyword}
    return {"settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1", "refresh_interval": "-1"},
            "mappings": {"dynamic": "strict", "properties": properties}}


def entry(word: str, df: int, keys: tuple[str, str, int] | None) -> dict:
    """Return the lexicon document of a word: its documents, keys (keys_of()) and name flag."""
    pinyin, initials, flags = keys or ("", "", 0)
    return {"id": entry_id(word), "word": word, "df": int(df), "name": bool(flags & NAME),
            "pinyin": pinyin or None, "initials": initials or None}


def entry_id(word: str) -> str:
    """Return a word's document id (a digest: a word may be longer than an id may)."""
    return hashlib.blake2b(word.encode("utf-8"), digest_size=16).hexdigest()


def entry_keys(source: dict) -> tuple[str, str, int] | None:
    """Return keys_of() as a lexicon document holds them (None: the word has no keys)."""
    if not source.get("pinyin"):
        return None
    return source["pinyin"], source.get("initials") or "", NAME if source.get("name") else 0


def build_entries(build: Path) -> tuple[int, Iterator[dict]]:
    """Return how many words a build's lexicon holds and their documents (none: a build without a lexicon)."""
    lexicon = open_lexicon(build)
    if lexicon is None:
        return 0, iter(())
    keys = lexicon.keys()
    return len(lexicon), (entry(lexicon.word(n), int(lexicon.df[n]), keys.get(n)) for n in range(len(lexicon)))


def sync_lexicon(client, alias: str, build: Path, load, delete) -> dict:
    """Bring the alias's lexicon in line with a build's after an update: send changed entries, delete gone ones.

    load, delete: indexer/opensearch_index.py load_documents and
    delete_documents (by id in bulk: delete-by-query is a module a cluster
    may not load). A cluster loaded before it had a lexicon is left without
    one (a rebuild makes it).
    """
    from opensearchpy.helpers import scan

    target = lexicon_alias(alias)
    if not client.indices.exists_alias(name=target):
        return {"sent": 0, "deleted": 0}
    held = {hit["_id"]: hit["_source"] for hit in scan(client, index=target, size=5000)}
    count, entries = build_entries(build)
    seen: set[str] = set()

    def changed() -> Iterator[dict]:
        for doc in entries:
            seen.add(doc["id"])
            if held.get(doc["id"]) != doc:
                yield doc

    sent = load(client, target, changed(), count, False)
    gone = [key for key in held if key not in seen]
    if gone:
        delete(client, target, gone)
    client.indices.refresh(index=target)
    return {"sent": sent, "deleted": len(gone)}


def word_counts(documents: list[dict]) -> Counter:
    """Return each word's documents among cluster documents: the larger of its title and body counts."""
    title, body = Counter(), Counter()
    for doc in documents:
        title.update(set(doc.get("title_words", "").split()))
        body.update(set(doc.get("body_words", "").split()))
    return Counter({word: max(title[word], body[word]) for word in title.keys() | body.keys()})


def add_words(client, alias: str, documents: list[dict], load) -> int:
    """Add new articles' words to the alias's lexicon counts; a word reaching MIN_KEYED_DF gets its keys; return
    how many entries were sent.

    Counts are added per update, the larger of title and body each time, a
    replaced article's words are not counted again and a deleted article's
    are not taken off (its searched fields are not kept to be read back):
    roughly the rebuild's counts, made exact by the next rebuild.
    """
    target = lexicon_alias(alias)
    counts = word_counts(documents)
    if not counts or not client.indices.exists_alias(name=target):
        return 0
    words = sorted(counts)
    held: dict[str, dict] = {}
    for start in range(0, len(words), LOOKUP):
        ids = [entry_id(w) for w in words[start:start + LOOKUP]]
        found = client.mget(index=target, body={"ids": ids})
        held.update((d["_source"]["word"], d["_source"]) for d in found["docs"] if d.get("found"))
    sent = []
    for word in words:
        before = held.get(word, {})
        df = int(before.get("df") or 0) + counts[word]
        keys = entry_keys(before) if before else None
        if keys is None and df >= MIN_KEYED_DF:
            keys = keys_of(word)
        sent.append(entry(word, df, keys))
    done = load(client, target, iter(sent), len(sent), False)
    client.indices.refresh(index=target)
    return done
