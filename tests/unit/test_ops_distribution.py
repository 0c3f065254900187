"""The operator commands are a workspace member of their own (jupiter-ops): run by hatch scripts,
never imported by the jobs or the production library, never in an image."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from support import REPO

SHIPPED = (REPO / "libs" / "jupiter-common" / "src", *sorted((REPO / "jobs").glob("*/src")))


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_jupiter_ops_is_a_member_with_its_scripts_and_dependencies() -> None:
    env = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["envs"]["default"]
    members = [m if isinstance(m, str) else m["path"] for m in env["workspace"]["members"]]
    assert "libs/jupiter-ops" in members
    assert env["scripts"]["status"] == "python -m jupiter_ops.status {args}"
    assert env["scripts"]["dead-letters"] == "python -m jupiter_ops.dead_letters {args}"
    project = tomllib.loads((REPO / "libs" / "jupiter-ops" / "pyproject.toml").read_text())
    dependencies = {d.split(">")[0].split("=")[0] for d in project["project"]["dependencies"]}
    assert dependencies == {"jupiter-common", "confluent-kafka", "rich"}


def test_shipped_code_never_imports_the_operator_commands() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for root in SHIPPED
        for path in sorted(root.rglob("*.py"))
        if "jupiter_ops" in _top_level_imports(path)
    ]
    assert offenders == []
    # The check sees such an import.
    assert "jupiter_ops" in _top_level_imports(REPO / "tests" / "unit" / "test_ops_commands.py")


def test_the_image_build_context_cannot_reach_jupiter_ops() -> None:
    images = REPO / "infra" / "images"
    for path in (images / "Dockerfile", images / "Dockerfile.dockerignore"):
        assert "jupiter-ops" not in path.read_text(), path
    assert "!libs/jupiter-common/src" in (images / "Dockerfile.dockerignore").read_text()
