"""The fake server is provider-agnostic: every provider is one `*_api.py` part declaring a FakeApi, and
the shared modules (server.py, common.py, parts.py) decide nothing by a provider's name."""

from __future__ import annotations

import ast

from fake_provider import PAID_APIS, FakeProviderServer
from fake_provider.parts import PARTS, part_of
from repo import REPO_ROOT

FAKE = REPO_ROOT / "tests" / "fake_provider"


def _code_strings_and_names(path) -> list[str]:
    """The string constants and identifiers of a module's code: no comments, docstrings or SOURCES (the
    documentation tags, which name providers' pages)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    } | {
        id(inner)
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(target, "id", None) for target in node.targets] == ["SOURCES"]
        for inner in ast.walk(node.value)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.append(node.value)
        elif isinstance(node, ast.Name):
            found.append(node.id)
        elif isinstance(node, ast.Attribute):
            found.append(node.attr)
        elif isinstance(node, ast.alias):
            found.append(node.name)
    return found


def test_the_shared_modules_name_no_provider():
    for module in ("server.py", "common.py", "parts.py"):
        code = [text.lower() for text in _code_strings_and_names(FAKE / module)]
        named = {part.name for part in PARTS for text in code if part.name in text}
        assert not named, f"{module} names {sorted(named)}"


def test_the_parts_are_every_api_module_and_own_every_paid_api():
    modules = sorted(path.stem for path in FAKE.glob("*_api.py"))
    assert [part.methods.__module__.rsplit(".", 1)[1] for part in PARTS] == modules
    assert all(part_of(api).name in api for api in PAID_APIS)
    assert set(FakeProviderServer.__mro__) >= {part.methods for part in PARTS}


def test_env_is_the_union_of_the_parts_variables():
    with FakeProviderServer() as server:
        env = server.env()
        for part in PARTS:
            assert part.env(server.url).items() <= env.items()
        assert len(env) == sum(len(part.env(server.url)) for part in PARTS)
