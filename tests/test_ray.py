"""The Ray executor (issue 13): the same site as in-process builds, a real two-node cluster on
loopback, a worker killed mid-build, and the errors (unreachable cluster, a job that raises,
Ray not installed).

A small article stands in for the example site (whose cold build takes minutes on 2 cores):
feature visualizations, a circuit (weights, then follow-up rounds) and a tuning sweep, plus the
unit pages they imply; about 10 s per build here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from distillgen.cli import main
from tests.conftest import write

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed (pip install 'distillgen[ray]'; make test installs it)",
    ),
]

SMALL = """
---
title: Small
model: shapes
featurevis: {steps: 8, size: 32}
---

Units of the second layer.

```{featurevis} conv2:0-5
Six units.
```

```{circuit} mixed3:0
:inputs: conv2
:top: 3
A circuit.
```

```{tuning} conv2:0
:stimulus: line
:range: 0 180 6
Tuning.
```
"""

# Long enough tasks (a few seconds each) to kill a worker while one runs.
SLOW = """
---
title: Slow
model: shapes
featurevis: {steps: 300, size: 32}
---

```{featurevis} conv2:0-3
Four units.
```
"""

BIN = Path(sys.executable).parent
# Clusters started by `ray start` here need no token (a local runtime may have made one).
NO_AUTH = {"RAY_AUTH_MODE": "disabled"}


def build(src: Path, out: Path, cache: Path, *extra: str):
    return CliRunner().invoke(
        main, ["build", str(src), "-o", str(out), "--cache-dir", str(cache), *extra], catch_exceptions=False
    )


def site(root: Path, text: str) -> Path:
    return write(root / "src" / "article.md", text).parent


def figures(out: Path) -> dict[str, bytes]:
    """Every figure file of the built site, by path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def records(out: Path) -> list[dict]:
    return json.loads((out / "article" / "figures.json").read_text())["figures"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> dict[str, Path]:
    """The reference builds: SMALL and SLOW built in-process, from empty caches, on one torch
    thread as Ray's tasks are (oneDNN's sums, and so the last bits of an image, depend on the
    thread count: on other thread counts the images may differ in a pixel's value or two)."""
    outs = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, text in (("small", SMALL), ("slow", SLOW)):
            root = tmp_path_factory.mktemp(f"in-process-{name}")
            result = build(site(root, text), root / "out", root / "cache")
            assert result.exit_code == 0, result.output
            outs[name] = root / "out"
    finally:
        torch.set_num_threads(threads)
    return outs


def assert_same_site(out: Path, reference: Path, at_least: int = 20) -> None:
    """Same figures.json records (but for where and when) and identical PNG bytes."""
    ours, theirs = records(out), records(reference)
    assert [r["key"] for r in ours] == [r["key"] for r in theirs]
    assert [r["result"] for r in ours] == [r["result"] for r in theirs]
    assert figures(out) == figures(reference)
    assert len(figures(out)) >= at_least


# -- a local runtime -------------------------------------------------------------------------
def test_a_local_ray_build_equals_the_in_process_build(tmp_path, in_process):
    result = build(site(tmp_path, SMALL), tmp_path / "out", tmp_path / "cache", "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert_same_site(tmp_path / "out", in_process["small"])
    nodes = {record["node"]["id"] for record in records(tmp_path / "out")}
    assert len(nodes) == 1 and all(nodes)
    assert all(record["node"]["host"] for record in records(in_process["small"]))
    # one bar per compute round, counting jobs
    assert "figure jobs on Ray" in result.stderr


def test_a_job_that_raises_on_a_worker_is_the_authors_error(tmp_path, cluster):
    """An author's model travels to the worker as bytes (no shared filesystem) and its error
    comes back as in-process builds report it: path:line, the figure, the exception. (On the
    module's cluster: a local runtime's start is the local test's.)"""
    src = tmp_path / "src"
    write(
        src / "net.py",
        """
        from torch import nn

        class Net(nn.Module):
            input_size = 32

            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3)

            def forward(self, x):
                if x.requires_grad:  # planning runs it without gradients; feature vis with
                    raise ValueError("this net refuses gradients")
                return self.conv(x)

        def make():
            return Net()
        """,
    )
    write(
        src / "article.md",
        """
        ---
        title: Refuses
        model: net.py:make
        ---

        ```{featurevis} conv:0
        :steps: 4
        Refused.
        ```
        """,
    )
    result = build(src, tmp_path / "out", tmp_path / "cache-in-process")
    assert result.exit_code == 1, result.output
    on_ray = launch(
        src, tmp_path / "out", tmp_path / "cache-ray", "--executor", "ray", "--ray-address", cluster.address
    )
    _, stderr = on_ray.communicate(timeout=300)
    assert on_ray.returncode == 1, stderr
    messages = [
        next(line for line in text.splitlines() if ": error: " in line) for text in (result.stderr, stderr)
    ]
    assert messages[0] == messages[1]
    assert messages[1].startswith(f"{src / 'article.md'}:6: error: computing ")
    assert "featurevis of 1 unit failed: ValueError: this net refuses gradients" in messages[1]


def test_an_authors_model_and_weights_travel_to_the_workers(tmp_path, cluster):
    """`model.py:factory@weights.pth` with no shared filesystem: the files' bytes go through
    the object store, and the worker's model has the author's weights (same checksum, same
    images as in-process on one thread)."""
    src = tmp_path / "src"
    write(
        src / "net.py",
        """
        from collections import OrderedDict

        from torch import nn

        def make():
            net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), relu=nn.ReLU()))
            net.input_size = 32
            return net
        """,
    )
    torch.manual_seed(7)  # weights unlike the factory's initial ones
    torch.save({"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4)}, src / "w.pth")
    write(
        src / "article.md",
        "---\ntitle: Own\nmodel: net.py:make@w.pth\n---\n\n```{featurevis} relu:0-1\n:steps: 8\n:size: 32\nMine.\n```\n",
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert build(src, tmp_path / "ref", tmp_path / "ref-cache").exit_code == 0
    finally:
        torch.set_num_threads(threads)
    on_ray = launch(
        src, tmp_path / "out", tmp_path / "cache", "--executor", "ray", "--ray-address", cluster.address
    )
    _, stderr = on_ray.communicate(timeout=300)
    assert on_ray.returncode == 0, stderr
    assert_same_site(tmp_path / "out", tmp_path / "ref", at_least=2)
    assert {r["model"]["checksum"] for r in records(tmp_path / "out")} == {
        r["model"]["checksum"] for r in records(tmp_path / "ref")
    }


def test_an_unreachable_cluster_is_an_error_naming_it(tmp_path):
    src = site(tmp_path, "---\ntitle: Plain\n---\n\nNo figures yet.\n")
    assert build(src, tmp_path / "out", tmp_path / "cache").exit_code == 0
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    site(tmp_path, SMALL)
    address = f"127.0.0.1:{free_port()}"  # nobody listens there
    start = time.monotonic()
    result = build(src, tmp_path / "out", tmp_path / "cache", "--executor", "ray", "--ray-address", address)
    assert result.exit_code == 1
    assert f"error: cannot reach the Ray cluster at {address}: Connection refused" in result.stderr
    assert time.monotonic() - start < 30  # Ray alone would retry for minutes
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before


def test_without_ray_installed_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = build(site(tmp_path, SMALL), tmp_path / "out", tmp_path / "cache", "--executor", "ray")
    assert result.exit_code == 1
    assert "error: --executor ray needs Ray: install distillgen[ray]" in result.stderr


def test_ctrl_c_cancels_the_tasks_and_leaves_output_and_cache_intact(tmp_path):
    src = site(tmp_path, "---\ntitle: Plain\n---\n\nNo figures yet.\n")
    assert build(src, tmp_path / "out", tmp_path / "cache").exit_code == 0
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    site(tmp_path, SLOW)
    process = launch(src, tmp_path / "out", tmp_path / "cache", "--executor", "ray")
    deadline = time.monotonic() + 120
    while process.poll() is None and not tasks_running(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, "the build ended before a task ran"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted; the cache keeps what was computed" in stderr
    assert "Traceback" not in stderr
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out-")]  # no staging left


def tasks_running(session: int) -> bool:
    """Whether a Ray task runs in `session`: the build's own local runtime (a task process
    left by an earlier test, or another test's, must not count)."""
    return any(title.startswith(b"ray::_task") and sid == session for _, title, sid in processes())


def processes():
    """(pid, process title, session) of this machine's processes."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            yield int(entry.name), title, os.getsid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue


# -- a two-node cluster on loopback ----------------------------------------------------------
@dataclass
class Cluster:
    address: str
    sessions: list[int]  # each node's session (and process group): its daemons and workers


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node on 127.0.0.1, one CPU each. Each `ray start` runs in a session
    of its own, whose processes are stopped by their process group at the end."""
    port = free_port()
    env = {**os.environ, **NO_AUTH}
    common = ["--num-cpus", "1", "--object-store-memory", str(80 * 1024**2), "--disable-usage-stats"]
    common += ["--node-ip-address", "127.0.0.1"]
    starts = [
        ["--head", "--port", str(port), "--include-dashboard=false"],
        ["--address", f"127.0.0.1:{port}"],
    ]
    cluster = Cluster(f"127.0.0.1:{port}", [])
    try:
        for start in starts:
            process = subprocess.Popen(
                [str(BIN / "ray"), "start", *start, *common],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its daemons keep this process group
            )
            cluster.sessions.append(process.pid)
            output, _ = process.communicate(timeout=120)
            assert process.returncode == 0, output
        yield cluster
    finally:
        stop(cluster.sessions)


def stop(groups: list[int]) -> None:
    """SIGTERM each node's process group, SIGKILL what is left after a few seconds."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        live = [group for group in groups if _signal(group, sig)]
        deadline = time.monotonic() + wait
        while live and time.monotonic() < deadline:
            time.sleep(0.2)
            live = [group for group in live if _signal(group, 0)]
        if not live:
            return


def _signal(group: int, sig: int) -> bool:
    """False when the group has no process left."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True


def running_task(cluster: Cluster) -> int | None:
    """The PID of a worker process of the cluster that is running one of our tasks."""
    for pid, title, session in processes():
        if title.startswith(b"ray::_task") and session in cluster.sessions:
            return pid
    return None


def launch(src: Path, out: Path, cache: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """A build in a process of its own, like a user's: Ray's settings (the auth mode among
    them) are fixed per process, and a local runtime of another test has set them here."""
    command = [str(BIN / "distillgen"), "build", str(src), "-o", str(out), "--cache-dir", str(cache), *extra]
    return subprocess.Popen(
        command,
        env={**os.environ, **NO_AUTH, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal: a test run in the background of a shell inherits SIGINT
        # ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        start_new_session=True,  # its runtime's processes are told apart by session
    )


def test_a_cluster_build_spreads_over_both_nodes(tmp_path, in_process, cluster):
    src = site(tmp_path, SMALL)
    # RAY_ADDRESS is the default of --ray-address
    process = launch(
        src, tmp_path / "out", tmp_path / "cache", "--executor", "ray", env={"RAY_ADDRESS": cluster.address}
    )
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert_same_site(tmp_path / "out", in_process["small"])
    assert len({record["node"]["id"] for record in records(tmp_path / "out")}) == 2


def test_a_worker_killed_mid_build_is_retried(tmp_path, in_process, cluster):
    src = site(tmp_path, SLOW)
    extra = ("--executor", "ray", "--ray-address", cluster.address)
    process = launch(src, tmp_path / "out", tmp_path / "cache", *extra)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        killed = running_task(cluster)
        if killed is None:
            time.sleep(0.1)
    assert killed is not None, "no task ran long enough to be killed"
    os.kill(killed, signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert_same_site(tmp_path / "out", in_process["slow"])
