"""Every op says what it does: a ``doc=`` on its declaration and a generated example that runs.

The examples live in ``gpugrad/ops/examples.py``, generated from each op's
first sample by ``gpugrad.ops.docs.write()``; running each one here as a
doctest catches an example that no longer matches its op.
"""

import doctest
import pydoc

import pytest
from op_entry_points import discovered_entry_points

import gpugrad as gg
from gpugrad.ops import OPS
from gpugrad.ops.examples import EXAMPLES

# The examples print what the op gave when they were generated, digit for digit
# (--doctest-modules runs them again, with pytest's NUMBER, through examples.__test__).
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _summary(op):
    return op.doc.split("\n", 1)[0] if op.doc else ""


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_has_a_docstring_with_an_example(name):
    op = OPS[name]
    assert op.doc and _summary(op).strip(), f"op '{name}' has no doc= on its declaration"
    assert "PyTorch" in op.doc, f"op '{name}': the doc does not say what it is in PyTorch"
    assert "\nExamples\n--------\n" in op.doc and ">>> " in op.doc.split("\nExamples\n", 1)[1], \
        f"op '{name}': no example (regenerate gpugrad/ops/examples.py)"
    assert op.function.__doc__ == op.doc


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_example_runs(name):
    """The example prints what the op gives today (a stale generated example fails here)."""
    op = OPS[name]
    test = doctest.DocTestParser().get_doctest(op.doc, {}, f"OPS[{name!r}].doc", None, 0)
    assert test.examples, f"op '{name}' has no example to run"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_generated_examples_are_for_registered_ops():
    """No example for an op that is gone; every op without a hand-written example has one."""
    assert set(EXAMPLES) <= set(OPS), sorted(set(EXAMPLES) - set(OPS))
    hand_written = {name for name, op in OPS.items() if name not in EXAMPLES}
    for name in hand_written:
        assert "\nExamples\n" in OPS[name].doc, f"op '{name}' has neither a generated nor a written example"


def test_help_shows_the_op_doc_on_every_entry_point_that_is_the_op():
    """``help(gg.tanh)`` and ``help(x.exp)`` show the declaration's doc."""
    assert "hyperbolic tangent" in pydoc.render_doc(gg.tanh)
    assert "exponential" in pydoc.render_doc(gg.ones(2).exp)
    assert "Sum of elements" in pydoc.render_doc(gg.sum)
    wrong = []
    for name, labels in discovered_entry_points().items():
        for label in labels:
            namespace, attribute = label.split(".", 1)
            owner = {"gg": gg, "F": gg.nn.functional, "Tensor": gg.Tensor}[namespace]
            if getattr(owner, attribute).__doc__ != OPS[name].doc:
                wrong.append(label)
    assert not wrong, f"entry points whose docstring is not their op's: {sorted(wrong)}"
