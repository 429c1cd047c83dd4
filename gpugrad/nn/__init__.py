"""``gg.nn``: modules, layers, losses, initialisation and gradient utilities, PyTorch's names.

>>> import gpugrad as gg
>>> model = gg.nn.Sequential(gg.nn.Linear(4, 16), gg.nn.ReLU(), gg.nn.Linear(16, 3))
>>> loss = gg.nn.CrossEntropyLoss()(model(gg.randn(8, 4)), gg.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
>>> loss.backward()
>>> model[0].weight.grad.shape
Size([16, 4])
"""

from . import functional, init, utils
from .containers import Flatten, Identity, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential, Unflatten
from .layers import (ELU, GELU, GRU, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss,
                     BCEWithLogitsLoss, Conv1d, Conv2d, CrossEntropyLoss, Dropout, Embedding, L1Loss, LayerNorm,
                     LeakyReLU, Linear, LogSoftmax, MaxPool1d, MaxPool2d, Mish, MSELoss, MultiheadAttention, NLLLoss,
                     ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh)
from .layers import (LSTM, RNN, ConvTranspose1d, ConvTranspose2d, Dropout2d, GroupNorm, GRUCell, Hardswish,
                     InstanceNorm1d, InstanceNorm2d, LSTMCell, PReLU, RMSNorm, RNNCell, Transformer,
                     TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer,
                     Upsample)
from .module import IncompatibleKeys, Module, Parameter, StateDictError

__all__ = ["functional", "init", "utils", "Module", "Parameter", "StateDictError", "IncompatibleKeys",
           "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Identity", "Flatten",
           "Unflatten", "Linear", "Conv1d",
           "Conv2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "MaxPool1d", "MaxPool2d", "AvgPool1d",
           "AvgPool2d", "AdaptiveAvgPool2d", "Embedding", "GRU", "MultiheadAttention", "ReLU", "LeakyReLU", "ELU",
           "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus", "Mish", "Softmax", "LogSoftmax", "CrossEntropyLoss",
           "MSELoss", "L1Loss", "BCEWithLogitsLoss", "BCELoss", "NLLLoss",
           "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "Transformer", "TransformerDecoder",
           "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer", "ConvTranspose1d",
           "ConvTranspose2d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "RMSNorm", "Dropout2d", "Hardswish",
           "PReLU", "Upsample"]
