"""Parse news snapshots and JSON Lines dumps, analyze them, write the index.

Parts, in data-flow order:

- reading: ``snapshot`` (pages and dumps; ``pagefile`` decodes a file,
  ``pagehead`` finds a page's meta line and title), ``analysis`` (normalisation
  and the jieba word and character streams, shared with search/), ``schema``
  (fields; the contract with search/), ``documents`` (ids, documents, the
  run's report);
- a rebuild (``writer``): ``scan`` (which inputs are one article), the write
  pass, ``headlines`` (headline-only entries); ``memory`` measures its peak;
- a segment (``segment``: the builder, its keys file, the TOC): ``postings``
  (postings in memory and the posting arrays' layout and writer), ``terms``
  (the term dictionary), ``codec`` (Whoosh's codec over them), ``keys`` (64-bit
  keys, the keys file's name);
- the build's other files: ``joining`` (the segments' posting arrays joined into
  one set), ``stories`` (reprints grouped), ``columns`` (per-document arrays);
- reading a build (what search/ uses): ``opening`` (open and check a build),
  ``arrays`` (the posting arrays read), ``mapped`` (files mapped read-only);
- ``store`` (build folders, the atomic swap, the writer lock), ``update``
  (changes without a rebuild), ``cli`` (rebuild, stats, explain).
"""

import warnings

# Whoosh 2.7.4 compares with `is 0` (whoosh/codec/whoosh3.py); when its .pyc files
# are missing, compiling it prints a SyntaxWarning to every command's stderr.
warnings.filterwarnings("ignore", message='"is" with a literal', category=SyntaxWarning)
