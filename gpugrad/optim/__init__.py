"""Optimizers and learning-rate schedules (``gg.optim``), PyTorch-compatible.

Examples
--------
>>> import gpugrad as gg
>>> w = gg.tensor([3.0], requires_grad=True)
>>> opt = gg.optim.SGD([w], lr=0.25)
>>> for _ in range(2):
...     opt.zero_grad()
...     w.grad = gg.tensor([2.0]) * w.detach()     # gradient of w**2
...     _ = opt.step()
>>> w.numpy().tolist()
[0.75]
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .lbfgs import LBFGS
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "LBFGS",
           "lr_scheduler"]
