"""Calls to the cluster within one request's deadline; its failures as the engine's errors.

An answer from the cluster is held to the embedded engine's bound: a
request has REQUEST_SECONDS in all (search/budget.py's caps in time leave the
embedded answer room in a second), and every HTTP call of it is given the
time left as its ``request_timeout``. The client does not retry by itself
(indexer/opensearch_index.py connect with retries=0): a node that refuses a
connection is left aside by the client and the call sent to the next node
while time is left, at most once per node; a call that times out has used the
time left and is not sent again. So a slow or hung node holds a request at
most REQUEST_SECONDS, and the engine answers with what it has (a path beside
the search is cut, and work says so) or ClusterTimeoutError (503).
"""

from __future__ import annotations

from search.budget import LATE_SECONDS, MATCH_SECONDS
from search.engine import IndexMissingError

REQUEST_SECONDS = 1.0  # a whole answer, every call to the cluster included
# The search itself may use what matching may in the embedded engine; OpenSearch stops collecting at
# SHARD_SECONDS and answers with what its shards found then (timed_out), before the client gives up.
SEARCH_SECONDS = MATCH_SECONDS + LATE_SECONDS
SHARD_SECONDS = MATCH_SECONDS


class ClusterUnavailableError(IndexMissingError):
    """The cluster cannot be reached or answered with an error."""


class ClusterTimeoutError(ClusterUnavailableError):
    """The cluster did not answer within the request's deadline."""


class Deadline:
    """One request's deadline: REQUEST_SECONDS from when it began, by the engine's clock."""

    def __init__(self, clock, seconds: float = REQUEST_SECONDS) -> None:
        self.clock = clock
        self.seconds = seconds
        self.started = clock()

    def left(self, within: float | None = None) -> float:
        """Return the seconds left (within: of the first `within` seconds of the request only)."""
        end = self.seconds if within is None else min(within, self.seconds)
        return self.started + end - self.clock()

    def passed(self) -> bool:
        """Tell whether the request's time is up."""
        return self.left() <= 0


class ClusterCaller:
    """Send one request's calls to the cluster, each within the time the request has left."""

    def __init__(self, client, url: str, alias: str) -> None:
        self.client = client
        self.url = url
        self.alias = alias
        self.nodes = max(1, len([part for part in url.split(",") if part.strip()]))

    def call(self, deadline: Deadline, method, within: float | None = None, **kwargs):
        """Call a client method with the time left as its request_timeout; tried once on each node at most.

        :raises ClusterTimeoutError: when no time is left or the call used it up.
        :raises ClusterUnavailableError: when no node could be reached, or the cluster failed.
        :raises IndexMissingError: when the alias names no index.
        """
        from opensearchpy.exceptions import ConnectionError as Unreachable, ConnectionTimeout

        for _ in range(self.nodes):
            left = deadline.left(within)
            if left <= 0:
                raise self._late(deadline)
            try:
                return self._checked(method, request_timeout=left, **kwargs)
            except ConnectionTimeout:
                raise self._late(deadline) from None
            except Unreachable:
                continue  # the client has left that node aside: the next one, while time is left
        raise ClusterUnavailableError(f"cannot reach the OpenSearch cluster at {self.url}")

    def _late(self, deadline: Deadline) -> ClusterTimeoutError:
        return ClusterTimeoutError(f"the OpenSearch cluster at {self.url} did not answer within "
                                   f"{deadline.seconds:g} s")

    def _checked(self, method, **kwargs):
        """Call the client; a 404 for the index and a failing cluster become our errors."""
        from opensearchpy.exceptions import NotFoundError, TransportError

        try:
            return method(**kwargs)
        except NotFoundError as exc:
            if missing_index(exc):
                raise IndexMissingError(f"no index {self.alias} in the OpenSearch cluster at {self.url}") from None
            raise
        except TransportError as exc:
            if isinstance(exc.status_code, int) and exc.status_code >= 500:
                raise ClusterUnavailableError(f"the OpenSearch cluster at {self.url} failed: {exc.error}") from None
            raise


def missing_index(exc) -> bool:
    """Tell whether a 404 is an index (or alias) missing, not a document."""
    info = exc.info if isinstance(exc.info, dict) else {}
    kind = (info.get("error") or {}).get("type") if isinstance(info.get("error"), dict) else exc.error
    return kind in ("index_not_found_exception", "alias_missing_exception") or "no such index" in str(exc)
