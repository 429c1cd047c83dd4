# The "Quickstart" style: an MLP on 28x28 inputs with nn.Flatten, CrossEntropyLoss,
# DataLoader batches, a train loop and a test loop.
import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"Using {device} device")


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 64),
            nn.ReLU(),
            nn.Linear(64, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


rng = np.random.default_rng(0)
centres = rng.standard_normal((10, 28, 28)).astype(np.float32)


def dataset(n):
    labels = rng.integers(0, 10, n)
    images = centres[labels] + rng.standard_normal((n, 28, 28)).astype(np.float32) * 2.0
    return TensorDataset(torch.tensor(images), torch.tensor(labels))


train_dataloader = DataLoader(dataset(512), batch_size=64)
test_dataloader = DataLoader(dataset(256), batch_size=64)

for X, y in test_dataloader:
    print(f"Shape of X [N, H, W]: {list(X.shape)}")
    print(f"Shape of y: {list(y.shape)} {str(y.dtype).replace('torch.', '')}")
    break

model = NeuralNetwork().to(device)
with torch.no_grad():
    for name, p in model.named_parameters():
        fan_in = p[0].numel() if p.dim() > 1 else p.numel()
        p.copy_(torch.tensor(rng.uniform(-1, 1, tuple(p.shape)) / math.sqrt(fan_in), dtype=torch.float32))
print(sum(p.numel() for p in model.parameters() if p.requires_grad), "trainable parameters")

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)
        pred = model(X)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 4 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")


epochs = 3
for t in range(epochs):
    print(f"Epoch {t+1}\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    test(test_dataloader, model, loss_fn)
print("Done!")
