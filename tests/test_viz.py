"""gg.viz: the DOT text describes the graph (ops, shapes, dtypes, leaves by name, edges),
derivative graphs can be drawn, deep graphs need no recursion, and render() writes PNG/SVG
through Graphviz (skipped where `dot` is missing; install with `apt-get install -y graphviz`)."""

import re
import shutil

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import viz

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` not installed (apt-get install -y graphviz)")

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$")


def parse(dot):
    """(labels by node id with lines split, shapes by node id, edges as (tail, head))."""
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    labels, kinds, edges = {}, {}, []
    for line in dot.splitlines():
        node = NODE.match(line)
        if node:
            labels[node.group(1)] = node.group(2).split("\\n")
            kinds[node.group(1)] = re.search(r"shape=(\w+)", node.group(3)).group(1)
            continue
        edge = EDGE.match(line)
        if edge:
            edges.append((edge.group(1), edge.group(2)))
    for tail, head in edges:
        assert tail in labels and head in labels, f"edge {tail}->{head} names an undeclared node"
    return labels, kinds, edges


def by_first_line(labels, text):
    return [node for node, lines in labels.items() if lines[0] == text]


def _article_function(device):
    x = gg.tensor(1.5, device=device, requires_grad=True)
    y = gg.tensor(0.5, device=device, requires_grad=True)
    x.name, y.name = "x", "y"
    return x, y, 1 + x + (x * y).sin().exp()


def test_graph_of_the_article_function(device):
    _x, _y, f = _article_function(device)
    labels, kinds, edges = parse(viz.to_dot(f))
    ops = sorted(lines[0] for node, lines in labels.items() if kinds[node] == "box")
    assert ops == ["add", "add", "exp", "mul", "sin"]
    (mul,), (sin,), (exp,) = by_first_line(labels, "mul"), by_first_line(labels, "sin"), by_first_line(labels, "exp")
    (leaf_x,), (leaf_y,) = by_first_line(labels, "x"), by_first_line(labels, "y")
    assert labels[leaf_x] == ["x", "() float32"] and kinds[leaf_x] == "ellipse"
    assert labels[mul] == ["mul", "() float32"]
    # Data flows leaves -> mul -> sin -> exp -> add -> output; x also feeds the first add.
    assert {(leaf_x, mul), (leaf_y, mul), (mul, sin), (sin, exp)} <= set(edges)
    first_add = [a for a in by_first_line(labels, "add") if (leaf_x, a) in edges]
    assert len(first_add) == 1
    (output,) = by_first_line(labels, "output")
    (last_add,) = [tail for tail, head in edges if head == output]
    assert (exp, last_add) in edges and (first_add[0], last_add) in edges
    assert len(edges) == 8


def test_shapes_dtypes_and_parameter_names_of_an_mlp(device):
    rng = np.random.default_rng(0)
    w1 = gg.tensor(rng.standard_normal((5, 3)), device=device, requires_grad=True)   # float64
    w2 = gg.tensor(rng.standard_normal((1, 5)), device=device, requires_grad=True)
    x = gg.tensor(rng.standard_normal((4, 3)), device=device)
    loss = ((x @ w1.T).tanh() @ w2.T).pow(2).mean()
    labels, kinds, _edges = parse(viz.to_dot(loss, params={"layer1.weight": w1, "layer2.weight": w2}))
    assert ["layer1.weight", "(5, 3) float64"] in labels.values()
    assert ["layer2.weight", "(1, 5) float64"] in labels.values()
    assert ["tanh", "(4, 5) float64"] in labels.values()
    assert ["mean", "() float64"] in labels.values()
    matmul_shapes = sorted(labels[n][1] for n in by_first_line(labels, "matmul"))
    assert matmul_shapes == ["(4, 1) float64", "(4, 5) float64"]
    # The constant input x is not a leaf of the graph: only the two named parameters are ellipses.
    leaves = [n for n, k in kinds.items() if k == "ellipse" and labels[n][0] != "output"]
    assert len(leaves) == 2


def test_params_from_a_module_like_object_and_tensor_names(device):
    class Model:
        def __init__(self):
            self.weight = gg.ones(2, 2, device=device, requires_grad=True)
            self.bias = gg.zeros(2, device=device, requires_grad=True)

        def named_parameters(self):
            return iter([("weight", self.weight), ("bias", self.bias)])

    model = Model()
    extra = gg.ones(2, device=device, requires_grad=True)
    extra.name = "scale"
    out = (model.weight @ extra + model.bias).sum()
    labels, _, _ = parse(viz.to_dot(out, params=model))
    firsts = {lines[0] for lines in labels.values()}
    assert {"weight", "bias", "scale"} <= firsts
    unnamed = gg.ones(2, device=device, requires_grad=True)
    labels, _, _ = parse(viz.to_dot((unnamed * 2).sum()))
    assert ["leaf", "(2,) float32"] in labels.values()


def test_derivative_graph_from_create_graph(device):
    x, y, f = _article_function(device)
    (dfdx,) = gg.grad(f, x, create_graph=True)
    labels, kinds, _edges = parse(viz.to_dot(dfdx))
    ops = {lines[0] for node, lines in labels.items() if kinds[node] == "box"}
    assert "cos" in ops              # d sin / du = cos u appears only in the derivative's graph
    assert {"x", "y"} <= {lines[0] for lines in labels.values()}
    # And it is the graph of a function that can be differentiated again.
    (d2,) = gg.grad(dfdx, y)
    assert np.isfinite(d2.item())


def test_show_saved_draws_what_backward_keeps(device):
    a = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    out = (a * a).exp().sum()
    plain = parse(viz.to_dot(out))[0]
    labels, kinds, _edges = parse(viz.to_dot(out, show_saved=True))
    saved = [n for n, k in kinds.items() if k == "note"]
    assert saved and len(labels) == len(plain) + len(saved)
    assert any(labels[n][0].startswith("saved") and labels[n][1] == "(2,) float32" for n in saved)


def test_deep_graph_is_walked_without_recursion():
    x = gg.tensor([1.0], requires_grad=True)
    h = x
    depth = 5000
    for _ in range(depth):
        h = h * 1.0001
    labels, _kinds, edges = parse(viz.to_dot(h))
    assert len(by_first_line(labels, "mul")) == depth
    assert len(edges) == depth + 1


def test_several_outputs_a_leaf_and_a_constant():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    labels, _, edges = parse(viz.to_dot([x.sin(), x.cos()]))
    assert {"output 0", "output 1", "sin", "cos", "leaf"} <= {lines[0] for lines in labels.values()}
    labels, _, edges = parse(viz.to_dot(x))
    assert len(edges) == 1       # the leaf drawn as its own output
    labels, _, edges = parse(viz.to_dot(gg.ones(3), name="constant"))
    assert list(labels.values()) == [["constant", "(3,) float32"]] and not edges


def test_checkpoint_appears_as_one_node():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    y = gg.checkpoint(lambda h: h.sin().exp(), x).sum()
    labels, _, _ = parse(viz.to_dot(y))
    firsts = [lines[0] for lines in labels.values()]
    assert "Checkpoint" in firsts and "sin" not in firsts


def test_labels_are_escaped():
    x = gg.tensor([1.0], requires_grad=True)
    x.name = 'say "hi"\\'
    dot = viz.to_dot(x * 2)
    labels, _, _ = parse(dot)
    assert any(lines[0] == 'say \\"hi\\"\\\\' for lines in labels.values())


@needs_dot
@pytest.mark.parametrize("suffix,magic", [("png", b"\x89PNG"), ("svg", b"<svg")])
def test_render_writes_an_image(tmp_path, suffix, magic):
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    path = tmp_path / "sub" / f"graph.{suffix}"
    assert viz.render((x * x).sum(), path) == str(path)
    content = path.read_bytes()
    assert magic in content[:400]


def test_render_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    x = gg.tensor([1.0], requires_grad=True)
    with pytest.raises(viz.GraphvizNotFoundError, match="apt-get install -y graphviz") as caught:
        viz.render(x * 2, tmp_path / "g.png")
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, gg.GpugradError)
    # The DOT text itself needs no Graphviz.
    viz.render(x * 2, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_render_rejects_an_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        viz.render(gg.tensor([1.0], requires_grad=True) * 2, tmp_path / "graph.bmp")


def test_parameters_named_by_a_gg_nn_module():
    model = gg.nn.Sequential(gg.nn.Linear(3, 4), gg.nn.Tanh(), gg.nn.Linear(4, 1))
    loss = model(gg.randn(5, 3)).pow(2).mean()
    labels, kinds, _ = parse(viz.to_dot(loss, params=model))
    leaves = sorted(tuple(labels[n]) for n, k in kinds.items() if k == "ellipse" and labels[n][0] != "output")
    assert leaves == [("0.bias", "(4,) float32"), ("0.weight", "(4, 3) float32"),
                      ("2.bias", "(1,) float32"), ("2.weight", "(1, 4) float32")]
