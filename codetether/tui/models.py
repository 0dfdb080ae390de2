"""The model picker's list: models of every provider that has credentials (or needs none).

Finding credentials can ask Vault, so this runs in the worker thread, never the UI thread.
Models come from the bundled catalog, the cached provider lists and each provider's default.
"""

from __future__ import annotations

from typing import Any

from codetether.tui.dialogs import Item


def model_items(cfg: Any, current: str | None = None) -> list[Item]:
    from codetether.providers import catalog
    from codetether.providers.resolve import (
        find_credentials,
        known_provider_ids,
        spec_for,
        usable,
    )

    bundled = catalog.bundled()
    cached = catalog.read_cache()
    items: list[Item] = []
    for provider_id in known_provider_ids(cfg):
        spec = spec_for(provider_id, cfg)
        if spec is None:
            continue
        try:
            creds = find_credentials(spec)
        except Exception:  # an unreachable secret store hides that provider, nothing more
            continue
        if not usable(spec, creds, cfg):
            continue
        default = cfg.provider_settings(provider_id).get("default_model") or spec.default_model
        infos = {m.id: m for m in bundled if m.provider == provider_id}
        ids = ([default] if default else []) + list(infos) + cached.get(provider_id, [])
        seen: set[str] = set()
        for model_id in ids:
            if model_id in seen:
                continue
            seen.add(model_id)
            ref = f"{provider_id}/{model_id}"
            items.append(Item(ref, ref, _detail(infos.get(model_id), ref == current,
                                                model_id == default)))
    return items


def _detail(info: Any, current: bool, default: bool) -> str:
    bits = []
    if info is not None and info.context_window:
        bits.append(f"{info.context_window // 1000}k ctx")
    if info is not None and info.input_cost is not None and info.output_cost is not None:
        bits.append(f"${info.input_cost:g}/${info.output_cost:g} per M")
    if default:
        bits.append("default")
    if current:
        bits.append("current")
    return "  ".join(bits)
