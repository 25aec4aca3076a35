"""The newsearch benchmark: `python -m bench run`, and `python -m bench scale` for growth (see bench/README.md).

Parts, in the order a run uses them:

- ``corpus``: pick the documents (an even sample of the shared corpus) and write them as JSON Lines;
- ``rebuild``: time (a) ``newsearch rebuild``, (b) the textbook Whoosh + jieba build and (c) segmentation
  alone, each in a subprocess whose process tree's memory is sampled;
- ``textbook``: the textbook schema, build and query path; ``floor``: segmentation alone;
- ``snapshots``: render documents as snapshot pages and time the parser over them;
- ``queries``: the fixed query set and the latency of both query paths;
- ``serving``: the site under gunicorn (throughput, latency, worker memory) and ``newsearch serve`` start-up;
- ``scale``: synthetic archives k times the sample, and their rebuild, open, first query and update;
- ``report``: the tables, as markdown, and the results file they share; ``environment``: the machine, the
  commit and a hash of the measured source (indexer/, search/, web/) at the start and the end, since others
  may edit it mid-run.
"""
