#!/usr/bin/env python3
"""Generate the A2A gRPC stubs from ``proto/*.proto`` into ``codetether/a2a/grpc_gen/``.

    python scripts/gen_proto.py [--out DIR]        (``make proto`` runs this)

The stubs are build output, never committed. We run ``grpc_tools.protoc`` with the include
paths the two wheels ship: ``google/protobuf/*`` inside grpcio-tools (``grpc_tools/_proto``) and
``google/api/*`` inside googleapis-common-protos (site-packages). Then we rewrite the output:

- imports between our modules become package-relative (protoc writes ``import a2a_pb2``);
- our descriptors go into a **private descriptor pool** (``_pool.py``) instead of protobuf's
  default pool. Our files declare ``lf.a2a.v1.*`` and ``a2a.v1.*`` exactly as the A2A spec
  does, and so does a2a-sdk's generated code; two definitions of one symbol in the default
  pool is a hard import error, so without this CodeTether and an a2a-sdk peer (our tests, or
  an application embedding both) could not live in one process. The wire format is unchanged.

Files are generated in a temporary directory and moved into place one by one (atomic
renames), so a concurrent run (two test workers) never exposes a half-written module.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "codetether" / "a2a" / "grpc_gen"

_POOL_ASSIGN = "_descriptor_pool.Default().AddSerializedFile("
_POOL_IMPORT = "from google.protobuf import descriptor_pool as _descriptor_pool\n"
_IMPORT_RE = re.compile(r'^import\s+"([^"]+)";', re.M)

INIT_TEMPLATE = '''"""Generated from proto/*.proto by scripts/gen_proto.py.

Do not edit: run ``make proto``.
"""

PROTO_HASH = "{digest}"
'''

POOL_TEMPLATE = '''"""A private descriptor pool for the generated A2A modules (see gen_proto.py).

Our protos declare the same fully-qualified names as a2a-sdk's; a private pool lets both be
imported in one process. The pool is seeded with the well-known and google.api files our
protos import, copied from the default pool.
"""

import importlib

from google.protobuf import descriptor_pool

DEPENDENCIES = {deps!r}

POOL = descriptor_pool.DescriptorPool()
_added: set = set()


def _add(file_descriptor) -> None:
    if file_descriptor.name in _added:
        return
    for dependency in file_descriptor.dependencies:
        _add(dependency)
    POOL.AddSerializedFile(file_descriptor.serialized_pb)
    _added.add(file_descriptor.name)


for _module in DEPENDENCIES:
    _add(importlib.import_module(_module).DESCRIPTOR)
'''


def include_paths() -> list[str]:
    """proto/, the google/protobuf protos of grpcio-tools and the google/api protos of
    googleapis-common-protos."""
    try:
        import grpc_tools
        from google.api import annotations_pb2
    except ImportError as exc:
        raise SystemExit(f"gen_proto: {exc.name} is missing: pip install grpcio-tools "
                         "googleapis-common-protos (or run `make install`)") from None

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    googleapis = Path(annotations_pb2.__file__).resolve().parents[2]
    if not (googleapis / "google" / "api" / "annotations.proto").exists():
        raise SystemExit(f"gen_proto: google/api/annotations.proto not found under {googleapis}"
                         " (is googleapis-common-protos installed?)")
    return [str(PROTO_DIR), str(well_known), str(googleapis)]


def proto_files() -> list[Path]:
    files = sorted(PROTO_DIR.glob("*.proto"))
    if not files:
        raise SystemExit(f"gen_proto: no .proto files in {PROTO_DIR}")
    return files


def proto_digest(files: list[Path]) -> str:
    """A hash of the sources, recorded in the package so stale stubs can be detected."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def dependency_modules(files: list[Path]) -> list[str]:
    """``google/api/annotations.proto`` -> ``google.api.annotations_pb2`` for every import."""
    names: set[str] = set()
    for path in files:
        for imported in _IMPORT_RE.findall(path.read_text()):
            if imported.startswith("google/"):
                names.add(imported[: -len(".proto")].replace("/", ".") + "_pb2")
    for name in sorted(names):
        importlib.import_module(name)  # fail here, not at import time, if one is missing
    return sorted(names)


def run_protoc(files: list[Path], out: Path) -> None:
    includes = include_paths()  # first: it explains a missing grpcio-tools
    from grpc_tools import protoc

    args = ["grpc_tools.protoc", *(f"-I{p}" for p in includes),
            f"--python_out={out}", f"--grpc_python_out={out}", *(str(f) for f in files)]
    if protoc.main(args) != 0:
        raise SystemExit("gen_proto: protoc failed (see the messages above)")


def fix_pb2(text: str, module: str) -> str:
    """Send the descriptors to the private pool and give classes their real module name."""
    if _POOL_ASSIGN not in text or _POOL_IMPORT not in text:
        raise SystemExit(f"gen_proto: unexpected protoc output in {module}; "
                         "update fix_pb2 for this grpcio-tools version")
    text = text.replace(_POOL_IMPORT, "from . import _pool\n")
    text = text.replace(_POOL_ASSIGN, "_pool.POOL.AddSerializedFile(")
    short = module.rsplit(".", 1)[-1]
    return text.replace(f"BuildTopDescriptorsAndMessages(DESCRIPTOR, '{short}',",
                        f"BuildTopDescriptorsAndMessages(DESCRIPTOR, '{module}',")


def fix_grpc(text: str, local: set[str]) -> str:
    """``import a2a_pb2 as x`` -> ``from . import a2a_pb2 as x`` for our own modules."""
    def relative(match: re.Match) -> str:
        name = match.group(1)
        return f"from . import {name} as" if name in local else match.group(0)
    return re.sub(r"^import (\w+) as", relative, text, flags=re.M)


def generate(out_dir: Path = OUT_DIR) -> Path:
    files = proto_files()
    package = "codetether.a2a.grpc_gen" if out_dir == OUT_DIR else out_dir.name
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gen_proto-", dir=out_dir) as tmp:
        tmp_dir = Path(tmp)
        run_protoc(files, tmp_dir)
        local = {p.stem for p in tmp_dir.glob("*.py")}
        outputs: dict[str, str] = {}
        for path in sorted(tmp_dir.glob("*.py")):
            text = path.read_text()
            if path.stem.endswith("_pb2_grpc"):
                text = fix_grpc(text, local)
            else:
                text = fix_pb2(text, f"{package}.{path.stem}")
            outputs[path.name] = text
        outputs["_pool.py"] = POOL_TEMPLATE.format(deps=tuple(dependency_modules(files)))
        outputs["__init__.py"] = INIT_TEMPLATE.format(digest=proto_digest(files))
        for name, text in outputs.items():  # __init__.py last: it marks a complete package
            staged = tmp_dir / (name + ".staged")
            staged.write_text(text)
            os.replace(staged, out_dir / name)
    return out_dir


def is_current(out_dir: Path = OUT_DIR) -> bool:
    """True when the stubs exist and were generated from the current proto files."""
    init = out_dir / "__init__.py"
    if not init.exists():
        return False
    return f'PROTO_HASH = "{proto_digest(proto_files())}"' in init.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output package directory")
    parser.add_argument("--check", action="store_true",
                        help="only report whether the stubs are current (exit 1 if not)")
    args = parser.parse_args(argv)
    if args.check:
        current = is_current(args.out)
        print("current" if current else "stale or missing", file=sys.stderr)
        return 0 if current else 1
    out = generate(args.out.resolve())
    print(f"gen_proto: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
