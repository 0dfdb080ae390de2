"""memory (a real 0600 JSON file under a lock, real concurrent writers) and skill (real SKILL.md
files in the project and in the isolated user config dir)."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from codetether.core.paths import config_dir
from codetether.tools import registry
from codetether.tools.base import ToolContext, ToolError
from codetether.tools.knowledge import MemoryTool, SkillTool, list_skills, split_front_matter


def make_ctx(tmp_path: Path, project: str = "proj") -> ToolContext:
    ws = tmp_path / project
    ws.mkdir(exist_ok=True)
    return ToolContext(workspace=ws, data_dir=tmp_path / "data")


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path)


def mem(ctx: ToolContext, **args):
    return MemoryTool().run(args, ctx)


def test_registry_names_resolve():
    assert registry.get("memory").name == "memory"
    assert registry.get("skill").name == "skill"


def test_memory_save_get_list_delete(ctx, tmp_path):
    first = mem(ctx, action="save", content="tests run with `make test`", tags=["Build", "#ci"])
    second = mem(ctx, action="save", content="user prefers tabs", key="style")
    path = tmp_path / "data" / "memory.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = json.loads(path.read_text())["entries"]
    assert entries[0]["tags"] == ["build", "ci"]
    assert entries[0]["project"] == str(ctx.workspace.resolve())
    assert {"id", "content", "tags", "project", "created_at"} <= set(entries[0])

    got = mem(ctx, action="get", id=first.metadata["id"])
    assert "make test" in got.output and "[build, ci]" in got.output
    assert "tabs" in mem(ctx, action="get", key="style").output

    listed = mem(ctx, action="list")
    assert listed.metadata["ids"] == [second.metadata["id"], first.metadata["id"]]  # newest first
    assert mem(ctx, action="list", limit=1).metadata["ids"] == [second.metadata["id"]]
    assert mem(ctx, action="list", tags=["ci"]).metadata["ids"] == [first.metadata["id"]]

    assert "build (1)" in mem(ctx, action="tags").output
    mem(ctx, action="delete", id=first.metadata["id"])
    assert mem(ctx, action="list").metadata["ids"] == [second.metadata["id"]]
    with pytest.raises(ToolError, match="no memory with id"):
        mem(ctx, action="get", id=first.metadata["id"])


def test_memory_same_key_replaces_within_a_project(ctx, tmp_path):
    a = mem(ctx, action="save", content="v1", key="db")
    b = mem(ctx, action="save", content="v2", key="db")
    assert a.metadata["id"] == b.metadata["id"] and "updated" in b.output
    other = make_ctx(tmp_path, "other")
    c = mem(other, action="save", content="other project's db", key="db")
    assert c.metadata["id"] != a.metadata["id"]
    assert "v2" in mem(ctx, action="get", key="db").output
    assert "other project's" in mem(other, action="get", key="db").output


def test_memory_search_scores_and_prefers_this_project(ctx, tmp_path):
    other = make_ctx(tmp_path, "other")
    elsewhere = mem(other, action="save", content="Postgres runs on port 5433 here",
                    tags=["postgres"]).metadata["id"]
    weak = mem(ctx, action="save", content="a note mentioning postgres once").metadata["id"]
    strong = mem(ctx, action="save", content="POSTGRES port is 5432", tags=["postgres", "db"]
                 ).metadata["id"]
    mem(ctx, action="save", content="unrelated: use ruff")
    found = mem(ctx, action="search", query="postgres port")
    assert found.metadata["ids"] == [strong, weak, elsewhere]
    assert mem(other, action="search", query="postgres port").metadata["ids"][0] == elsewhere
    assert "no memory matches" in mem(ctx, action="search", query="kubernetes").output


def test_memory_errors(ctx, tmp_path):
    with pytest.raises(ToolError, match="unknown action"):
        mem(ctx, action="forget")
    with pytest.raises(ToolError, match="content"):
        mem(ctx, action="save")
    with pytest.raises(ToolError, match="tags"):
        mem(ctx, action="save", content="x", tags=[1])
    with pytest.raises(ToolError, match="'id'"):
        mem(ctx, action="delete")
    with pytest.raises(ToolError, match="query"):
        mem(ctx, action="search", query=" ")
    path = tmp_path / "data" / "memory.json"
    path.write_text("{broken")
    with pytest.raises(ToolError, match="not valid JSON"):
        mem(ctx, action="save", content="x")
    assert path.read_text() == "{broken"  # never overwritten


def test_memory_concurrent_saves_lose_nothing(ctx, tmp_path):
    errors: list[BaseException] = []

    def save(n: int) -> None:
        try:
            mem(ctx, action="save", content=f"note {n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = json.loads((tmp_path / "data" / "memory.json").read_text())["entries"]
    assert sorted(e["content"] for e in entries) == sorted(f"note {n}" for n in range(20))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_skills_list_load_and_precedence(ctx):
    project = ctx.workspace / ".codetether" / "skills"
    user = config_dir() / "skills"
    write(project / "release" / "SKILL.md",
          "---\nname: release\ndescription: \"How to cut a release\"\n---\n\n# Release\nRun x.\n")
    write(project / "quick.md", "# Quick checks\nrun lint\n")
    write(user / "release" / "SKILL.md", "---\nname: release\ndescription: user one\n---\nU\n")
    write(user / "global" / "SKILL.md", "---\ndescription: a user skill\n---\nbody G\n")
    write(user / "notes.txt", "not a skill")

    skills = list_skills(ctx.workspace)
    assert [(s.name, s.source) for s in skills] == [
        ("global", "user"), ("quick", "project"), ("release", "project")]
    assert skills[1].description == "Quick checks"

    listing = SkillTool().run({}, ctx)
    assert "- release: How to cut a release [project]" in listing.output
    assert "- global: a user skill [user]" in listing.output

    loaded = SkillTool().run({"name": "release"}, ctx)
    assert "# Release\nRun x." in loaded.output and "user one" not in loaded.output
    assert "---" not in loaded.output.split("\n\n", 1)[1]
    assert "body G" in SkillTool().run({"name": "global"}, ctx).output

    with pytest.raises(ToolError, match="available: global, quick, release"):
        SkillTool().run({"name": "deploy"}, ctx)


def test_no_skills(ctx):
    assert "no skills found" in SkillTool().run({}, ctx).output
    with pytest.raises(ToolError, match="available: none"):
        SkillTool().run({"name": "x"}, ctx)


def test_front_matter_parsing():
    meta, body = split_front_matter("---\nname: 'a'\ndescription: b: c\nnested:\n  x: 1\n---\nB")
    assert meta == {"name": "a", "description": "b: c", "nested": ""}
    assert body == "B"
    assert split_front_matter("no front matter") == ({}, "no front matter")
    assert split_front_matter("---\nunterminated") == ({}, "---\nunterminated")
