"""``torch.utils.data.dataloader``'s names: the DataLoader, its collate function and worker info."""

from ...data import DataLoader, default_collate, get_worker_info

__all__ = ["DataLoader", "default_collate", "get_worker_info"]
