# pytorch/examples word_language_model: batchify a corpus, Embedding -> GRU ->
# Linear with tied weights, truncated BPTT with repackaged hidden state, and the
# example's own SGD update through p.data.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

words = ("the cat sat on the mat and the dog sat on the log <eos> "
         "a bird flew over the house and the cat saw the bird <eos> ").split() * 8
dictionary = {}
for w in words:
    dictionary.setdefault(w, len(dictionary))
ids = torch.tensor([dictionary[w] for w in words], dtype=torch.int64)
ntokens = len(dictionary)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data


bptt = 10


def get_batch(source, i):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(0.0)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.GRU(ninp, nhid, nlayers)
        self.decoder = nn.Linear(nhid, ntoken)
        self.decoder.weight = self.encoder.weight   # tie_weights
        self.nhid, self.nlayers = nhid, nlayers

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


train_data = batchify(ids, 4)
print("train_data", list(train_data.size()), "vocabulary", ntokens)
model = RNNModel(ntokens, 16, 16, 1)
rng = np.random.default_rng(0)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(rng.uniform(-0.1, 0.1, tuple(p.shape)).astype(np.float32)))
print([name for name, _ in model.named_parameters()])
criterion = nn.NLLLoss()
lr = 2.0

for epoch in range(1, 4):
    model.train()
    total_loss = 0.
    hidden = model.init_hidden(4)
    batches = 0
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
        batches += 1
    cur_loss = total_loss / batches
    print(f"| epoch {epoch:3d} | lr {lr:02.2f} | loss {cur_loss:5.2f} | ppl {math.exp(cur_loss):8.2f}")
print("tied:", model.decoder.weight is model.encoder.weight)
