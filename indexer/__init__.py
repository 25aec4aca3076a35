"""Parse news snapshots and JSON Lines dumps, analyze them, write the index.

Parts, in data-flow order: ``snapshot`` (read pages and dumps), ``analysis``
(normalisation and the jieba word and character streams, shared with search/),
``schema`` (fields; the contract with search/), ``writer`` (documents, dedup,
headline entries, the Whoosh build), ``store`` (build folders, the atomic swap,
the writer lock), ``cli`` (rebuild, stats, explain).
"""

import warnings

# Whoosh 2.7.4 compares with `is 0` (whoosh/codec/whoosh3.py); when its .pyc files
# are missing, compiling it prints a SyntaxWarning to every command's stderr.
warnings.filterwarnings("ignore", message='"is" with a literal', category=SyntaxWarning)
