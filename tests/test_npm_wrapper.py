"""The npm wrapper (scripts/npm) under real ``node`` against a release mirror on 127.0.0.1:
first run downloads, verifies and runs; later runs use the cache; a bad checksum is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from codetether import __version__
from tests.release_server import ReleaseServer, fake_artifact, write_sums

ROOT = Path(__file__).resolve().parent.parent
NPM_DIR = ROOT / "scripts" / "npm"
WRAPPER = NPM_DIR / "bin" / "codetether.js"
PLATFORM = "linux-x86_64"
NAME = f"codetether-{__version__}-{PLATFORM}"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture
def mirror(tmp_path):
    directory = tmp_path / "mirror"
    directory.mkdir()
    artifact = directory / NAME
    artifact.write_text(fake_artifact(__version__))
    return directory


def node(tmp_path: Path, url: str, *args: str, command: list[str] | None = None
         ) -> subprocess.CompletedProcess:
    env = dict(os.environ, CODETETHER_RELEASE_URL=url, CODETETHER_PLATFORM=PLATFORM,
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([*(command or ["node", str(WRAPPER)]), *args], capture_output=True,
                          text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def cached(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "codetether" / "npm" / __version__ / NAME


def test_package_matches_the_project():
    package = json.loads((NPM_DIR / "package.json").read_text())
    assert package["version"] == __version__  # the wrapper downloads its own version
    assert package["bin"] == {"codetether": "bin/codetether.js"}
    assert WRAPPER.read_text().startswith("#!/usr/bin/env node\n")
    assert os.access(WRAPPER, os.X_OK)


def test_first_run_downloads_verifies_and_execs_then_uses_cache(tmp_path, mirror):
    write_sums(mirror)
    with ReleaseServer(mirror) as srv:
        first = node(tmp_path, srv.url, "run", "two words", "--format", "json")
        assert srv.requests == ["/SHA256SUMS", f"/{NAME}"]
        second = node(tmp_path, srv.url, "--version")
        assert srv.requests == ["/SHA256SUMS", f"/{NAME}"]  # nothing fetched the second time
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"fake-codetether {__version__} [run] [two words] [--format] [json]\n"
    assert f"downloading {NAME}" in first.stderr
    assert second.returncode == 0 and second.stdout == f"codetether {__version__}\n"
    assert second.stderr == ""
    binary = cached(tmp_path)
    assert binary.read_bytes() == (mirror / NAME).read_bytes()
    assert os.access(binary, os.X_OK)
    assert sorted(os.listdir(binary.parent)) == [NAME]  # no temp file left


def test_exit_status_is_propagated(tmp_path, mirror):
    write_sums(mirror)
    with ReleaseServer(mirror) as srv:
        proc = node(tmp_path, srv.url, "exit", "7")
    assert proc.returncode == 7


def test_checksum_mismatch_is_refused(tmp_path, mirror):
    write_sums(mirror, corrupt=NAME)
    with ReleaseServer(mirror) as srv:
        proc = node(tmp_path, srv.url, "--version")
    assert proc.returncode == 1
    assert "checksum mismatch" in proc.stderr and "fake-codetether" not in proc.stdout
    assert not cached(tmp_path).exists()
    assert os.listdir(cached(tmp_path).parent) == []  # the partial download is gone


def test_missing_artifact_and_unreachable_mirror(tmp_path, mirror):
    (mirror / "SHA256SUMS").write_text("")
    with ReleaseServer(mirror) as srv:
        unlisted = node(tmp_path, srv.url, "--version")
    assert unlisted.returncode == 1
    assert f"{NAME} is not listed in {srv.url}/SHA256SUMS" in unlisted.stderr
    (mirror / "SHA256SUMS").unlink()
    with ReleaseServer(mirror) as srv:
        absent = node(tmp_path, srv.url, "--version")
    assert absent.returncode == 1 and "HTTP 404" in absent.stderr


def test_installed_package_bin_works(tmp_path, mirror):
    """`npm pack` + `npm install` of the tarball, then the bin link npx would run."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    write_sums(mirror)
    npm_env = dict(os.environ, npm_config_cache=str(tmp_path / "npm-cache"),
                   npm_config_update_notifier="false")
    packed = subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(tmp_path),
                             str(NPM_DIR)], capture_output=True, text=True, env=npm_env,
                            timeout=120)
    assert packed.returncode == 0, packed.stderr
    tarball = tmp_path / packed.stdout.strip().splitlines()[-1]
    prefix = tmp_path / "app"
    installed = subprocess.run(["npm", "install", "--offline", "--no-audit", "--no-fund",
                                "--prefix", str(prefix), str(tarball)], capture_output=True,
                               text=True, env=npm_env, timeout=300)
    assert installed.returncode == 0, installed.stderr
    with ReleaseServer(mirror) as srv:
        proc = node(tmp_path, srv.url, "hi", command=[str(prefix / "node_modules/.bin/codetether")])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"fake-codetether {__version__} [hi]\n"
