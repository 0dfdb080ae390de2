#!/usr/bin/env python3
"""Build the single-file ``codetether`` executable for this platform.

    python scripts/build_binary.py [--out dist] [--onefile] [--compresslevel 6]

Writes ``dist/codetether-<version>-<os>-<arch>`` (and the symlink ``dist/codetether`` to it)
and prints its path; everything else goes to stderr.

Why not PyInstaller's ``--onefile``: it unpacks its whole payload into a temp dir on *every*
start (13-14 ms per MB, over a second with all our dependencies). So we build ``--onedir``
(about 75 ms to start) and wrap that directory in a small POSIX ``sh`` launcher
(``scripts/sfx_stub.sh``) with the directory appended as a tar.gz. The launcher knows the
payload's SHA-256 and execs ``~/.cache/codetether/<sha256>/codetether`` when it exists; only the
first start unpacks (atomically). ``--onefile`` remains for Windows, which has no ``sh``: it
builds PyInstaller's own onefile executable (``.exe`` there).

Steps: install PyInstaller into this interpreter's environment if missing; generate the gRPC
stubs (``scripts/gen_proto.py``) when the project has them, since they are build output; run
``spec/codetether.spec``; check the onedir build answers ``--version``; pack it
reproducibly (sorted, fixed owners and times); write the launcher; check the result answers
``--version`` from a fresh cache dir.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "scripts" / "sfx_stub.sh"
SPEC = ROOT / "spec" / "codetether.spec"
WORK = ROOT / "build" / "pyinstaller"
ONEDIR = WORK / "dist" / "codetether"  # the --onedir output; bench_all.py measures it too
PYINSTALLER_REQ = "pyinstaller>=6.10,<7"
OS_NAMES = {"linux": "linux", "darwin": "darwin", "windows": "windows"}
ARCH_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def version() -> str:
    """The package version, read without importing the package (no side effects)."""
    for line in (ROOT / "codetether" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise SystemExit("build: no __version__ in codetether/__init__.py")


def platform_tag() -> str:
    """``<os>-<arch>`` as install.sh and the npm wrapper spell it (linux-x86_64, darwin-arm64)."""
    system, machine = platform.system().lower(), platform.machine().lower()
    if system not in OS_NAMES or machine not in ARCH_NAMES:
        raise SystemExit(f"build: unsupported platform {system}/{machine}")
    return f"{OS_NAMES[system]}-{ARCH_NAMES[machine]}"


def artifact_name(onefile: bool) -> str:
    name = f"codetether-{version()}-{platform_tag()}"
    return name + ".exe" if onefile and platform.system() == "Windows" else name


def ensure_pyinstaller() -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        print(f"build: installing {PYINSTALLER_REQ}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", PYINSTALLER_REQ],
                       check=True)


def generate_stubs() -> None:
    """The gRPC stubs are gitignored build output; a fresh clone must generate them."""
    gen = ROOT / "scripts" / "gen_proto.py"
    if gen.exists():
        subprocess.run([sys.executable, str(gen)], check=True, cwd=ROOT, stdout=sys.stderr)


def run_pyinstaller(onefile: bool) -> None:
    env = dict(os.environ, CODETETHER_ONEFILE="1" if onefile else "0")
    cmd = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--clean",
           "--log-level", "WARN", "--distpath", str(WORK / "dist"),
           "--workpath", str(WORK / "work")]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=sys.stderr)  # stdout: the path


def check_version(exe: Path, env: dict[str, str] | None = None) -> None:
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env,
                         timeout=300)
    expected = f"codetether {version()}"
    if out.returncode != 0 or out.stdout.strip() != expected:
        raise SystemExit(f"build: {exe} --version gave {out.returncode} {out.stdout!r} "
                         f"{out.stderr[-2000:]!r}; expected {expected!r}")


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Same bytes for the same tree: no owners, one fixed time (SOURCE_DATE_EPOCH if set)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    if info.isdir() or info.mode & 0o111:
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def _tree(top: Path) -> list[str]:
    """Every path under ``top`` (symlinks kept as links, not followed), parents first."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            found.append((Path(dirpath) / name).relative_to(top).as_posix())
    return sorted(found)


def pack(onedir: Path, level: int) -> bytes:
    """tar.gz of the onedir's *contents* (``./codetether``, ``./_internal/...``), sorted."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel in _tree(onedir):
            tar.add(onedir / rel, arcname=rel, recursive=False, filter=_normalise)
    return gzip.compress(raw.getvalue(), compresslevel=level, mtime=0)


def stub_for(payload: bytes) -> bytes:
    """The launcher with its placeholders filled; OFFSET is where the payload starts (1-based,
    as ``tail -c +N`` counts), which depends on the stub's own length, hence the loop."""
    template = STUB.read_text()
    text = (template.replace("@VERSION@", version()).replace("@PLATFORM@", platform_tag())
            .replace("@HASH@", hashlib.sha256(payload).hexdigest()))
    offset = 0
    while True:
        stub = text.replace("@OFFSET@", str(offset)).encode()
        if len(stub) + 1 == offset:
            return stub
        offset = len(stub) + 1


def write_sfx(onedir: Path, target: Path, level: int) -> None:
    payload = pack(onedir, level)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(stub_for(payload) + payload)
    tmp.chmod(0o755)
    tmp.replace(target)


def link_latest(target: Path) -> None:
    """``dist/codetether`` -> the artifact just built: one stable path for CI and people
    (``CODETETHER_BINARY=dist/codetether make test``). Not a release file (no dash)."""
    if platform.system() == "Windows":
        return
    link = target.with_name("codetether")
    tmp = target.with_name(".codetether.link.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    tmp.replace(link)


def build(out: Path, onefile: bool, level: int) -> Path:
    ensure_pyinstaller()
    generate_stubs()
    started = time.monotonic()
    run_pyinstaller(onefile)
    out.mkdir(parents=True, exist_ok=True)
    target = out / artifact_name(onefile)
    if onefile:
        exe = WORK / "dist" / ("codetether.exe" if platform.system() == "Windows" else "codetether")
        check_version(exe)
        shutil.copy2(exe, target)
    else:
        check_version(ONEDIR / "codetether")
        write_sfx(ONEDIR, target, level)
        with tempfile.TemporaryDirectory() as cache:  # first start from an empty cache
            check_version(target, env=dict(os.environ, XDG_CACHE_HOME=cache))
    link_latest(target)
    size = target.stat().st_size / 1e6
    print(f"build: {target.name} {size:.1f} MB in {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output directory")
    parser.add_argument("--onefile", action="store_true",
                        help="PyInstaller's own --onefile (the Windows artifact); slow start")
    parser.add_argument("--compresslevel", type=int, default=6, choices=range(1, 10),
                        metavar="1-9", help="gzip level of the payload (default 6)")
    args = parser.parse_args(argv)
    if not args.onefile and platform.system() == "Windows":
        parser.error("Windows has no sh for the launcher: use --onefile")
    print(build(Path(args.out), args.onefile, args.compresslevel))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
