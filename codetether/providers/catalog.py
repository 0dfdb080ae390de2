"""The bundled model catalog (window, max output, prices, capabilities) and the provider's own
model lists, cached in the data dir so ``codetether models`` is fast and works offline."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from codetether.core import paths
from codetether.core.fsutil import atomic_write_text

CACHE_TTL_SECONDS = 24 * 3600


@dataclass
class ModelInfo:
    provider: str
    id: str
    context_window: int | None = None
    max_output: int | None = None
    input_cost: float | None = None  # USD per million tokens
    output_cost: float | None = None
    cache_read_cost: float | None = None
    tools: bool | None = None
    reasoning: bool | None = None
    source: str = "catalog"  # catalog | provider | both

    @property
    def ref(self) -> str:
        return f"{self.provider}/{self.id}"

    def to_json(self) -> dict:
        return asdict(self) | {"ref": self.ref}


def bundled() -> list[ModelInfo]:
    text = resources.files("codetether.providers").joinpath("catalog.json").read_text("utf-8")
    return [ModelInfo(**row) for row in json.loads(text)["models"]]


def lookup(provider: str, model: str) -> ModelInfo | None:
    """Catalog facts for one model (used for context windows and cost accounting)."""
    return next((m for m in bundled() if m.provider == provider and m.id == model), None)


def merge(catalog: list[ModelInfo], remote: dict[str, list[str]]) -> list[ModelInfo]:
    """Catalog entries, marked ``both`` when the provider listed them too, plus remote-only ids."""
    out = []
    known = {(m.provider, m.id) for m in catalog}
    for info in catalog:
        listed = remote.get(info.provider)
        if listed is not None and info.id in listed:
            info = ModelInfo(**{**asdict(info), "source": "both"})
        out.append(info)
    for provider, ids in remote.items():
        out += [ModelInfo(provider, mid, source="provider") for mid in ids
                if (provider, mid) not in known]
    return out


def _cache_path() -> Path:
    return paths.data_dir() / "models_cache.json"


def read_cache(max_age: float = CACHE_TTL_SECONDS) -> dict[str, list[str]]:
    """Provider model lists fetched less than ``max_age`` seconds ago."""
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    now = time.time()
    return {p: entry["models"] for p, entry in data.items()
            if isinstance(entry, dict) and now - entry.get("fetched_at", 0) < max_age}


def write_cache(lists: dict[str, list[str]]) -> None:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    now = time.time()
    for provider, models in lists.items():
        data[provider] = {"fetched_at": now, "models": models}
    paths.ensure_private_dir(_cache_path().parent)
    atomic_write_text(_cache_path(), json.dumps(data) + "\n", mode=0o600)
