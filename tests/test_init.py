"""`import netshrink` loads the library, not the sweep layer or the command line: it works where
yaml or fcntl (POSIX only) cannot be imported."""

import json
import subprocess
import sys

LAYERS_ABOVE = ("yaml", "netshrink.bench", "netshrink.bench.sweep", "netshrink.cli",
                "netshrink.reproduce")


def test_import_netshrink_leaves_out_the_layers_above_it():
    code = ("import sys, json\n"
            "sys.modules['fcntl'] = None  # as on Windows: `import fcntl` raises\n"
            "sys.modules['yaml'] = None\n"
            "import netshrink\n"
            "netshrink.models.create('lenet300')\n"
            f"print(json.dumps([m for m in {LAYERS_ABOVE!r} if sys.modules.get(m)]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_the_method_packages_import_neither_the_sweeps_nor_the_command_line():
    code = ("import sys, json\n"
            "import netshrink.prune, netshrink.quant, netshrink.distill\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(("
            "'netshrink.bench', 'netshrink.cli', 'netshrink.reproduce')))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_no_method_module_imports_a_layer_above_even_lazily():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "netshrink"
    above = ("netshrink.bench", "netshrink.cli", "netshrink.reproduce")
    offenders = []
    for package in ("data", "models", "train", "prune", "quant", "distill"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                         [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                offenders += [f"{path.relative_to(root)}: {n}" for n in names
                              if n.startswith(above)]
    assert offenders == []
