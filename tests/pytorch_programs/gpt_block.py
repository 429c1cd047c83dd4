# A GPT-style decoder in the minGPT/nanoGPT manner: causal self-attention with a
# registered tril mask and masked_fill(-inf), pre-LayerNorm blocks with a GELU MLP,
# weight tying, AdamW, then generation with temperature, top-k and multinomial.
import math

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

torch.manual_seed(1337)
block_size, vocab_size, n_embd, n_head, n_layer = 16, 12, 32, 4, 2


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(0.0)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                             .view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(n_embd, dim=2)
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        att = self.attn_dropout(att)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention()
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.ModuleDict(dict(
            c_fc=nn.Linear(n_embd, 4 * n_embd),
            c_proj=nn.Linear(4 * n_embd, n_embd),
            act=nn.GELU(),
        ))
        m = self.mlp
        self.mlpf = lambda x: m.c_proj(m.act(m.c_fc(x)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlpf(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block() for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight   # weight tying

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long).unsqueeze(0)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, do_sample=False):
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= block_size else idx[:, -block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, top_k)
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)
            if do_sample:
                idx_next = torch.multinomial(probs, num_samples=1)
            else:
                _, idx_next = torch.topk(probs, k=1, dim=-1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


model = GPT()
rng = np.random.default_rng(0)
with torch.no_grad():
    for pn, p in model.named_parameters():
        if pn.endswith("c_proj.weight"):
            std = 0.02 / math.sqrt(2 * n_layer)
        elif p.dim() >= 2:
            std = 0.02
        elif pn.endswith("bias"):
            p.zero_()
            continue
        else:
            continue   # LayerNorm scales stay at one
        p.copy_(torch.from_numpy(rng.normal(0.0, std, tuple(p.shape)).astype(np.float32)))
n_params = sum(p.numel() for p in model.parameters())
print(f"number of parameters: {n_params / 1e3:.2f}K")

# Task: continue the repeating sequence 0 1 2 ... 11 0 1 2 ...
starts = rng.integers(0, vocab_size, 16)
seq = (starts[:, None] + np.arange(block_size + 1)[None, :]) % vocab_size
x = torch.tensor(seq[:, :-1])
y = torch.tensor(seq[:, 1:])

decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW([
    {"params": decay, "weight_decay": 0.1},
    {"params": no_decay, "weight_decay": 0.0},
], lr=3e-3, betas=(0.9, 0.95))

model.train()
for it in range(30):
    logits, loss = model(x, y)
    model.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if it % 10 == 0 or it == 29:
        print(f"iter {it}: loss {loss.item():.4f}")

model.eval()
context = torch.tensor([[3, 4, 5]], dtype=torch.long)
greedy = model.generate(context, 8, do_sample=False)
print("greedy:", greedy[0].tolist())

# Sampled tokens depend on the random stream, so print what does not: the shape,
# and that every sample is inside the top-k of its step.
torch.manual_seed(0)
sampled = model.generate(context, 8, temperature=0.8, top_k=3, do_sample=True)
print("sampled shape:", list(sampled.shape))
logits, _ = model(sampled[:, :-1])
topk_ids = torch.topk(logits[0, 2:, :], 3, dim=-1).indices
inside = (topk_ids == sampled[0, 3:].unsqueeze(-1)).any(dim=-1)
print("every sample in its top-3:", bool(inside.all()))
greedy_logits, _ = model(greedy[:, :-1])
values, indices = torch.sort(greedy_logits[0, -1], descending=True)
print("last-step ranking:", indices[:4].tolist(), f"{values[0].item():.4f}")
