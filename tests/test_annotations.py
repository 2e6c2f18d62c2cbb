"""Every public function of netshrink has type hints on its arguments and its return.

Ruff's ANN201 (pyproject.toml) checks the returns; its ANN001 cannot be limited to public
functions (it flags private helpers and closures too), so this test checks the arguments.
Public: a function or method whose name does not start with an underscore, defined at module
or class level in a module whose name does not start with one; methods of private classes,
functions nested in functions and dunder methods other than __init__ are exempt (__init__
needs its arguments annotated, not `-> None`). self and cls need no annotation.
"""

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "netshrink"


def _missing(tree: ast.Module) -> list[tuple[int, str, str]]:
    """(line, qualified name, what is missing) of each public function lacking a hint."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name
                if name.startswith("_") and name != "__init__":
                    continue
                a = child.args
                arguments = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                for arg in arguments:
                    if arg is not None and arg.annotation is None and \
                            arg.arg not in ("self", "cls"):
                        found.append((child.lineno, prefix + name, f"argument {arg.arg}"))
                if child.returns is None and name != "__init__":
                    found.append((child.lineno, prefix + name, "return type"))

    visit(tree, "")
    return found


def test_every_public_function_is_annotated():
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if any(part.startswith("_") and part != "__init__.py" for part in relative.parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        problems += [f"{relative}:{line}: {name}: {what}"
                     for line, name, what in _missing(tree)]
    assert not problems, "public functions without type hints:\n" + "\n".join(problems)


def test_the_checker_finds_what_is_missing():
    tree = ast.parse(
        "def f(a, b: int, *args, c=1, **kw): pass\n"
        "def g(x: int) -> int: return x\n"
        "def _private(a): pass\n"
        "class A:\n"
        "    def __init__(self, n): pass\n"
        "    def __repr__(self): return ''\n"
        "    @classmethod\n"
        "    def make(cls) -> 'A': return cls(1)\n"
        "    def m(self, y: int): pass\n"
        "class _Hidden:\n"
        "    def m(self, y): pass\n"
        "def outer() -> None:\n"
        "    def inner(z): pass\n")
    assert _missing(tree) == [
        (1, "f", "argument a"), (1, "f", "argument c"), (1, "f", "argument args"),
        (1, "f", "argument kw"), (1, "f", "return type"),
        (5, "A.__init__", "argument n"), (9, "A.m", "return type")]
