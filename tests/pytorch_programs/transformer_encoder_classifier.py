# A sequence classifier on nn.TransformerEncoder: token Embedding scaled by
# sqrt(d_model), the tutorial's sinusoidal PositionalEncoding buffer, a padding
# mask, mean pooling over real tokens, CrossEntropyLoss.
import math

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.0, max_len=64):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0)]
        return self.dropout(x)


class TransformerClassifier(nn.Module):
    def __init__(self, ntoken, d_model, nhead, d_hid, nlayers, nclass):
        super().__init__()
        self.pos_encoder = PositionalEncoding(d_model)
        encoder_layers = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout=0.0)
        self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers, enable_nested_tensor=False)
        self.embedding = nn.Embedding(ntoken, d_model)
        self.d_model = d_model
        self.classifier = nn.Linear(d_model, nclass)

    def forward(self, src, padding_mask):
        src = self.embedding(src) * math.sqrt(self.d_model)      # (seq, batch, d_model)
        src = self.pos_encoder(src)
        output = self.transformer_encoder(src, src_key_padding_mask=padding_mask)
        keep = (~padding_mask).t().unsqueeze(-1).float()
        pooled = (output * keep).sum(0) / keep.sum(0)
        return self.classifier(pooled)


rng = np.random.default_rng(0)
ntokens, seq_len, n = 20, 12, 64
tokens = rng.integers(1, ntokens, (n, seq_len))
lengths = rng.integers(6, seq_len + 1, n)
for row, length in zip(tokens, lengths):
    row[length:] = 0                                            # 0 is <pad>
labels = (np.array([(row[:l] > 10).sum() for row, l in zip(tokens, lengths)]) > lengths / 2).astype(np.int64)
dataset = TensorDataset(torch.tensor(tokens), torch.tensor(labels))
loader = DataLoader(dataset, batch_size=16)

model = TransformerClassifier(ntokens, 16, 2, 32, 2, 2)
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() > 1:
            p.copy_(torch.tensor(rng.uniform(-1, 1, tuple(p.shape)) * math.sqrt(3 / p.shape[-1]),
                                 dtype=torch.float32))
        elif name.endswith("bias"):                            # Linear biases start random too
            p.copy_(torch.tensor(rng.uniform(-0.1, 0.1, tuple(p.shape)), dtype=torch.float32))
print(len(model.state_dict()), "tensors;", [k for k in model.state_dict() if "layers.0" in k][:4])

criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    model.train()
    total = 0.0
    for src, y in loader:
        src = src.t()                                           # (seq, batch)
        mask = (src == 0).t()
        optimizer.zero_grad()
        loss = criterion(model(src, mask), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        total += loss.item() * y.size(0)
    model.eval()
    with torch.no_grad():
        src = torch.tensor(tokens).t()
        logits = model(src, (src == 0).t())
        acc = (logits.argmax(dim=1) == torch.tensor(labels)).float().mean().item()
    print(f"epoch {epoch + 1}: train loss {total / n:.4f}, accuracy {acc:.4f}")
