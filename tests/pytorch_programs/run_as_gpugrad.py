"""Run a PyTorch program with ``torch`` resolved to gpugrad by plain name aliasing.

    python tests/pytorch_programs/run_as_gpugrad.py PROGRAM.py [ARGS...]

A meta-path finder answers every import of ``torch`` or ``torch.<sub>`` with the
module ``gpugrad`` or ``gpugrad.<sub>``: the very same module objects, so
``import torch.nn as nn`` gives ``gpugrad.nn``. Nothing in the program is
rewritten or translated; a name gpugrad lacks fails exactly as it would for a
user who wrote ``import gpugrad as torch``.
"""

import importlib
import importlib.abc
import importlib.util
import runpy
import sys


class TorchAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve ``torch[.sub]`` to the already-importable ``gpugrad[.sub]``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        real_name = "gpugrad" + fullname[len("torch"):]
        if importlib.util.find_spec(real_name) is None:
            return None   # torch.<sub> that gpugrad lacks: the ordinary ModuleNotFoundError
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        # The real module itself, so attributes, classes and isinstance checks are gpugrad's.
        return importlib.import_module("gpugrad" + spec.name[len("torch"):])

    def exec_module(self, module):
        pass   # already executed under its own name


def main(argv):
    if len(argv) < 2:
        raise SystemExit("usage: run_as_gpugrad.py PROGRAM.py [ARGS...]")
    sys.meta_path.insert(0, TorchAlias())
    sys.argv = argv[1:]
    runpy.run_path(argv[1], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv)
