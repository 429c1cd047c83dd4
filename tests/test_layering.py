"""gpugrad's modules import only from their own layer or the layers below it.

The layers, lowest first (issue 14 point 7)::

    backend < kernels < tensor/autograd < ops < nn/optim/data/io < train/distributed

Every ``import`` and ``from ... import`` of a gpugrad module is read with
:mod:`ast`, at module level and inside functions alike (a function-level
import is still a dependency, only a later one).  A module that imports from
a layer above its own fails the test, unless the pair is listed in
:data:`EXCEPTIONS` with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gpugrad"

# Lowest first.  A module's layer is that of its longest listed prefix.
LAYERS = [
    ("backend", ["gpugrad.errors", "gpugrad.backend", "gpugrad.backends", "gpugrad.accelerator",
                 "gpugrad.install_extra",
                 # use_deterministic_algorithms' flag: read by the ops, imports nothing of gpugrad.
                 "gpugrad.determinism",
                 # float32 widening/rounding of float16/bfloat16 arrays: NumPy and the backend's dtypes only
                 # (the kernels use it for bfloat16 on the GPU).
                 "gpugrad.ops.low_precision"]),
    ("kernels", ["gpugrad.kernels"]),
    ("tensor/autograd", ["gpugrad.tensor", "gpugrad.autograd", "gpugrad.cuda"]),
    # The generator draws random tensors for the creation ops (and uses them): op level.
    # autocast's op policy is applied by dispatch to every op (the ops' autocast lists): op level.
    ("ops", ["gpugrad.ops", "gpugrad.generator", "gpugrad.amp.autocast_mode"]),
    # pytorch_names: PyTorch's spellings (gg.relu, t.shape as Size...), some over nn.functional.
    ("nn/optim/data/io", ["gpugrad.nn", "gpugrad.optim", "gpugrad.data", "gpugrad.utils", "gpugrad.io",
                          "gpugrad.save_module", "gpugrad.viz", "gpugrad.amp", "gpugrad.pytorch_names"]),
    ("train/distributed", ["gpugrad.train", "gpugrad.distributed", "gpugrad"]),
]
"""``gpugrad`` itself (the package ``__init__``) imports everything, so it sits on top.
A module under no listed prefix but ``gpugrad`` (one added later) is on the top layer too:
it may import anything, and the test fails as soon as a lower layer imports it."""

EXCEPTIONS = {
    ("gpugrad.autograd.functional", "gpugrad.ops"):
        "gg.grad/vjp/jvp/jacrev/jacfwd/hessian/hvp are transforms over ops (issue 14 point 5 puts them above "
        "ops); they still live in gpugrad.autograd for their public import path",
    ("gpugrad.autograd.transforms", "gpugrad.ops"):
        "the transforms (and checkpoint) are written with public op functions, above ops; see above",
    ("gpugrad.autograd.forward", "gpugrad.ops"):
        "forward mode's dual-number levels strip tangents with ops.forward_mode.strip_level, an op-level alias",
    ("gpugrad.autograd.tape", "gpugrad.ops"):
        "a root gradient given as a list or array is converted with ops.creation.as_tensor_like, a "
        "call-time import on an error-reporting path",
    # ``import gpugrad`` inside a function, to reach a public name defined in a lower layer.
    ("gpugrad.data", "gpugrad"): "gg.as_tensor (ops layer) through the package, at call time",
    ("gpugrad.io", "gpugrad"): "gg.as_tensor (ops layer) through the package, at call time",
    ("gpugrad.optim.optimizer", "gpugrad"): "gg.as_tensor and gg.no_grad (lower layers) through the package",
    ("gpugrad.optim.lbfgs", "gpugrad"): "gg.enable_grad (autograd layer) through the package, at call time",
    ("gpugrad.amp.grad_scaler", "gpugrad.distributed"):
        "the scaler's inf flag is all-reduced across ranks (DistributedDataParallel), at call time and only "
        "when a process group is initialised",
    ("gpugrad.utils.data._worker", "gpugrad"):
        "a loader worker process reaches gg.from_numpy and gg.manual_seed through the package, at call time",
    ("gpugrad.ops.docs", "gpugrad"):
        "generating and checking the ops' examples needs the whole package (the examples call gg.*); "
        "it runs when the examples are written or tested, never on import",
    ("gpugrad.cuda", "gpugrad.cuda_graphs"):
        "gg.cuda is PyTorch's public namespace; its graph names are resolved lazily (module __getattr__) "
        "from cuda_graphs, an op-level module, so importing gpugrad.cuda (Tensor.to does) pulls in no "
        "higher layer",
}
"""(importing module or package prefix, imported module prefix) -> why it is allowed."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_of(module: str) -> int:
    best, best_length = len(LAYERS) - 1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def _imported_modules(path: Path, module: str):
    """``(imported gpugrad module, line)`` for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "gpugrad" or alias.name.startswith("gpugrad."):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[:-(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not (target == "gpugrad" or target.startswith("gpugrad.")):
                continue
            # ``from . import tape`` imports the submodule ``package.tape``.
            for alias in node.names:
                yield (f"{target}.{alias.name}" if node.module is None else target), node.lineno


def _excused(importer: str, imported: str) -> bool:
    for (importer_prefix, imported_prefix) in EXCEPTIONS:
        # The package root as the imported side means ``import gpugrad`` itself, not all of gpugrad.
        imported_matches = imported == imported_prefix or (
            imported_prefix != "gpugrad" and imported.startswith(imported_prefix + "."))
        if (importer == importer_prefix or importer.startswith(importer_prefix + ".")) and imported_matches:
            return True
    return False


def _violations():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        own = _layer_of(module)
        for imported, line in _imported_modules(path, module):
            layer = _layer_of(imported)
            if layer > own and not _excused(module, imported):
                found.append(f"{module} (layer {LAYERS[own][0]}) imports {imported} (layer {LAYERS[layer][0]}) "
                             f"at line {line}")
    return found


def test_no_module_imports_from_a_layer_above_its_own():
    violations = _violations()
    assert not violations, "imports from a higher layer:\n" + "\n".join(violations)


def test_every_exception_is_still_needed():
    """An exception nobody needs any more is removed, so the list stays the truth."""
    used = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for imported, _ in _imported_modules(path, module):
            if _layer_of(imported) > _layer_of(module):
                for key in EXCEPTIONS:
                    if (module == key[0] or module.startswith(key[0] + ".")) and (
                            imported == key[1] or (key[1] != "gpugrad" and imported.startswith(key[1] + "."))):
                        used.add(key)
    assert set(EXCEPTIONS) == used, f"unused exceptions: {sorted(set(EXCEPTIONS) - used)}"


def test_tensor_and_tape_do_not_import_each_other_at_load_time():
    """The engine makes tensors; Tensor.backward calls the engine when first called, not at import."""
    tensor_tree = ast.parse((PACKAGE / "tensor.py").read_text())
    module_level = [node for node in tensor_tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not any("autograd" in (node.module or "") for node in module_level if isinstance(node, ast.ImportFrom))


@pytest.mark.parametrize("source, expected", [
    ("from ..ops import shape\n", "gpugrad.ops"),
    ("def f():\n    from gpugrad.nn import functional\n", "gpugrad.nn"),
    ("import gpugrad.train\n", "gpugrad.train"),
])
def test_the_checker_sees_relative_absolute_and_function_level_imports(tmp_path, source, expected):
    path = tmp_path / "gpugrad" / "autograd" / "tape.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    imported = [name for name, _ in _imported_modules(path, "gpugrad.autograd.tape")]
    assert any(name.startswith(expected) for name in imported), imported
    assert _layer_of(expected) > _layer_of("gpugrad.autograd.tape")
    assert not _excused("gpugrad.autograd.tape", "gpugrad.nn.functional")
