# torch.autograd beyond backward(): grad with create_graph for a second
# derivative, a custom Function with ctx.save_for_backward, and
# torch.autograd.functional.jacobian / hessian / vjp / jvp.
import torch
from torch.autograd.functional import hessian, jacobian, jvp, vjp


class MyExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, i):
        result = i.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        result, = ctx.saved_tensors
        return grad_output * result


x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
y = MyExp.apply(x).sum()
y.backward()
print("custom exp grad:", [f"{v:.4f}" for v in x.grad.tolist()])

x = torch.tensor(1.5, requires_grad=True)
f = x ** 3 + torch.sin(x)
(df,) = torch.autograd.grad(f, x, create_graph=True)
(d2f,) = torch.autograd.grad(df, x)
print(f"f'(1.5) = {df.item():.4f}, f''(1.5) = {d2f.item():.4f}")


def g(v):
    return torch.stack([v[0] * v[1], v[1].sin(), (v ** 2).sum()])


v = torch.tensor([1.0, 2.0])
J = jacobian(g, v)
print("jacobian:", [[round(a, 4) for a in row] for row in J.tolist()])
H = hessian(lambda v: (v[0] ** 2) * v[1] + v[1] ** 3, v)
print("hessian:", [[round(a, 4) for a in row] for row in H.tolist()])
out, vjp_value = vjp(g, v, torch.tensor([1.0, 0.0, 1.0]))
print("vjp:", [round(a, 4) for a in vjp_value.tolist()])
out, jvp_value = jvp(g, v, torch.tensor([0.0, 1.0]))
print("jvp:", [round(a, 4) for a in jvp_value.tolist()])

w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
loss = (w * w).sum()
print("grad_fn:", loss.grad_fn.name())
loss.backward()
print("w.grad:", w.grad.tolist(), "requires_grad:", loss.requires_grad)
with torch.no_grad():
    z = w * 2
print("under no_grad:", z.requires_grad)
