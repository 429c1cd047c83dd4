# pytorch/examples VAE on 784-dimensional inputs: encoder to (mu, logvar), the
# reparameterization trick, decoder, BCE + KL loss. The noise eps is drawn with
# NumPy and passed in, so both libraries see the same samples.
import math

import numpy as np
import torch
from torch import nn, optim
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc21 = nn.Linear(64, 8)
        self.fc22 = nn.Linear(64, 8)
        self.fc3 = nn.Linear(8, 64)
        self.fc4 = nn.Linear(64, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = torch.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


torch.manual_seed(1)
rng = np.random.default_rng(0)
model = VAE()
with torch.no_grad():
    for p in model.parameters():
        bound = 1 / math.sqrt(p.shape[-1]) if p.dim() > 1 else 0.05
        p.copy_(torch.tensor(rng.uniform(-bound, bound, tuple(p.shape)), dtype=torch.float32))
optimizer = optim.Adam(model.parameters(), lr=1e-3)

images = (rng.uniform(size=(128, 1, 28, 28)) < 0.3).astype(np.float32)   # binary "digits"
train_loader = DataLoader(TensorDataset(torch.from_numpy(images)), batch_size=32, shuffle=False)

for epoch in range(1, 4):
    model.train()
    train_loss = 0
    for batch_idx, (data,) in enumerate(train_loader):
        optimizer.zero_grad()
        eps = torch.from_numpy(rng.standard_normal((data.size(0), 8)).astype(np.float32))
        recon_batch, mu, logvar = model(data, eps)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    print(f"====> Epoch: {epoch} Average loss: {train_loss / len(train_loader.dataset):.4f}")

model.eval()
with torch.no_grad():
    sample = torch.from_numpy(rng.standard_normal((4, 8)).astype(np.float32))
    sample = model.decode(sample).cpu()
    print("decoded", list(sample.view(4, 1, 28, 28).size()), f"mean {sample.mean().item():.4f}")
