"""What ships and what does not: the local tools, the generator and the producer live in the
dev-only distribution jupiter-local (infra/local); the production library and the jobs never
import it, and the image's build context cannot reach it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from support import REPO

SHIPPED = (REPO / "libs" / "jupiter-common" / "src", *sorted((REPO / "jobs").glob("*/src")))


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_shipped_code_never_imports_the_local_tools() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for root in SHIPPED
        for path in sorted(root.rglob("*.py"))
        for module in sorted(_imported_modules(path))
        if module.split(".")[0] == "jupiter_local"
    ]
    assert offenders == []
    # The check sees such an import.
    assert "jupiter_local.synthetic" in _imported_modules(REPO / "tests" / "hostile.py")


def test_the_generator_and_producer_are_not_in_the_production_library() -> None:
    library = REPO / "libs" / "jupiter-common" / "src" / "jupiter_common"
    assert not (library / "synthetic.py").exists()
    assert not (library / "producer.py").exists()
    local = REPO / "infra" / "local" / "src" / "jupiter_local"
    assert (local / "synthetic" / "__init__.py").is_file()
    assert (local / "producer.py").is_file()


def test_jupiter_local_is_a_workspace_member_and_its_tools_run_as_modules() -> None:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = root["tool"]["hatch"]["envs"]["default"]
    members = [m if isinstance(m, str) else m["path"] for m in env["workspace"]["members"]]
    assert "infra/local" in members
    local = tomllib.loads((REPO / "infra" / "local" / "pyproject.toml").read_text())
    assert local["project"]["name"] == "jupiter-local"
    scripts = env["scripts"]
    for name in ("broker", "cluster", "produce", "demo", "bench", "chaos"):
        assert scripts[name].startswith(
            f"python -m jupiter_local.{name.replace('produce', 'producer')}"
        )
    assert not any(
        "infra/local/" in str(command) and ".py" in str(command) for command in scripts.values()
    )


def test_the_image_build_context_leaves_infra_local_out() -> None:
    ignore = (REPO / "infra" / "images" / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"  # everything is left out unless listed again
    assert not any(rule.startswith("!") and "infra/local" in rule for rule in rules)
    dockerfile = (REPO / "infra" / "images" / "Dockerfile").read_text()
    assert "infra/local" not in dockerfile
    assert "jupiter-local" not in dockerfile
