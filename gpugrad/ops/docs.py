"""Op docstrings: the ``doc=`` paragraph of a declaration plus an example made from its first sample.

``defop(..., doc=...)`` makes the op's docstring (``help(gg.tanh)``,
``help(x.exp)``) from two parts: the paragraph written next to the
declaration, and an ``Examples`` section generated from the op's first
sample.  Generating the example means running the op, which import must not
pay for, so the examples are generated once, ahead of time, into
:mod:`gpugrad.ops.examples` (plain strings; importing them costs a dict)::

    python -c "import gpugrad.ops.docs as d; d.write()"     # rewrite gpugrad/ops/examples.py

``tests/test_op_docs.py`` runs every example as a doctest, so an example
whose op changed fails there until it is generated again.
"""

from __future__ import annotations

import inspect
import io
import sys

_EXAMPLES = None


def _examples():
    global _EXAMPLES
    if _EXAMPLES is None:
        try:
            from .examples import EXAMPLES
        except ImportError:      # being generated for the first time
            EXAMPLES = {}
        _EXAMPLES = EXAMPLES
    return _EXAMPLES


def docstring(name, text):
    """The docstring of op ``name``: ``text`` and its generated example (None without ``text``)."""
    if text is None:
        return None
    example = _examples().get(name)
    text = inspect.cleandoc(text)
    if not example or "\nExamples\n" in text:      # no sample, or an example written by hand
        return text
    return f"{text}\n\nExamples\n--------\n{example}"


# --------------------------------------------------------------------------
# Generating the examples (not run at import).
# --------------------------------------------------------------------------
_RANGES = {"Positive": (0.5, 2.0), "Unit": (-0.9, 0.8), "Probability": (0.05, 0.95), "Away": (-1.9, 2.1),
           "Distinct": (-2.1, 1.9)}


def _input_source(spec, position):
    """Python source that builds the array input of ``spec`` deterministically, or None for a constant."""
    from .samples import Ints, Mask, Spec, is_array_spec
    if not is_array_spec(spec):
        return None
    shape = spec.shape if isinstance(spec, Spec) else spec
    count = 1
    for n in shape:
        count *= n
    shaped = f".reshape({', '.join(map(str, shape))})" if len(shape) > 1 else ""
    if not shape:
        return "gg.tensor(0.5)"
    kind = type(spec).__name__
    if isinstance(spec, Mask):
        return f"(gg.arange({count}) % 3 != 0){shaped}"
    if isinstance(spec, Ints):
        import numpy as np
        values = spec.make(np.random.default_rng(0))
        return f"gg.tensor({values.tolist()!r})"
    low, high = _RANGES.get(kind, (-1.9, 2.1))
    if position % 2:
        low, high = high, low       # a second input unlike the first
    return f"gg.linspace({low}, {high}, {count}){shaped}"


def _literal(value, imports):
    """Python source for a sample's constant or parameter."""
    import numpy as np

    from .. import backend
    if isinstance(value, np.dtype):
        return f"gg.{value.name}"
    if isinstance(value, backend.Device):
        return f"gg.device({str(value)!r})"
    if isinstance(value, np.ndarray):
        imports.add("import numpy as np")
        return f"np.array({value.tolist()!r}, dtype=np.{value.dtype.name})"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v, imports) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if value is Ellipsis:
        return "..."
    text = repr(value)
    if "<" in text or "(" in text and not isinstance(value, slice):
        return None          # an object with no source form (a ViewChain): no example
    return text


def _call_forms(op):
    """Ways to spell a call of ``op`` in an example, most public first: ``(callee, imports)``."""
    import gpugrad as gg

    from .. import ops as ops_package
    forms = []
    public = getattr(gg, op.name, None)
    if callable(public):
        forms.append((f"gg.{op.name}", set()))
    for module_name in sorted(sys.modules):
        module = sys.modules[module_name]
        if module_name.startswith(ops_package.__name__ + ".") and module is not None:
            for attribute, value in vars(module).items():
                if value is op.function and not attribute.startswith("_"):
                    forms.append((attribute, {f"from {module_name} import {attribute}"}))
                    break
    # Last: the op's own function, for ops whose public spelling differs (gg.roll takes dims=).
    forms.append((f"OPS[{op.name!r}].function", {"from gpugrad.ops import OPS"}))
    return forms


def _run(lines):
    """Run example lines as doctest would; return the lines with their outputs, or None if one fails."""
    namespace = {}
    shown = []
    for line in lines:
        shown.append(f">>> {line}")
        try:
            code = compile(line, "<example>", "single")
        except SyntaxError:
            return None
        captured = io.StringIO()
        stdout, sys.stdout = sys.stdout, captured
        try:
            exec(code, namespace)          # noqa: S102 - the generator's own example text
        except Exception:                   # noqa: BLE001 - this spelling does not work: try the next
            return None
        finally:
            sys.stdout = stdout
        output = captured.getvalue()
        if output:
            shown.extend(line or "<BLANKLINE>" for line in output.rstrip("\n").split("\n"))
    return "\n".join(shown)


def example(op):
    """The example text for ``op`` (from its first sample), or None when no spelling runs."""
    if not op.samples:
        return None
    sample = op.samples[0]
    for callee, imports in _call_forms(op):
        imports = set(imports)
        setup, arguments = [], []
        names = iter("xyzuvw")
        for spec in sample.args:
            source = _input_source(spec, len(arguments))
            if source is None:
                source = _literal(spec, imports)
                if source is None:
                    break
                arguments.append(source)
                continue
            name = next(names)
            setup.append(f"{name} = {source}")
            arguments.append(name)
        else:
            keywords = []
            for key, value in sample.params.items():
                source = _literal(value, imports)
                if source is None:
                    break
                keywords.append(f"{key}={source}")
            else:
                call = f"{callee}({', '.join(arguments + keywords)})"
                lines = ["import gpugrad as gg", *sorted(imports), *setup, f"out = {call}"]
                text = _run(lines + ["out.shape"])
                if text is None:
                    continue
                size = 1
                for n in eval(text.rsplit("\n", 1)[-1][len("Size("):-1]):  # noqa: S307 - a Size repr
                    size *= n
                return _run(lines + (["out"] if size <= 12 else ["out.shape"]))
    return None


def generate():
    """Source of :mod:`gpugrad.ops.examples`: every op's example."""
    from .registry import OPS
    entries = []
    for name in sorted(OPS):
        text = example(OPS[name])
        if text is not None:
            lines = text.split("\n")
            quoted = [repr(line + "\n") for line in lines[:-1]] + [repr(lines[-1])]
            body = "\n".join(f"        {line}" for line in quoted)
            entries.append(f"    {name!r}: (\n{body}\n    ),")
    header = '"""Each op\'s example, generated from its first sample by gpugrad.ops.docs.write(); do not edit."""\n\n'
    return (header + "EXAMPLES = {\n" + "\n".join(entries) + "\n}\n\n"
            "# doctest (and pytest --doctest-modules) runs each example as a test of its own.\n"
            "__test__ = EXAMPLES\n")


def write():
    """Rewrite ``gpugrad/ops/examples.py`` (after a sample or an op changed)."""
    import pathlib

    import gpugrad  # noqa: F401 - registers every op

    target = pathlib.Path(__file__).with_name("examples.py")
    target.write_text(generate())
    return target
