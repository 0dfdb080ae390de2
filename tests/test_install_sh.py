"""install.sh end to end: the real script under ``sh`` against a release mirror on 127.0.0.1.

The mirror serves a fake artifact (a tiny sh script named like the real binary) and its
SHA256SUMS; with ``CODETETHER_BINARY`` set, one test installs the real built binary too.
Every run gets its own TMPDIR so "nothing left behind" is checkable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.release_server import ReleaseServer, fake_artifact, write_sums

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SH = ROOT / "install.sh"
PLATFORM = "linux-x86_64"
# read now: the autouse isolated_env fixture clears CODETETHER_* before each test
BINARY = os.environ.get("CODETETHER_BINARY", "")


@pytest.fixture
def mirror(tmp_path):
    directory = tmp_path / "mirror"
    directory.mkdir()
    return directory


def add_artifact(directory: Path, version: str, platform: str = PLATFORM) -> Path:
    path = directory / f"codetether-{version}-{platform}"
    path.write_text(fake_artifact(version))
    path.chmod(0o755)
    return path


def fake_uname(tmp_path: Path, system: str, machine: str) -> Path:
    """A directory with a ``uname`` that reports another platform, to put first on PATH."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "uname"
    script.write_text(f'#!/bin/sh\ncase "$1" in -s) echo {system};; -m) echo {machine};; '
                      f'*) echo {system};; esac\n')
    script.chmod(0o755)
    return bindir


def install(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
            path_first: Path | None = None) -> subprocess.CompletedProcess:
    tmpdir = tmp_path / "installer-tmp"
    tmpdir.mkdir(exist_ok=True)
    full_env = dict(os.environ, TMPDIR=str(tmpdir))
    if path_first:
        full_env["PATH"] = f"{path_first}{os.pathsep}{full_env['PATH']}"
    full_env.update(env or {})
    return subprocess.run(["sh", str(INSTALL_SH), *args], capture_output=True, text=True,
                          env=full_env, timeout=120, stdin=subprocess.DEVNULL)


def left_in_tmp(tmp_path: Path) -> list[str]:
    return sorted(os.listdir(tmp_path / "installer-tmp"))


def test_good_install_to_prefix_and_run(tmp_path, mirror):
    artifact = add_artifact(mirror, "1.2.3")
    write_sums(mirror)
    prefix = tmp_path / "prefix"
    with ReleaseServer(mirror) as srv:
        proc = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url,
                       env={"CODETETHER_PLATFORM": PLATFORM, "PATH": os.environ["PATH"]})
        assert srv.requests == ["/SHA256SUMS", f"/{artifact.name}"]
    assert proc.returncode == 0, proc.stderr
    installed = prefix / "bin" / "codetether"
    assert installed.read_bytes() == artifact.read_bytes()
    assert os.access(installed, os.X_OK)
    assert sorted(os.listdir(prefix / "bin")) == ["codetether"]  # no staging file left
    assert left_in_tmp(tmp_path) == []
    assert f"installed {artifact.name} as {installed}" in proc.stdout
    assert "codetether 1.2.3" in proc.stdout  # the installer ran it once
    assert f'export PATH="{prefix / "bin"}:$PATH"' in proc.stdout  # not on PATH: the hint
    run = subprocess.run([str(installed), "run", "hello world"], capture_output=True, text=True)
    assert run.stdout == "fake-codetether 1.2.3 [run] [hello world]\n"


def test_release_url_from_env_and_default_prefix(tmp_path, mirror):
    add_artifact(mirror, "1.2.3")
    write_sums(mirror)
    with ReleaseServer(mirror) as srv:
        proc = install(tmp_path, env={"CODETETHER_RELEASE_URL": srv.url + "/",
                                      "CODETETHER_PLATFORM": PLATFORM})
    assert proc.returncode == 0, proc.stderr
    assert (Path(os.environ["HOME"]) / ".local" / "bin" / "codetether").exists()


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, mirror):
    artifact = add_artifact(mirror, "1.2.3")
    write_sums(mirror, corrupt=artifact.name)
    prefix = tmp_path / "prefix"
    with ReleaseServer(mirror) as srv:
        proc = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url,
                       env={"CODETETHER_PLATFORM": PLATFORM})
    assert proc.returncode == 1
    assert "checksum mismatch" in proc.stderr and "nothing installed" in proc.stderr
    assert not prefix.exists()
    assert left_in_tmp(tmp_path) == []


def test_detects_platform_from_uname(tmp_path, mirror):
    add_artifact(mirror, "1.2.3", "linux-x86_64")
    arm = add_artifact(mirror, "1.2.3", "linux-arm64")
    write_sums(mirror)
    prefix = tmp_path / "prefix"
    with ReleaseServer(mirror) as srv:
        proc = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url,
                       path_first=fake_uname(tmp_path, "Linux", "aarch64"))
    assert proc.returncode == 0, proc.stderr
    assert "platform linux-arm64" in proc.stdout
    assert (prefix / "bin" / "codetether").read_bytes() == arm.read_bytes()


@pytest.mark.parametrize("system,machine,message", [
    ("Plan9", "x86_64", "unsupported operating system 'Plan9'"),
    ("Linux", "mips64", "unsupported architecture 'mips64'"),
    ("MINGW64_NT-10.0", "x86_64", "use install.ps1"),
])
def test_unknown_platform_is_refused(tmp_path, mirror, system, machine, message):
    add_artifact(mirror, "1.2.3")
    write_sums(mirror)
    prefix = tmp_path / "prefix"
    with ReleaseServer(mirror) as srv:
        proc = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url,
                       path_first=fake_uname(tmp_path, system, machine))
        assert srv.requests == []
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not prefix.exists()


def test_no_build_for_this_platform(tmp_path, mirror):
    add_artifact(mirror, "1.2.3", "linux-x86_64")
    write_sums(mirror)
    with ReleaseServer(mirror) as srv:
        proc = install(tmp_path, "--prefix", str(tmp_path / "p"), "--base-url", srv.url,
                       env={"CODETETHER_PLATFORM": "darwin-arm64"})
    assert proc.returncode == 1
    assert f"no codetether build for darwin-arm64 at {srv.url}" in proc.stderr


def test_version_pinning(tmp_path, mirror):
    add_artifact(mirror, "0.9.0")
    add_artifact(mirror, "1.0.0")
    write_sums(mirror)
    prefix = tmp_path / "prefix"
    env = {"CODETETHER_PLATFORM": PLATFORM}
    with ReleaseServer(mirror) as srv:
        ambiguous = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url, env=env)
        pinned = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url,
                         "--version", "0.9.0", env=env)
        missing = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url,
                          "--version=v2.0.0", env=env)
    assert ambiguous.returncode == 1 and "pass --version X" in ambiguous.stderr
    assert pinned.returncode == 0, pinned.stderr
    out = subprocess.run([str(prefix / "bin" / "codetether"), "--version"],
                         capture_output=True, text=True)
    assert out.stdout == "codetether 0.9.0\n"
    assert missing.returncode == 1 and "no codetether 2.0.0 for linux-x86_64" in missing.stderr


def test_no_functiongemma_is_accepted(tmp_path, mirror):
    add_artifact(mirror, "1.2.3")
    write_sums(mirror)
    with ReleaseServer(mirror) as srv:
        with_flag = install(tmp_path, "--prefix", str(tmp_path / "a"), "--base-url", srv.url,
                            "--no-functiongemma", env={"CODETETHER_PLATFORM": PLATFORM})
        without = install(tmp_path, "--prefix", str(tmp_path / "b"), "--base-url", srv.url,
                          env={"CODETETHER_PLATFORM": PLATFORM})
    assert with_flag.returncode == 0, with_flag.stderr
    assert "FunctionGemma router model: skipped (--no-functiongemma)" in with_flag.stdout
    assert without.returncode == 0 and "FunctionGemma" in without.stdout


def test_uninstall_removes_binary_and_cache(tmp_path, mirror):
    add_artifact(mirror, "1.2.3")
    write_sums(mirror)
    prefix = tmp_path / "prefix"
    cache = tmp_path / "cache"
    unpacked = cache / "codetether" / ("ab" * 32)
    unpacked.mkdir(parents=True)
    (unpacked / "codetether").write_text("")
    env = {"CODETETHER_PLATFORM": PLATFORM, "XDG_CACHE_HOME": str(cache)}
    with ReleaseServer(mirror) as srv:
        assert install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url,
                       env=env).returncode == 0
    proc = install(tmp_path, "--uninstall", "--prefix", str(prefix), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (prefix / "bin" / "codetether").exists()
    assert not (cache / "codetether").exists() and cache.exists()
    again = install(tmp_path, "--uninstall", "--prefix", str(prefix), env=env)
    assert again.returncode == 0 and "not installed" in again.stdout


def test_bad_options(tmp_path):
    unknown = install(tmp_path, "--frobnicate")
    assert unknown.returncode == 1 and "unknown option '--frobnicate'" in unknown.stderr
    no_value = install(tmp_path, "--prefix")
    assert no_value.returncode == 1 and "--prefix needs a value" in no_value.stderr
    helped = install(tmp_path, "--help")
    assert helped.returncode == 0 and "--no-functiongemma" in helped.stdout


def test_unreachable_release_leaves_nothing(tmp_path, mirror):
    with ReleaseServer(mirror) as srv:  # empty mirror: no SHA256SUMS
        proc = install(tmp_path, "--prefix", str(tmp_path / "p"), "--base-url", srv.url,
                       env={"CODETETHER_PLATFORM": PLATFORM})
    assert proc.returncode == 1
    assert f"could not download {srv.url}/SHA256SUMS" in proc.stderr
    assert not (tmp_path / "p").exists() and left_in_tmp(tmp_path) == []


def test_installs_the_real_binary(tmp_path, mirror):
    binary = BINARY
    if not binary or not Path(binary).is_file():
        pytest.skip("set CODETETHER_BINARY to a built binary (make binary) to install it")
    name = Path(binary).resolve().name  # dist/codetether is a symlink to the artifact
    shutil.copy2(binary, mirror / name)
    write_sums(mirror)
    platform = name.split("-", 2)[2]
    prefix = tmp_path / "prefix"
    env = {"CODETETHER_PLATFORM": platform, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with ReleaseServer(mirror) as srv:
        proc = install(tmp_path, "--prefix", str(prefix), "--base-url", srv.url, env=env)
    assert proc.returncode == 0, proc.stderr
    version = name.split("-")[1]
    assert f"codetether {version}" in proc.stdout  # it ran (and unpacked) once
    installed = prefix / "bin" / "codetether"
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == \
        hashlib.sha256(Path(binary).read_bytes()).hexdigest()


def test_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for script in (INSTALL_SH, ROOT / "scripts" / "sfx_stub.sh"):
        proc = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stdout


def test_install_ps1_parses():
    pwsh = shutil.which("pwsh")
    if not pwsh:
        pytest.skip("pwsh (PowerShell) is not installed; install.ps1 not syntax-checked")
    check = ("$errs = $null; [System.Management.Automation.Language.Parser]::ParseFile("
             f"'{ROOT / 'install.ps1'}', [ref]$null, [ref]$errs) | Out-Null; "
             "if ($errs) { $errs | ForEach-Object { $_.ToString() }; exit 1 }")
    proc = subprocess.run([pwsh, "-NoProfile", "-Command", check], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
