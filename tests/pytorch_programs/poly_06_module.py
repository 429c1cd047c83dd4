# The fit as a custom nn.Module with four scalar Parameters, trained by SGD.
import math

import numpy as np
import torch


class Polynomial3(torch.nn.Module):
    def __init__(self, init):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(init[0], dtype=torch.float32))
        self.b = torch.nn.Parameter(torch.tensor(init[1], dtype=torch.float32))
        self.c = torch.nn.Parameter(torch.tensor(init[2], dtype=torch.float32))
        self.d = torch.nn.Parameter(torch.tensor(init[3], dtype=torch.float32))

    def forward(self, x):
        return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3

    def string(self):
        return f"y = {self.a.item():.4f} + {self.b.item():.4f} x + {self.c.item():.4f} x^2 + {self.d.item():.4f} x^3"


x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

model = Polynomial3(np.random.default_rng(0).standard_normal(4))

criterion = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
for t in range(2000):
    y_pred = model(x)
    loss = criterion(y_pred, y)
    if t % 400 == 399:
        print(t, f"{loss.item():.4f}")

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

print(f"Result: {model.string()}")
print(sum(p.numel() for p in model.parameters()), [name for name, _ in model.named_parameters()])
