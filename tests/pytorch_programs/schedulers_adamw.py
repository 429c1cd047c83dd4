# AdamW with a linear warm-up then cosine decay (SequentialLR of LinearLR and
# CosineAnnealingLR), a LambdaLR run and OneCycleLR, printing lr and loss.
import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, OneCycleLR, SequentialLR

rng = np.random.default_rng(0)
X = torch.tensor(rng.standard_normal((64, 5)), dtype=torch.float32)
y = X @ torch.tensor([[1.0], [-2.0], [0.5], [0.0], [3.0]]) + 0.1


def make_model():
    model = nn.Linear(5, 1)
    model.load_state_dict({"weight": torch.zeros(1, 5), "bias": torch.zeros(1)})
    return model


model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.01)
warmup = LinearLR(optimizer, start_factor=0.1, total_iters=3)
cosine = CosineAnnealingLR(optimizer, T_max=9)
scheduler = SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[3])
for epoch in range(12):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    optimizer.step()
    scheduler.step()
    print(f"epoch {epoch:2d} lr {scheduler.get_last_lr()[0]:.6f} loss {loss.item():.4f}")

model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
scheduler = LambdaLR(optimizer, lr_lambda=lambda epoch: 0.9 ** epoch)
for epoch in range(5):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    optimizer.step()
    scheduler.step()
print(f"LambdaLR: lr {optimizer.param_groups[0]['lr']:.6f} loss {loss.item():.4f}")

model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
scheduler = OneCycleLR(optimizer, max_lr=0.2, total_steps=10)
lrs = []
for step in range(10):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    optimizer.step()
    lrs.append(round(scheduler.get_last_lr()[0], 5))
    scheduler.step()
print("OneCycleLR lrs:", lrs)
print(f"OneCycleLR final loss {loss.item():.4f}")
