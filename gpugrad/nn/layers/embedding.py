"""``Embedding``: a lookup table of learned vectors, PyTorch's layout and N(0, 1) initialisation."""

from __future__ import annotations

from ...autograd import tape
from ...errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module, Parameter
from ._common import new_parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """Rows of ``weight`` (shape ``(num_embeddings, embedding_dim)``) picked by integer indices.

    The row at ``padding_idx`` starts at zero and receives no gradient.

    Examples
    --------
    >>> import gpugrad as gg
    >>> emb = gg.nn.Embedding(10, 3, padding_idx=0)
    >>> emb(gg.tensor([[0, 2], [4, 9]])).shape
    Size([2, 2, 3])
    >>> emb.weight[0].tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                                 f"({num_embeddings})")
            padding_idx = padding_idx % num_embeddings
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = new_parameter(num_embeddings, embedding_dim, device=device, dtype=dtype)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ShapeError(f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                                 f"{(num_embeddings, embedding_dim)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self):
        if self.padding_idx is not None:
            with tape.no_grad():
                self.weight.array[self.padding_idx] = 0
                self.weight._bump_version()

    def forward(self, input):
        options = {}
        if self.max_norm is not None:
            options.update(max_norm=self.max_norm, norm_type=self.norm_type)
        if self.scale_grad_by_freq:
            options["scale_grad_by_freq"] = True
        return F.embedding(input, self.weight, self.padding_idx, **options)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding holding ``embeddings`` (2-d); ``freeze=True`` makes it untrainable."""
        if embeddings.ndim != 2:
            raise ShapeError(f"Embedding.from_pretrained: embeddings must be 2-d, got shape {tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        return text
