"""The layer families of ``gg.nn``, one file each; everything public is re-exported by ``gg.nn``."""

from .activation import ELU, GELU, LeakyReLU, LogSoftmax, Mish, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .attention import MultiheadAttention
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from .recurrent import GRU
from .recurrent_more import LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                          TransformerEncoderLayer)
from .conv_transpose import ConvTranspose1d, ConvTranspose2d
from .norm_more import GroupNorm, InstanceNorm1d, InstanceNorm2d, RMSNorm
from .misc_more import Dropout2d, Hardswish, PReLU, Upsample

__all__ = ["ELU", "GELU", "LeakyReLU", "LogSoftmax", "Mish", "ReLU", "Sigmoid", "SiLU", "Softmax", "Softplus",
           "Tanh", "MultiheadAttention", "Conv1d", "Conv2d", "Dropout", "Embedding", "Linear", "BCELoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss", "BatchNorm1d", "BatchNorm2d",
           "LayerNorm", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d", "GRU",
           "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "Transformer", "TransformerDecoder",
           "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer", "ConvTranspose1d",
           "ConvTranspose2d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "RMSNorm", "Dropout2d", "Hardswish",
           "PReLU", "Upsample"]
