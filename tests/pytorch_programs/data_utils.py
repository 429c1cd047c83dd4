# torch.utils.data in the ways scripts use it: a map-style Dataset subclass,
# random_split, Subset, ConcatDataset, samplers, batch_sampler, drop_last and the
# default collate of (tensor, int) pairs. The random split itself depends on the
# random stream, so only its sizes and coverage are printed.
import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    SequentialSampler,
    Subset,
    TensorDataset,
    random_split,
)


class SquaresDataset(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        return torch.tensor([float(idx), float(idx) ** 2]), idx % 3


ds = SquaresDataset(10)
loader = DataLoader(ds, batch_size=4, shuffle=False)
for features, labels in loader:
    print(list(features.shape), labels.tolist(), features[:, 1].sum().item())
print("batches:", len(loader), "with drop_last:", len(DataLoader(ds, batch_size=4, drop_last=True)))

train_set, val_set = random_split(ds, [7, 3], generator=torch.Generator().manual_seed(42))
print("split sizes:", len(train_set), len(val_set))
print("split covers everything:", sorted(list(train_set.indices) + list(val_set.indices)) == list(range(10)))

sub = Subset(ds, [1, 3, 5])
print("subset:", [sub[i][1] for i in range(len(sub))])
combo = ConcatDataset([sub, TensorDataset(torch.arange(4.0).view(2, 2), torch.tensor([7, 8]))])
print("concat length:", len(combo), "last label:", int(combo[4][1]))

batches = list(BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=False))
print("batch sampler:", batches)
loader = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), batch_size=5, drop_last=True))
print("batch_sampler loader:", [labels.tolist() for _, labels in loader])

arrays = np.arange(12, dtype=np.float32).reshape(6, 2)
tds = TensorDataset(torch.from_numpy(arrays), torch.from_numpy(arrays.sum(1)))
x, y = next(iter(DataLoader(tds, batch_size=6)))
print("tensor dataset:", x.sum().item(), y.tolist())
