"""A local OpenSearch cluster: one node per JVM on loopback ports, from the launcher in cluster/.

A cluster lives in one folder: `nodes.json` (each node's pid, ports and command line) and one folder per
node (`n0/`, `n1/`, … holding its data and `node.log`). Ports are chosen once, when the folder is new, so a
stopped cluster starts again at the same URL; a node is stopped by stopping its process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

LAUNCHER_DIR = Path(__file__).resolve().parents[1] / "cluster"
LAUNCHER_CLASS = "org.newsearch.cluster.NodeLauncher"
CLUSTER_NAME = "newsearch-local"
NODES_FILE = "nodes.json"
BUILT_STAMP = "launcher.built"  # in cluster/target, touched after each successful build
START_SECONDS = 180.0  # three nodes take ~8 s on an idle 2-core machine; a busy one, many times that
STOP_SECONDS = 30.0
# Serial GC: a 512 MB heap needs no parallel collector, and the threads would compete on small machines.
# Netty's processor count is left to the node, which sets it once per JVM anyway.
JAVA_OPTIONS = ("-XX:+UseSerialGC", "-Dopensearch.set.netty.runtime.available.processors=false")
# The quick JIT compiles only with C1: three nodes start in 9 s instead of 19 s here (load ~13 on 2 cores),
# and then index and search slower, so a benchmark leaves it off
QUICK_OPTIONS = ("-XX:TieredStopAtLevel=1",)


class ClusterError(Exception):
    """A local cluster cannot be built, started, reached or stopped; the message is one line."""


def launcher_classpath() -> str:
    """Return the launcher's classpath (Java expands the `lib/*` wildcard itself)."""
    target = LAUNCHER_DIR / "target"
    return f"{target / 'classes'}{os.pathsep}{target / 'lib' / '*'}"


def require_tool(name: str, package: str) -> str:
    """Return the path of a program on PATH; raise a ClusterError saying what to install if missing."""
    path = shutil.which(name)
    if path is None:
        raise ClusterError(f"`{name}` is not on PATH: the local cluster needs Java 17 and Maven 3 "
                           f"(e.g. apt-get install {package})")
    return path


def launcher_is_built() -> bool:
    """Tell whether the launcher was built after its pom.xml and sources last changed."""
    built = LAUNCHER_DIR / "target" / BUILT_STAMP
    if not built.is_file():
        return False
    sources = [LAUNCHER_DIR / "pom.xml", *(LAUNCHER_DIR / "src").rglob("*")]
    return built.stat().st_mtime >= max(p.stat().st_mtime for p in sources)


def build_launcher() -> bool:
    """Build the launcher with Maven unless it is up to date; return whether it was built."""
    require_tool("java", "openjdk-17-jre-headless")
    if launcher_is_built():
        return False
    mvn = require_tool("mvn", "maven")
    # copy-dependencies never deletes: a jar left from an older pom would sit on the classpath beside its successor
    (LAUNCHER_DIR / "target" / BUILT_STAMP).unlink(missing_ok=True)
    shutil.rmtree(LAUNCHER_DIR / "target" / "lib", ignore_errors=True)
    done = subprocess.run([mvn, "-q", "-B", "package"], cwd=LAUNCHER_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).splitlines()
        first = next((line for line in lines if "ERROR" in line), lines[-1] if lines else "no output")
        raise ClusterError(f"Maven could not build the launcher ({first.strip()}); "
                           f"run `mvn -f {LAUNCHER_DIR / 'pom.xml'} package` to see why")
    # Maven leaves unchanged classes alone, so their times say nothing about the build: a stamp does
    (LAUNCHER_DIR / "target" / BUILT_STAMP).touch()
    return True


def free_ports(count: int) -> list[int]:
    """Return `count` distinct loopback ports that are free now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def plan_nodes(directory: Path, count: int, heap: str, quick: bool) -> list[dict]:
    """Return the nodes of a new cluster in `directory`: names, ports and the command that starts each."""
    ports = free_ports(2 * count)
    names = [f"n{i}" for i in range(count)]
    if count == 1:
        discovery = ["discovery.type=single-node"]
    else:
        seeds = ",".join(f"127.0.0.1:{ports[count + i]}" for i in range(count))
        discovery = [f"discovery.seed_hosts={seeds}", f"cluster.initial_cluster_manager_nodes={','.join(names)}"]
    options = (*JAVA_OPTIONS, *QUICK_OPTIONS) if quick else JAVA_OPTIONS
    nodes = []
    for i, name in enumerate(names):
        home = directory / name
        args = ["java", f"-Xms{min_heap(heap)}", f"-Xmx{heap}", *options, "-cp", launcher_classpath(),
                LAUNCHER_CLASS, f"path.home={home}", f"cluster.name={CLUSTER_NAME}", f"node.name={name}",
                f"http.port={ports[i]}", f"transport.port={ports[count + i]}", *discovery]
        nodes.append({"name": name, "pid": None, "http_port": ports[i], "transport_port": ports[count + i],
                      "home": str(home), "log": str(home / "node.log"), "args": args})
    return nodes


def min_heap(heap: str) -> str:
    """Return the starting heap: half the maximum, at most 256m, so idle nodes stay small."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    size = int(heap[:-1]) * units[heap[-1].lower()] if heap[-1].lower() in units else int(heap)
    return f"{min(size // 2, 256 << 20) >> 20}m"


def spawn_node(node: dict) -> int:
    """Start one node's JVM in a session of its own, output to its log; return its pid."""
    Path(node["home"]).mkdir(parents=True, exist_ok=True)
    java = require_tool("java", "openjdk-17-jre-headless")
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, node["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
               (os.POSIX_SPAWN_DUP2, 1, 2)]
    # posix_spawn, not Popen: the node outlives this process, and a Popen object of a running child warns when collected
    return os.posix_spawn(java, node["args"], dict(os.environ), file_actions=actions, setsid=True)


def is_alive(pid: int | None) -> bool:
    """Tell whether a process runs (reaping it first if it is a child of ours that has exited)."""
    if not pid:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def is_node_process(node: dict) -> bool:
    """Tell whether the node's recorded pid is still that node (and not a reused pid)."""
    if not is_alive(node.get("pid")):
        return False
    cmdline = Path(f"/proc/{node['pid']}/cmdline")
    return not cmdline.exists() or f"path.home={node['home']}".encode() in cmdline.read_bytes()


def read_nodes(directory: Path) -> dict | None:
    """Return the cluster recorded in `directory`, or None if there is none."""
    path = Path(directory) / NODES_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_nodes(directory: Path, cluster: dict) -> None:
    """Record the cluster in `directory`/nodes.json, replacing it atomically."""
    path = Path(directory) / NODES_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(cluster, indent=2), encoding="utf-8")
    os.replace(temporary, path)


def cluster_health(url: str, timeout: float = 5.0) -> dict:
    """Return `_cluster/health` of the cluster at `url`; raise a ClusterError if it does not answer."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_cluster/health", timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ClusterError(f"the OpenSearch cluster at {url} answers HTTP {exc.code} to a health check") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ClusterError(f"no OpenSearch cluster answers at {url}: {reason}") from None


def wait_for_health(cluster: dict, timeout: float = START_SECONDS) -> dict:
    """Wait until every node has joined and the cluster is green (yellow will do for one node)."""
    wanted = ("green", "yellow") if len(cluster["nodes"]) == 1 else ("green",)
    deadline = time.monotonic() + timeout
    health: dict = {}
    while time.monotonic() < deadline:
        for node in cluster["nodes"]:
            if not is_alive(node["pid"]):
                raise ClusterError(f"node {node['name']} exited while starting: {last_error(node['log'])}")
        for url in cluster["urls"]:
            try:
                health = cluster_health(url, timeout=2.0)
                break
            except ClusterError:
                continue
        if health.get("number_of_nodes") == len(cluster["nodes"]) and health.get("status") in wanted:
            return health
        time.sleep(0.5)
    raise ClusterError(f"the cluster was not {wanted[0]} with {len(cluster['nodes'])} nodes after {timeout:.0f} s "
                       f"(last health: {health.get('status', 'no answer')}); see the node logs in {cluster['dir']}")


def last_error(log: str) -> str:
    """Return the line of a node log that best says why it stopped."""
    try:
        lines = Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "no log"
    errors = [line for line in lines if "Exception" in line or "ERROR" in line]
    return (errors or lines or ["empty log"])[-1].strip()[:300]


def start_cluster(directory: Path | str, nodes: int = 3, heap: str = "512m", quick: bool = False,
                  timeout: float = START_SECONDS) -> dict:
    """Start the cluster in `directory` (its nodes that are not running), wait for it, return nodes.json's content.

    `heap` and `quick` (C1 JIT only) apply to a new folder; a folder's nodes keep the command they were planned with.

    :raises ClusterError: Java or Maven missing, a build failure, a folder holding a cluster of another
        size, or a node that exits or a cluster that is not healthy in time (its nodes are then stopped).
    """
    directory = Path(directory).resolve()
    build_launcher()
    cluster = read_nodes(directory)
    if cluster is None:
        existing = sorted(p.name for p in directory.glob("n[0-9]*") if p.is_dir())
        if existing and len(existing) != nodes:
            raise ClusterError(f"{directory} holds the data of a {len(existing)}-node cluster; "
                               f"start it with --nodes {len(existing)} or use another --dir")
        directory.mkdir(parents=True, exist_ok=True)
        planned = plan_nodes(directory, nodes, heap, quick)
        cluster = {"cluster_name": CLUSTER_NAME, "dir": str(directory),
                   "url": f"http://127.0.0.1:{planned[0]['http_port']}",
                   "urls": [f"http://127.0.0.1:{n['http_port']}" for n in planned], "nodes": planned}
    elif len(cluster["nodes"]) != nodes:
        raise ClusterError(f"{directory} holds a {len(cluster['nodes'])}-node cluster; "
                           f"start it with --nodes {len(cluster['nodes'])} or use another --dir")
    for node in cluster["nodes"]:
        if not is_node_process(node):
            node["pid"] = spawn_node(node)
    write_nodes(directory, cluster)
    try:
        wait_for_health(cluster, timeout)
    except ClusterError:
        stop_cluster(directory)
        raise
    return cluster


def stop_nodes(nodes: list[dict], timeout: float = STOP_SECONDS) -> int:
    """Stop the nodes' processes (SIGTERM, then SIGKILL after `timeout`); return how many were running."""
    running = [node for node in nodes if is_node_process(node)]
    for node in running:
        os.kill(node["pid"], signal.SIGTERM)  # the launcher's shutdown hook closes the node cleanly
    deadline = time.monotonic() + timeout
    while any(is_alive(node["pid"]) for node in running):
        if time.monotonic() > deadline:
            for node in running:
                if is_alive(node["pid"]):
                    os.kill(node["pid"], signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.1)
    return len(running)


def stop_cluster(directory: Path | str) -> int:
    """Stop every node of the cluster in `directory`; return how many were running.

    nodes.json stays, without pids, so that the next start keeps the same ports and URL.
    """
    directory = Path(directory).resolve()
    cluster = read_nodes(directory)
    if cluster is None:
        raise ClusterError(f"no cluster in {directory} (no {NODES_FILE})")
    stopped = stop_nodes(cluster["nodes"])
    for node in cluster["nodes"]:
        node["pid"] = None
    write_nodes(directory, cluster)
    return stopped
