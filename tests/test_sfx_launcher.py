"""The single-file launcher (scripts/sfx_stub.sh + build_binary.write_sfx) on a tiny fake onedir
build, so its behaviour is tested without PyInstaller: unpack once, exec from the cache,
concurrent first starts, a damaged file, a damaged cache, no writable cache."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_build_binary():
    spec = importlib.util.spec_from_file_location("build_binary",
                                                  ROOT / "scripts" / "build_binary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_binary = _load_build_binary()


@pytest.fixture
def sfx(tmp_path) -> Path:
    onedir = tmp_path / "onedir"
    (onedir / "_internal").mkdir(parents=True)
    (onedir / "_internal" / "data.txt").write_text("payload data\n")
    program = onedir / "codetether"
    program.write_text('#!/bin/sh\nhere=$(dirname "$0")\n'
                       'if [ "$1" = exit ]; then exit "$2"; fi\n'
                       'printf "fake from %s:" "$here"; cat "$here/_internal/data.txt"\n'
                       'for a in "$@"; do printf "[%s]" "$a"; done; echo\n')
    program.chmod(0o755)
    target = tmp_path / "codetether-0.0.0-test"
    build_binary.write_sfx(onedir, target, level=6)
    return target


def payload_hash(target: Path) -> str:
    return target.read_text(errors="replace").split("\nh=", 1)[1].split("\n", 1)[0]


def start(target: Path, *args: str, cache: Path | str, tmp: Path | None = None
          ) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    if tmp:
        env["TMPDIR"] = str(tmp)
    return subprocess.run([str(target), *args], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_unpacks_once_then_execs_from_cache(tmp_path, sfx):
    cache = tmp_path / "cache"
    digest = payload_hash(sfx)
    unpacked = cache / "codetether" / digest
    first = start(sfx, "a b", "--flag", cache=cache)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"fake from {unpacked}:payload data\n[a b][--flag]\n"
    assert sorted(os.listdir(cache / "codetether")) == [digest]  # no temp dir left
    (unpacked / "_internal" / "data.txt").write_text("from the cache\n")
    second = start(sfx, cache=cache)
    assert second.stdout == f"fake from {unpacked}:from the cache\n\n"  # not unpacked again
    assert start(sfx, "exit", "5", cache=cache).returncode == 5


def test_payload_hash_is_the_sha256_of_the_appended_bytes(sfx):
    data = sfx.read_bytes()
    digest = payload_hash(sfx)
    offset = int(data.split(b"\no=", 1)[1].split(b"\n", 1)[0])
    assert hashlib.sha256(data[offset - 1:]).hexdigest() == digest


def test_packing_is_reproducible(tmp_path, sfx):
    again = tmp_path / "again"
    build_binary.write_sfx(tmp_path / "onedir", again, level=6)
    assert again.read_bytes() == sfx.read_bytes()


def test_concurrent_first_starts_all_succeed(tmp_path, sfx):
    cache = tmp_path / "cache"
    results: list[subprocess.CompletedProcess] = []
    gate = threading.Barrier(6)

    def one(n: int) -> None:
        gate.wait()
        results.append(start(sfx, str(n), cache=cache))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 6
    assert all(r.returncode == 0 and "payload data" in r.stdout for r in results), results
    digest = payload_hash(sfx)
    assert sorted(os.listdir(cache / "codetether")) == [digest]
    assert sorted(os.listdir(cache / "codetether" / digest)) == ["_internal", "codetether"]


def test_damaged_file_is_refused(tmp_path, sfx):
    data = bytearray(sfx.read_bytes())
    data[-100] ^= 0xFF
    sfx.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    proc = start(sfx, cache=cache)
    assert proc.returncode == 1
    assert proc.stderr == ("codetether: this file is damaged (checksum mismatch); "
                           "download it again\n")
    assert not (cache / "codetether" / payload_hash(sfx)).exists()


def test_damaged_cache_dir_is_replaced(tmp_path, sfx):
    cache = tmp_path / "cache"
    broken = cache / "codetether" / payload_hash(sfx)
    (broken / "_internal").mkdir(parents=True)  # the program itself was deleted by hand
    proc = start(sfx, "x", cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert (broken / "codetether").exists() and "payload data" in proc.stdout


def test_no_writable_cache_runs_from_a_temp_dir(tmp_path, sfx):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start(sfx, "y", cache="/dev/null/cache", tmp=tmp)
    assert proc.returncode == 0, proc.stderr
    assert "payload data" in proc.stdout and "[y]" in proc.stdout
    assert os.listdir(tmp) == []  # removed after the run
