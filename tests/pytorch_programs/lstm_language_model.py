# A character-level LSTM language model: Embedding -> 2-layer LSTM (batch_first)
# -> Linear, truncated backprop through time with the hidden state detached
# between chunks, gradient clipping, perplexity.
import math

import numpy as np
import torch
import torch.nn as nn

text = ("the quick brown fox jumps over the lazy dog. " * 12
        + "pack my box with five dozen liquor jugs. " * 12)
chars = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for ch, i in stoi.items()}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
print(f"{len(text)} characters, {len(chars)} unique")


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, embed_size=16, hidden_size=32, num_layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, h):
        x = self.embed(x)
        out, (h, c) = self.lstm(x, h)
        out = out.reshape(out.size(0) * out.size(1), out.size(2))
        out = self.linear(out)
        return out, (h, c)


def detach(states):
    return [state.detach() for state in states]


model = CharLSTM(len(chars))
rng = np.random.default_rng(0)
state = {}
for name, tensor in model.state_dict().items():
    bound = 1.0 / math.sqrt(32)
    state[name] = torch.tensor(rng.uniform(-bound, bound, tuple(tensor.shape)), dtype=torch.float32)
model.load_state_dict(state)
print(list(model.state_dict().keys())[1:5])

batch_size, seq_length, num_layers, hidden_size = 4, 25, 2, 32
num_batches = data.size(0) // batch_size
ids = data[:num_batches * batch_size].view(batch_size, -1)

criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

for epoch in range(3):
    states = (torch.zeros(num_layers, batch_size, hidden_size),
              torch.zeros(num_layers, batch_size, hidden_size))
    total, count = 0.0, 0
    for i in range(0, ids.size(1) - seq_length, seq_length):
        inputs = ids[:, i:i + seq_length]
        targets = ids[:, (i + 1):(i + 1) + seq_length]
        states = detach(states)
        outputs, states = model(inputs, states)
        loss = criterion(outputs, targets.reshape(-1))
        model.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        total += loss.item()
        count += 1
    print(f"Epoch [{epoch + 1}/3], Loss: {total / count:.4f}, Perplexity: {math.exp(total / count):5.2f}")

# Greedy continuation: the argmax at every step needs no random numbers.
model.eval()
with torch.no_grad():
    state = (torch.zeros(num_layers, 1, hidden_size), torch.zeros(num_layers, 1, hidden_size))
    inp = torch.tensor([[stoi["t"]]])
    out_chars = ["t"]
    for _ in range(30):
        output, state = model(inp, state)
        word_id = output.argmax(dim=-1).item()
        out_chars.append(itos[word_id])
        inp.fill_(word_id)
print("sample:", repr("".join(out_chars)))
