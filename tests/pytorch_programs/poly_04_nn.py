# The fit as an nn.Sequential: Linear(3, 1) on (x, x^2, x^3), updated by hand.
import math

import numpy as np
import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)

model = torch.nn.Sequential(
    torch.nn.Linear(3, 1),
    torch.nn.Flatten(0, 1),
)

# Copy in NumPy-drawn weights by name, the way weights move between programs.
rng = np.random.default_rng(0)
model.load_state_dict({
    "0.weight": torch.tensor(rng.uniform(-0.5, 0.5, (1, 3)), dtype=torch.float32),
    "0.bias": torch.tensor(rng.uniform(-0.5, 0.5, (1,)), dtype=torch.float32),
})

loss_fn = torch.nn.MSELoss(reduction="sum")

learning_rate = 1e-6
for t in range(2000):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    if t % 400 == 399:
        print(t, f"{loss.item():.4f}")

    model.zero_grad()
    loss.backward()

    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad

linear_layer = model[0]
print(f"Result: y = {linear_layer.bias.item():.4f} + {linear_layer.weight[:, 0].item():.4f} x"
      f" + {linear_layer.weight[:, 1].item():.4f} x^2 + {linear_layer.weight[:, 2].item():.4f} x^3")
print(list(model.state_dict().keys()))
