"""Data-parallel training with gg.distributed: a small MLP on random data.

    mpiexec -n 2 python examples/train_ddp.py          # two replicas, each on half of every epoch
    python examples/train_ddp.py                       # the same script as one plain process

Every rank builds the same dataset, takes its own share of each epoch through
DistributedSampler, and DistributedDataParallel averages the gradients in
``backward``, so the replicas take identical steps.  At the end the script
checks that: it gathers every rank's parameters and asserts they are equal.
(As root, Open MPI wants ``mpiexec --allow-run-as-root``; on a machine with
fewer cores than ranks, ``--oversubscribe``.)
"""
import argparse
import time

import numpy as np

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn
import gpugrad.nn.functional as F


def make_data(samples=512, features=20, classes=4, seed=0):
    """A fixed random classification problem: labels from a random linear teacher."""
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((samples, features)).astype(np.float32)
    teacher = rng.standard_normal((features, classes)).astype(np.float32)
    labels = (inputs @ teacher).argmax(axis=1)
    return gg.data.TensorDataset(gg.tensor(inputs), gg.tensor(labels))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    device = gg.get_default_device()              # with NCCL: this rank's own GPU

    gg.manual_seed(1234 + rank)                   # different on purpose: DDP copies rank 0's weights
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4)).to(device)
    model = dist.DistributedDataParallel(model)
    optimizer = gg.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    dataset = make_data()
    sampler = dist.DistributedSampler(dataset, shuffle=True, seed=0)
    loader = gg.data.DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, device=device)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)                  # a new split every epoch, agreed by all ranks
        total, batches = 0.0, 0
        for inputs, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), labels)
            loss.backward()                       # gradients averaged over the ranks here
            optimizer.step()
            total += loss.item()
            batches += 1
        # The mean loss over every rank's batches: one all-reduce of two numbers.
        summary = dist.all_reduce(gg.tensor([total, float(batches)], dtype=gg.float64), op="sum")
        global_loss = summary[0].item() / summary[1].item()
        print(f"rank {rank}/{world} epoch {epoch}: local loss {total / batches:.4f}, "
              f"mean over ranks {global_loss:.4f}", flush=True)

    # Every replica must hold exactly the same weights.
    flat = gg.cat([p.detach().reshape(-1) for p in model.parameters()])
    copies = [gg.zeros_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    for other in copies[1:]:
        assert np.array_equal(copies[0].numpy(), other.numpy()), "replicas diverged"
    with gg.no_grad():
        inputs, labels = dataset.tensors
        accuracy = (model(inputs.to(device)).argmax(dim=1) == labels.to(device)).float().mean().item()
    if rank == 0:
        where = f"{world} ranks" if world > 1 else "a world of 1 (launch with mpiexec -n N for more)"
        print(f"replicas identical across {where}; backend {dist.get_backend()}; train accuracy {accuracy:.3f}; "
              f"{time.perf_counter() - start:.2f} s", flush=True)


if __name__ == "__main__":
    main()
