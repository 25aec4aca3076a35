"""Open a build for searching: check that its files can be read, then map its posting arrays.

Whoosh reads a segment's files lazily and, when one is cut short or of another
version, fails deep in a search with whatever its pickles and structs raise.
``open_index`` checks the format version, reads the table of contents, maps
each segment's term dictionary and posting arrays (codec.ArrayTermsReader) and
reads each segment's last stored document first, and names the file that fails
(store.DamagedFileError), so a damaged build is refused when it is opened.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC

from indexer import store
from indexer.arrays import PostingArrays
from indexer.codec import ArrayTermsReader
from indexer.perdoc import ArrayPerDocReader
from indexer.segment import INDEX_NAME


def open_index(folder: str | Path) -> tuple[object, PostingArrays | None]:
    """Open a build's Whoosh index and map its posting arrays, checking first that its format version, table
    of contents, each segment's term dictionary and arrays and each segment's last stored document can be read.

    :raises store.DamagedFileError: naming the first file that cannot be read (cut short, of another
        version, missing).
    """
    folder = Path(folder)
    found = store.read_meta(folder).get("format_version")
    if found != store.FORMAT_VERSION:
        raise store.DamagedFileError(folder / store.META_FILE, f"written in format {found or 1}, this version reads "
                                     f"format {store.FORMAT_VERSION}")
    storage = _CheckedStorage(str(folder))
    generation = TOC._latest_generation(storage, INDEX_NAME)
    if generation < 0:
        raise store.DamagedFileError(folder / TOC._filename(INDEX_NAME, "*"), "missing: no table of contents")
    with _reading(storage, folder / TOC._filename(INDEX_NAME, generation)):
        ix = whoosh_index.FileIndex(storage, indexname=INDEX_NAME)
        segments = ix._segments()
    for seg in segments:
        ArrayTermsReader(folder, seg).close()  # map_npy names a missing or cut-short array
        if seg.doc_count_all():  # and a stored-field or keys file, ends that do not fit, a bad last document
            reader = ArrayPerDocReader(storage, seg)
            try:
                reader.check(seg.doc_count_all() - 1)
            finally:
                reader.close()
    return ix, PostingArrays.open(folder, segments)


class _CheckedStorage(FileStorage):
    """A FileStorage that, while a check reads through it, keeps the files it opens: Whoosh leaves them
    open when a read fails half-way, and the check closes them."""

    opened: list | None = None

    def open_file(self, name, *args, **kwargs):
        stream = super().open_file(name, *args, **kwargs)
        if self.opened is not None:
            self.opened.append(stream)
        return stream


@contextmanager
def _reading(storage: _CheckedStorage, *names: Path):
    """Turn a failure of Whoosh reading these files into a DamagedFileError naming the missing one, else the first."""
    storage.opened = []
    try:
        yield
    except Exception as exc:  # Whoosh's pickles and structs, cut short or of another version, raise anything
        for stream in storage.opened:
            if not stream.is_closed:
                stream.close()
        culprit = next((name for name in names if not name.is_file()), names[0])
        raise store.DamagedFileError(culprit, f"unreadable ({type(exc).__name__}: {exc})") from None
    finally:
        storage.opened = None
