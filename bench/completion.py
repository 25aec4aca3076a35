"""Check pinyin completion and time completion: ``python -m bench.completion INDEX [--names N] [--prefixes N]``.

The index's NAMES (default 200) most frequent words that jieba tags as a
place or a person (ns, nr; two characters or more) are each completed from
their full pinyin and from their initials: the words not in the top 5 are
listed. Then PREFIXES (default 300) prefixes drawn from those words (their
pinyin cut at every length, their initials, their first one and two
characters, a Chinese character then the next syllable's letters) are
completed once each after a warm-up of 30, and one markdown row per kind
gives p50/p95/p99/max in ms and the caps the answers hit. Last, the
lexicon's size beside the index's. Asserts nothing about time.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
import rjieba

from indexer.lexicon import keys_of, lexicon_files
from indexer.store import dir_size

WARM_UP = 30


def frequent_names(lexicon, count: int) -> list[str]:
    """Return the count most frequent words of two characters or more jieba tags as a place or a person."""
    found = []
    for n in np.argsort(-lexicon.df.astype(np.int64), kind="stable").tolist():
        word = lexicon.word(n)
        tagged = rjieba.tag(word)
        if len(word) > 1 and len(tagged) == 1 and tagged[0][1] in ("ns", "nr"):
            found.append(word)
            if len(found) == count:
                break
    return found


def misses(engine, names: list[str]) -> list[tuple[str, str, list[str]]]:
    """Return (word, typed, top 5) for each name not in the top 5 of its full pinyin's or initials' completions."""
    out = []
    for word in names:
        full, initials, _ = keys_of(word)
        for typed in (full, initials):
            top = engine.complete(typed)["suggestions"][:5]
            if word not in top:
                out.append((word, typed, top))
    return out


def prefixes(names: list[str], count: int, seed: int = 7) -> dict[str, list[str]]:
    """Return count prefixes by kind, drawn from the names (see the module docstring)."""
    kinds: dict[str, list[str]] = {"pinyin": [], "initials": [], "chinese": [], "mixed": []}
    for word in names:
        full, initials, _ = keys_of(word)
        kinds["pinyin"] += [full[:i] for i in range(1, len(full) + 1)]
        kinds["initials"].append(initials)
        kinds["chinese"] += [word[:1], word[:2]]
        rest = keys_of(word[1:])
        if rest is not None:
            kinds["mixed"].append(word[:1] + rest[0][:2])
    rng = random.Random(seed)
    total = sum(len(v) for v in kinds.values())
    return {kind: rng.sample(found, min(len(found), max(1, count * len(found) // total)))
            for kind, found in kinds.items()}


def timed(engine, typed: str) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = engine.complete(typed)
    return (time.perf_counter() - started) * 1000, answer


def main(argv: list[str]) -> None:
    from search import Engine

    index = Path(argv[0])
    names_count = int(argv[argv.index("--names") + 1]) if "--names" in argv else 200
    prefix_count = int(argv[argv.index("--prefixes") + 1]) if "--prefixes" in argv else 300
    engine = Engine(index)
    try:
        names = frequent_names(engine.current().lexicon, names_count)
        missed = misses(engine, names)
        print(f"{len(names)} most frequent place and person words, each completed from its full pinyin and "
              f"its initials: {2 * len(names) - len(missed)} of {2 * len(names)} in the top 5")
        for word, typed, top in missed:
            print(f"- {word} from {typed}: {' '.join(top)}")
        drawn = prefixes(names, prefix_count)
        for typed in [p for found in drawn.values() for p in found][:WARM_UP]:
            engine.complete(typed)
        print("\n| prefixes | count | p50 ms | p95 ms | p99 ms | max ms | capped |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for kind, found in [*drawn.items(), ("all", [p for found in drawn.values() for p in found])]:
            answers = [timed(engine, typed) for typed in found]
            ms = np.array([t for t, _ in answers])
            capped = sorted({c for _, a in answers for c in a["work"]["capped"]}) or ["—"]
            print(f"| {kind} | {len(ms)} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} | "
                  f"{np.percentile(ms, 99):.1f} | {ms.max():.1f} | {', '.join(capped)} |")
        build = engine.current().path
        size = sum((build / name).stat().st_size for name in lexicon_files())
        print(f"\nlexicon {size / 1e6:.1f} MB of an index of {dir_size(build) / 1e6:.1f} MB "
              f"({len(engine.current().lexicon):,} words)")
    finally:
        engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
