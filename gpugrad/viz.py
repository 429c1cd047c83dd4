r"""Pictures of the compute graph: Graphviz DOT text and rendered PNG/SVG files.

``to_dot(t)`` walks the graph behind ``t`` from ``t.grad_fn`` along each
node's ``next_edges`` (iteratively: graphs can be deep) and describes

* one box per recorded op, with the op name and the shape and dtype of its output;
* one ellipse per leaf that requires grad, named after the parameter
  (``params=dict(model.named_parameters())`` or a Module) or ``tensor.name``;
* optionally (``show_saved=True``) the tensors each op saved for backward;
* an edge from every input to the op that consumed it, so arrows follow the
  forward data flow, from the leaves to ``t``.

A gradient computed with ``create_graph=True`` has a graph of its own (the
backward pass, recorded): ``to_dot(x.grad)`` draws the derivative's graph.

``render(t, "graph.svg")`` runs Graphviz's ``dot`` program.

Examples
--------
>>> import gpugrad as gg
>>> w = gg.tensor([1.0, 2.0], requires_grad=True)
>>> text = gg.viz.to_dot((w * w).sum(), params={"w": w})
>>> "mul" in text and "sum" in text and "w\\n(2,) float32" in text
True
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .errors import GpugradError
from .tensor import Tensor

__all__ = ["GraphvizNotFoundError", "render", "to_dot"]

INSTALL_HINT = ("install Graphviz: `apt-get install -y graphviz` (Debian/Ubuntu), `brew install graphviz` "
                "(macOS), `conda install -c conda-forge graphviz`, or see https://graphviz.org/download/; "
                "the `dot` program must be on PATH")


class GraphvizNotFoundError(GpugradError, RuntimeError):
    """The Graphviz ``dot`` program, needed by :func:`render`, is not installed."""


def _shape_text(shape, dtype):
    return f"{tuple(int(s) for s in shape)} {dtype}"


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _parameter_names(params):
    if params is None:
        return {}
    named = getattr(params, "named_parameters", None)
    if callable(named):
        params = dict(named())
    elif not isinstance(params, dict):
        params = {f"param{i}": p for i, p in enumerate(params)}
    return {id(tensor): name for name, tensor in params.items() if isinstance(tensor, Tensor)}


def _output_metas(nodes):
    """Output (shape, dtype) of each node, read off its consumers' ``input_meta``."""
    metas = {}
    for node in nodes:
        for edge, meta in zip(node.next_edges, getattr(node, "input_meta", None) or ()):
            if edge is not None and meta is not None:
                metas.setdefault((edge[0], edge[1]), meta)
        for index, meta in enumerate(getattr(node, "output_meta", None) or ()):
            metas.setdefault((node, index), (meta[0], meta[1]))
    return metas


def _collect(roots):
    """Every node reachable from ``roots`` in a stable order (iterative depth-first walk)."""
    order, seen = [], set()
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        for edge in reversed(list(node.next_edges)):
            if edge is not None and edge[0] not in seen:
                stack.append(edge[0])
    return order


def to_dot(t, params=None, show_saved=False, name=None):
    """Graphviz DOT text of the graph that computed ``t``.

    Parameters
    ----------
    t : Tensor or sequence of Tensor
        The output(s) whose history to draw (a loss, a gradient computed with
        ``create_graph=True``, ...).
    params : dict of name -> Tensor, or Module, optional
        Names for leaves (``dict(model.named_parameters())`` or the model).
        Leaves with ``tensor.name`` set use that name too.
    show_saved : bool
        Also draw the tensors each op saved for backward (dashed edges).
    name : str, optional
        Label for the output node (default ``"output"``; ``tensor.name`` if set).

    Returns
    -------
    str
        A ``digraph`` in DOT syntax: op nodes are boxes labelled ``op name``
        and ``shape dtype``; leaves are ellipses; edges point from inputs to
        the op that used them, and from the last op to the output.
    """
    from .autograd.tape import AccumulateGrad

    outputs = [t] if isinstance(t, Tensor) else list(t)
    names = _parameter_names(params)
    roots = []
    for out in outputs:
        if out.grad_fn is not None:
            roots.append(out.grad_fn)
        elif out.requires_grad and out._accumulator is not None:
            roots.append(out._accumulator)
    nodes = _collect(roots)
    ids = {node: f"n{index}" for index, node in enumerate(nodes)}
    metas = _output_metas(nodes)

    lines = ["digraph gpugrad {",
             '  graph [rankdir=BT, fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9];']
    for node in nodes:
        node_id = ids[node]
        if isinstance(node, AccumulateGrad):
            leaf = node.leaf
            leaf_name = names.get(id(leaf)) or leaf.name or "leaf"
            label = f"{leaf_name}\n{_shape_text(leaf.shape, leaf.dtype)}"
            lines.append(f"  {node_id} [label={_quote(label)}, shape=ellipse, style=filled, fillcolor=lightblue];")
            continue
        shown = []
        for index in range(getattr(node, "n_outputs", 1)):
            meta = metas.get((node, index))
            if meta is not None:
                shown.append(_shape_text(*meta))
        if not shown:   # the root node: its consumers are not in the graph, the outputs are
            for out in outputs:
                if out.grad_fn is node:
                    shown.append(_shape_text(out.shape, out.dtype))
                    break
        label = "\n".join([node.name] + shown)
        color = "khaki" if node.name == "Checkpoint" else "lightgrey"
        lines.append(f"  {node_id} [label={_quote(label)}, shape=box, style=filled, fillcolor={color}];")
    for node in nodes:
        for position, edge in enumerate(node.next_edges):
            if edge is None:
                continue
            parent, _output_nr = edge
            attributes = f' [label="{position}"]' if len(node.next_edges) > 1 else ""
            lines.append(f"  {ids[parent]} -> {ids[node]}{attributes};")
    if show_saved:
        counter = 0
        for node in nodes:
            saved = getattr(node, "saved", None)
            if saved:
                for position, tensor in enumerate(saved):
                    if isinstance(tensor, Tensor):
                        saved_id = f"s{counter}"
                        counter += 1
                        label = f"saved {position}\n{_shape_text(tensor.shape, tensor.dtype)}"
                        lines.append(f"  {saved_id} [label={_quote(label)}, shape=note, style=filled, "
                                     "fillcolor=orange, fontsize=9];")
                        lines.append(f"  {saved_id} -> {ids[node]} [style=dashed, arrowhead=none];")
            if getattr(node, "out_data", None) is not None:
                saved_id = f"s{counter}"
                counter += 1
                data = node.out_data
                label = f"saved output\n{_shape_text(data.shape, data.dtype)}"
                lines.append(f"  {saved_id} [label={_quote(label)}, shape=note, style=filled, "
                             "fillcolor=orange, fontsize=9];")
                lines.append(f"  {saved_id} -> {ids[node]} [style=dashed, arrowhead=none];")
    for index, out in enumerate(outputs):
        out_label = (name if name is not None and len(outputs) == 1 else None) or out.name or (
            "output" if len(outputs) == 1 else f"output {index}")
        out_id = f"out{index}"
        label = f"{out_label}\n{_shape_text(out.shape, out.dtype)}"
        lines.append(f"  {out_id} [label={_quote(label)}, shape=ellipse, style=filled, fillcolor=palegreen];")
        if out.grad_fn is not None:
            lines.append(f"  {ids[out.grad_fn]} -> {out_id};")
        elif out.requires_grad and out._accumulator is not None and out._accumulator in ids:
            lines.append(f"  {ids[out._accumulator]} -> {out_id};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def render(t, path, params=None, show_saved=False, name=None):
    """Draw the graph behind ``t`` to ``path`` (PNG or SVG, chosen by the suffix).

    Runs Graphviz's ``dot``; raises :class:`GraphvizNotFoundError` (a
    ``RuntimeError``) saying how to install it when it is missing.  Returns
    ``path``.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf", "dot", "gv"):
        raise ValueError(f"render: cannot tell the format of {path!r}; use a .png, .svg, .pdf or .dot suffix")
    text = to_dot(t, params=params, show_saved=show_saved, name=name)
    if suffix in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path
    executable = shutil.which("dot")
    if executable is None:
        raise GraphvizNotFoundError(f"render: the Graphviz `dot` program was not found, so {path!r} cannot be "
                                    f"drawn; {INSTALL_HINT}. gg.viz.to_dot(t) gives the DOT text without it.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    completed = subprocess.run([executable, f"-T{suffix}", "-o", path], input=text.encode("utf-8"),
                               capture_output=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"render: dot failed (exit {completed.returncode}): "
                           f"{completed.stderr.decode('utf-8', 'replace').strip()}")
    return path
