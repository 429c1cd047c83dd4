"""Run by tests/test_distributed.py under ``mpiexec -n 2``; each rank checks the collectives and DDP.

Exits non-zero (through a failed assert) on any rank when something is wrong;
prints ``rank R of W: ok`` when everything passed.  Not a pytest module.
"""
import sys

import numpy as np


def check_collectives(gg, dist, rank, world):
    ranks_sum = world * (world - 1) / 2
    for dtype in (gg.float32, gg.float64, gg.float16, gg.int64, gg.int32):
        t = gg.tensor([rank + 1, 10 * (rank + 1)], dtype=dtype)
        version = t._version
        dist.all_reduce(t, op="sum")
        expected = np.array([world + ranks_sum, 10 * (world + ranks_sum)], dtype=t.numpy().dtype)
        assert np.array_equal(t.numpy(), expected), (dtype, t)
        assert t._version == version + 1, "all_reduce must bump the version counter"
        t = gg.tensor([rank, -rank], dtype=dtype)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        assert t.tolist() == [world - 1, 0], (dtype, t)
        t = gg.tensor([rank, -rank], dtype=dtype)
        dist.all_reduce(t, op="min")
        assert t.tolist() == [0, -(world - 1)], (dtype, t)
    t = gg.tensor([float(rank), 1.0, 2.0 * rank])
    dist.all_reduce(t, op="mean")
    assert np.allclose(t.numpy(), [ranks_sum / world, 1.0, 2 * ranks_sum / world]), t
    flags = gg.tensor([rank == 0, False, True])
    dist.all_reduce(flags, op="sum")                 # logical or
    assert flags.tolist() == [True, False, True], flags
    # A non-contiguous view is reduced in place, writing through to its base.
    base = gg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) * (rank + 1))
    view = base.T
    dist.all_reduce(view, op="sum")
    assert np.array_equal(base.numpy(), np.arange(6, dtype=np.float32).reshape(2, 3) * (world + ranks_sum)), base
    # broadcast from the last rank, any dtype.
    src = world - 1
    for dtype in (gg.float32, gg.float16, gg.int64, gg.bool):
        t = gg.tensor([rank, rank + 1, 0], dtype=dtype)
        dist.broadcast(t, src=src)
        assert np.array_equal(t.numpy(), np.array([src, src + 1, 0]).astype(t.numpy().dtype)), (dtype, t)
    gathered = [gg.zeros(2, dtype=gg.int64) for _ in range(world)]
    dist.all_gather(gathered, gg.tensor([rank, 7 * rank]))
    assert [g.tolist() for g in gathered] == [[r, 7 * r] for r in range(world)], gathered
    try:
        dist.broadcast(gg.zeros(1), src=world)
    except ValueError:
        pass
    else:
        raise AssertionError("broadcast to a rank outside the world must raise ValueError")


def assert_replicas_equal(gg, dist, module, what):
    for name, tensor in module.state_dict().items():
        copies = [gg.zeros_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(copies, tensor)
        for other in copies[1:]:
            assert np.array_equal(copies[0].numpy(), other.numpy()), f"{what}: replicas differ in {name}"


def make_model(gg, nn, seed):
    gg.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 3))


def check_ddp(gg, dist, rank, world):
    nn = gg.nn
    F = nn.functional
    model = make_model(gg, nn, seed=100 + rank)       # every rank starts differently...
    reference = make_model(gg, nn, seed=100)          # ... rank 0's start, trained on the whole batch
    ddp = dist.DistributedDataParallel(model)
    assert_replicas_equal(gg, dist, model, "after construction")
    for mine, theirs in zip(model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert np.array_equal(mine.numpy(), theirs.numpy()), "construction must broadcast rank 0's state"

    rng = np.random.default_rng(0)                    # the same data on every rank
    per_rank = 6
    inputs = gg.tensor(rng.standard_normal((world * per_rank, 5)).astype(np.float32))
    labels = gg.tensor(rng.integers(0, 3, world * per_rank))
    mine = slice(rank * per_rank, (rank + 1) * per_rank)
    # BatchNorm statistics are per-replica (as with PyTorch's DDP), so compare in eval mode for the
    # large-batch equivalence, and train mode for the replicas-stay-identical check below.
    ddp.eval()
    reference.eval()
    optimizer = gg.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    reference_optimizer = gg.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for step in range(4):
        optimizer.zero_grad()
        loss = F.cross_entropy(ddp(inputs[mine]), labels[mine])
        loss.backward()
        optimizer.step()
        loss_value = loss.item()
        del loss                                      # no graph kept into the next step
        reference_optimizer.zero_grad()
        F.cross_entropy(reference(inputs), labels).backward()
        reference_optimizer.step()
        print(f"rank {rank} step {step} local loss {loss_value:.6f}", flush=True)
    assert_replicas_equal(gg, dist, model, "after DDP steps")
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6), \
            f"{name}: DDP over {world} ranks differs from one process on the whole batch"

    # no_sync: two micro-batches per rank, one all-reduce, equals the whole batch again.
    half = per_rank // 2
    first = slice(rank * per_rank, rank * per_rank + half)
    second = slice(rank * per_rank + half, (rank + 1) * per_rank)
    optimizer.zero_grad()
    with ddp.no_sync():
        (F.cross_entropy(ddp(inputs[first]), labels[first]) / 2).backward()
    local_only = model[0].weight.grad.numpy().copy()
    (F.cross_entropy(ddp(inputs[second]), labels[second]) / 2).backward()
    optimizer.step()
    reference_optimizer.zero_grad()
    F.cross_entropy(reference(inputs), labels).backward()
    reference_optimizer.step()
    copies = [gg.zeros_like(model[0].weight) for _ in range(world)]
    dist.all_gather(copies, gg.tensor(local_only))
    assert not np.array_equal(copies[0].numpy(), copies[-1].numpy()), "no_sync must not average"
    assert_replicas_equal(gg, dist, model, "after no_sync accumulation")
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6), f"{name}: no_sync accumulation is off"

    # Train mode: BatchNorm buffers follow rank 0 at every forward; replicas stay identical.
    ddp.train()
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(ddp(inputs[mine]), labels[mine]).backward()
        optimizer.step()
    # Running statistics diverge during a training forward (each rank sees its own batch), and the
    # next forward starts by copying rank 0's: after an eval forward the whole state is identical.
    ddp.eval()
    ddp(inputs[mine])
    assert_replicas_equal(gg, dist, model, "after training with BatchNorm")


def check_unused_parameters(gg, dist, rank, world):
    nn = gg.nn

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Linear(3, 3)
            self.only_rank0 = nn.Linear(3, 3)
            self.never = nn.Linear(3, 3)

        def forward(self, x, use_branch):
            out = self.trunk(x)
            return self.only_rank0(out) if use_branch else out

    gg.manual_seed(rank)
    ddp = dist.DistributedDataParallel(Branchy(), find_unused_parameters=True)
    ddp(gg.ones(2, 3), use_branch=(rank == 0)).sum().backward()
    net = ddp.module
    assert net.never.weight.grad is None, "a parameter no rank used keeps grad None"
    assert net.only_rank0.weight.grad is not None, "a parameter one rank used gets the averaged gradient"
    assert_replicas_equal(gg, dist, net, "find_unused_parameters (params)")
    for name, param in net.named_parameters():
        if param.grad is None:
            continue
        copies = [gg.zeros_like(param.grad) for _ in range(world)]
        dist.all_gather(copies, param.grad)
        assert all(np.array_equal(copies[0].numpy(), c.numpy()) for c in copies), f"{name}.grad differs"


def check_sampler(gg, dist, rank, world):
    dataset = gg.data.TensorDataset(gg.arange(23))
    sampler = dist.DistributedSampler(dataset, shuffle=True, seed=3)
    loader = gg.data.DataLoader(dataset, batch_size=4, sampler=sampler)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        seen = gg.tensor(np.concatenate([batch[0].numpy() for batch in loader]))
        copies = [gg.zeros_like(seen) for _ in range(world)]
        dist.all_gather(copies, seen)
        everything = np.concatenate([c.numpy() for c in copies])
        assert sorted(set(everything.tolist())) == list(range(23)), "the ranks together must cover the dataset"
        assert len(everything) == sampler.total_size


def main():
    import gpugrad as gg
    import gpugrad.distributed as dist
    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    expected_world = int(sys.argv[1]) if len(sys.argv) > 1 else world
    assert world == expected_world, f"world size {world}, expected {expected_world}: is mpi4py installed?"
    check_collectives(gg, dist, rank, world)
    check_ddp(gg, dist, rank, world)
    check_unused_parameters(gg, dist, rank, world)
    check_sampler(gg, dist, rank, world)
    dist.barrier()
    print(f"rank {rank} of {world}: ok", flush=True)


if __name__ == "__main__":
    main()
