# The "classifying names with a character-level RNN" tutorial, batched: one-hot
# letters into nn.RNN, the last hidden state into Linear + LogSoftmax, NLLLoss.
import string

import numpy as np
import torch
import torch.nn as nn

all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)
categories = ["English", "Italian", "Japanese"]
names = {
    "English": ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans"],
    "Italian": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano"],
    "Japanese": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito"],
}


def lineToTensor(line, length=10):
    tensor = torch.zeros(length, n_letters)
    for li, letter in enumerate(line[:length]):
        tensor[li][all_letters.find(letter)] = 1
    return tensor


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        output = self.h2o(hidden[0])
        output = self.softmax(output)
        return output


lines = [n for c in categories for n in names[c]]
labels = torch.tensor([categories.index(c) for c in categories for _ in names[c]])
batch = torch.stack([lineToTensor(n) for n in lines], dim=1)   # (seq, batch, letters)
print("batch", tuple(batch.shape), "labels", labels.tolist()[:7])

rnn = CharRNN(n_letters, 24, len(categories))
rng = np.random.default_rng(0)
rnn.load_state_dict({k: torch.tensor(rng.uniform(-0.2, 0.2, tuple(v.shape)), dtype=torch.float32)
                     for k, v in rnn.state_dict().items()})
print(list(rnn.state_dict()))

criterion = nn.NLLLoss()
optimizer = torch.optim.SGD(rnn.parameters(), lr=0.2)
for epoch in range(40):
    rnn.train()
    optimizer.zero_grad()
    output = rnn(batch)
    loss = criterion(output, labels)
    loss.backward()
    nn.utils.clip_grad_norm_(rnn.parameters(), 3)
    optimizer.step()
    if epoch % 10 == 9:
        print(f"epoch {epoch + 1} loss {loss.item():.4f}")

rnn.eval()
with torch.no_grad():
    output = rnn(lineToTensor("Tanaka").unsqueeze(1))
    top_n, top_i = output.topk(1)
    print("Tanaka ->", categories[top_i[0].item()], f"{top_n.item():.4f}")
    guesses = rnn(batch).argmax(1)
    print("train accuracy", (guesses == labels).float().mean().item())
