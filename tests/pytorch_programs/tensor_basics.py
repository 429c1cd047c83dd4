# The "Tensors" tutorial: creation, attributes, indexing, joining, arithmetic,
# in-place ops and the NumPy bridge.
import numpy as np
import torch

data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
np_array = np.array(data)
x_np = torch.from_numpy(np_array)
x_ones = torch.ones_like(x_data)
print(f"Ones Tensor: {x_ones.tolist()}")
x_rand = torch.rand_like(x_data, dtype=torch.float)
print(f"Random Tensor is in [0, 1): {bool(((x_rand >= 0) & (x_rand < 1)).all())}")

shape = (2, 3,)
zeros_tensor = torch.zeros(shape)
print(f"Zeros Tensor: {zeros_tensor.tolist()}")
tensor = torch.ones(3, 4)
print(f"Shape of tensor: {tuple(tensor.shape)}, size(1) = {tensor.size(1)}, numel = {tensor.numel()}")
print(f"Device tensor is stored on: {tensor.device}")
print(f"Is floating point: {tensor.is_floating_point()}, dim: {tensor.dim()}")

tensor = torch.ones(4, 4)
tensor[:, 1] = 0
print(f"First row: {tensor[0].tolist()}")
print(f"Last column: {tensor[..., -1].tolist()}")
t1 = torch.cat([tensor, tensor, tensor], dim=1)
print("cat:", list(t1.shape), "stack:", list(torch.stack([tensor, tensor]).shape))

y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)
y3 = torch.zeros_like(y1)
torch.matmul(tensor, tensor.T, out=y3)
z1 = tensor * tensor
z2 = tensor.mul(tensor)
print("matmul agree:", torch.equal(y1, y2) and torch.equal(y1, y3), "mul agree:", torch.allclose(z1, z2))
agg = tensor.sum()
agg_item = agg.item()
print(agg_item, type(agg_item).__name__)
tensor.add_(5)
print("after add_:", tensor[0].tolist())

t = torch.ones(5)
n = t.numpy()
t.add_(1)
print(f"n shares memory: {n.tolist()}")
n = np.ones(5)
t = torch.from_numpy(n)
np.add(n, 1, out=n)
print(f"t shares memory: {t.tolist()}")

a = torch.arange(12).reshape(3, 4)
print("reshape/view:", a.view(4, 3)[1].tolist(), a.t().contiguous()[0].tolist(), a.flatten()[-1].item())
print("argmax/max:", a.argmax().item(), a.max(dim=1).values.tolist(), a.float().mean().item())
print("where:", torch.where(a > 5, a, torch.zeros_like(a))[1].tolist())
print("squeeze:", list(torch.zeros(1, 3, 1).squeeze().shape), list(torch.zeros(3).unsqueeze(0).shape))
print("dtype cast:", a.to(torch.float32).dtype == torch.float32, a.long().dtype == torch.int64)
