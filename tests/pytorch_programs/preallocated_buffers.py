# Preallocated output buffers with out=: a hand-written softmax-regression training loop
# that allocates its work tensors once and reuses them every step (the pattern of
# PyTorch's performance notes), plus the out= forms of cat/stack, max(dim) and sort.
import numpy as np
import torch

rng = np.random.default_rng(0)
n_samples, n_features, n_classes = 256, 8, 3
centers = rng.normal(0.0, 2.0, (n_classes, n_features)).astype(np.float32)
labels_np = rng.integers(0, n_classes, n_samples)
x = torch.tensor(centers[labels_np] + rng.normal(0.0, 1.0, (n_samples, n_features)).astype(np.float32))
labels = torch.tensor(labels_np)
one_hot = torch.zeros(n_samples, n_classes)
one_hot[torch.arange(n_samples), labels] = 1.0

w = torch.tensor(rng.normal(0.0, 0.1, (n_features, n_classes)).astype(np.float32))
b = torch.zeros(n_classes)

# The buffers: allocated once, written by out= every step.
logits = torch.empty(n_samples, n_classes)
probs = torch.empty(n_samples, n_classes)
log_probs = torch.empty(n_samples, n_classes)
residual = torch.empty(n_samples, n_classes)
grad_w = torch.empty(n_features, n_classes)
grad_b = torch.empty(n_classes)
loss = torch.empty(())
best = torch.empty(0)                          # zero elements: takes the right shape silently
predicted = torch.empty(0, dtype=torch.long)
correct = torch.empty(0, dtype=torch.bool)

learning_rate = 0.1
with torch.no_grad():
    for step in range(60):
        torch.addmm(b, x, w, out=logits)
        torch.softmax(logits, dim=1, out=probs)
        torch.log_softmax(logits, dim=1, out=log_probs)
        torch.mul(log_probs, one_hot, out=residual)
        torch.sum(residual, (0, 1), out=loss)
        torch.div(loss, -n_samples, out=loss)          # the loss buffer as both input and out
        torch.sub(probs, one_hot, out=residual)
        torch.mm(x.t(), residual, out=grad_w)
        torch.sum(residual, 0, out=grad_b)
        w.sub_(grad_w, alpha=learning_rate / n_samples)
        b.sub_(grad_b, alpha=learning_rate / n_samples)
        if step % 15 == 14:
            torch.max(probs, 1, out=(best, predicted))
            torch.eq(predicted, labels, out=correct)
            print(f"step {step + 1:2d}  loss {loss.item():.4f}  accuracy {correct.float().mean().item():.4f}"
                  f"  mean confidence {best.mean().item():.4f}")

print("buffer shapes:", list(logits.shape), list(best.shape), list(predicted.shape), predicted.dtype == torch.long)

# An integer result written into a float buffer is cast; the version counter records each write.
counts = torch.zeros(n_classes)
version = counts._version
for c in range(n_classes):
    torch.sum(torch.eq(labels, c), 0, keepdim=True, out=counts[c:c + 1])
print("class counts:", counts.tolist(), "writes:", counts._version - version)

# Joining into preallocated memory, and a sort into a (values, indices) pair.
rows = torch.empty(2 * n_classes, n_features)
torch.cat([w.t(), w.t() * 2], dim=0, out=rows)
stacked = torch.empty(2, n_features, n_classes)
torch.stack([w, -w], out=stacked)
print("cat:", list(rows.shape), f"{rows.sum().item():.4f}", "stack:", list(stacked.shape),
      f"{stacked.abs().sum().item():.4f}")
values, order = torch.empty(0), torch.empty(0, dtype=torch.long)
torch.sort(b, descending=True, out=(values, order))
print("bias sorted:", [round(v, 4) for v in values.tolist()], "order:", order.tolist())
cumulative = torch.empty(n_features)
torch.cumsum(w[:, 0], 0, out=cumulative)
print("cumulative:", [round(v, 4) for v in cumulative.tolist()])

# out= is for tensors outside autograd: PyTorch refuses it when an input requires grad.
w.requires_grad_(True)
try:
    torch.mm(x, w, out=logits)
except RuntimeError as error:
    print("autograd refused:", "don't support automatic differentiation" in str(error))
