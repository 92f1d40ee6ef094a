"""The shape the code keeps (issue 19): small functions, and imports at the top of modules.

Read from the source with `ast`, so the limits hold for every change, not only the day they were measured:
no production function is over 60 lines, and the web apps import project modules inside functions at most
15 times, each with a comment on the line that says why (TensorFlow kept out of the web process, Optuna
loaded only for sweeps, models importable only once Django's apps are loaded).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 60
MAX_WEB_INNER_IMPORTS = 15
PROJECT = ("webapp", "jobs")


def modules(*folders: str):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                source = path.read_text(encoding="utf-8")
                yield path.relative_to(ROOT), source, ast.parse(source)


def functions(tree: ast.AST):
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_production_function_is_over_60_lines():
    long = [f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, _, tree in modules(*PROJECT) for node in functions(tree)
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_the_web_apps_import_project_modules_inside_functions_rarely_and_say_why():
    inner = {}
    for path, source, tree in modules("webapp"):
        lines = source.splitlines()
        for function in functions(tree):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PROJECT:
                    inner[f"{path}:{node.lineno}"] = lines[node.lineno - 1]
                elif isinstance(node, ast.Import) and any(a.name.split(".")[0] in PROJECT for a in node.names):
                    inner[f"{path}:{node.lineno}"] = lines[node.lineno - 1]
    assert len(inner) <= MAX_WEB_INNER_IMPORTS, sorted(inner)
    assert [where for where, line in inner.items() if "#" not in line] == []
