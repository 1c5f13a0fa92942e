"""A real Hugging Face mirror server for the tests: olah, serving local git repositories under Hub ids.

olah's offline mode answers the Hub's HTTP API (repository info, file listings, ``resolve`` downloads, refs)
from ``<mirrors>/models/<org>/<name>`` git repositories and never contacts huggingface.co, as a mirror behind a
firewall does; huggingface_hub reaches it through ``HF_ENDPOINT``. Each repository's commits are its revisions.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OLAH = Path(sys.executable).parent / "olah-cli"  # the test extra's olah
STARTUP_TIMEOUT_S = 60
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "tests",
    "GIT_AUTHOR_EMAIL": "tests@localhost",
    "GIT_COMMITTER_NAME": "tests",
    "GIT_COMMITTER_EMAIL": "tests@localhost",
}


def repo_folder(mirrors: Path, repo_id: str) -> Path:
    """Where olah looks for the model repository ``repo_id``."""
    return mirrors / "models" / repo_id


def commit(folder: Path, message: str, tag: str | None = None) -> str:
    """Commit everything in ``folder`` (a git repository from the first call on) and return the commit's sha."""

    def git(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **_GIT_IDENTITY}
        return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True, env=env)

    if not (folder / ".git").exists():
        git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    git("commit", "--quiet", "--message", message)
    if tag:
        git("tag", tag)
    return git("rev-parse", "HEAD").stdout.strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def olah_mirror(mirrors: Path, work: Path, denied: tuple[str, ...] = ()) -> Iterator[str]:
    """Serve the repositories under ``mirrors`` on a free loopback port; yields the endpoint (HF_ENDPOINT's
    value). ``denied``: repository patterns the mirror refuses, as it does a repository it may not serve.
    Startup waits at most STARTUP_TIMEOUT_S; the server is killed on exit."""
    port = _free_port()
    rules = [{"repo": "*", "allow": True}, {"repo": "*/*", "allow": True}]
    rules += [{"repo": pattern, "allow": False} for pattern in denied]  # the last matching rule wins
    proxy = ", ".join("{" + f'repo = "{r["repo"]}", allow = {str(r["allow"]).lower()}' + "}" for r in rules)
    config = work / "olah.toml"
    work.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nmirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\nrepos-path = "{work / "cache"}"\nmirrors-path = ["{mirrors}"]\n'
        f"[accessibility]\noffline = true\nproxy = [{proxy}]\n"
    )
    endpoint = f"http://127.0.0.1:{port}"
    with open(work / "olah.out", "wb") as log:
        server = subprocess.Popen(
            [str(OLAH), "--config", str(config), "--log-path", str(work / "logs")],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"olah exited ({server.returncode}): {(work / 'olah.out').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{endpoint}/api/models/none/none", timeout=2)
            except urllib.error.HTTPError:  # any HTTP answer: the server is up
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"olah did not answer on {endpoint} within {STARTUP_TIMEOUT_S} s") from None
                time.sleep(0.2)
            else:
                break
        yield endpoint
    finally:
        server.kill()
        server.wait(timeout=10)
