"""fastoptim.utils.data: torch.utils.data's datasets, samplers and DataLoader, in the main
process, over fastoptim tensors (dataset.py, sampler.py, dataloader.py)."""
from fastoptim.utils.data.dataloader import (  # noqa: F401
    DataLoader,
    default_collate,
    default_convert,
)
from fastoptim.utils.data.dataset import (  # noqa: F401
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from fastoptim.utils.data.sampler import (  # noqa: F401
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
)

__all__ = ["DataLoader", "Dataset", "IterableDataset", "TensorDataset", "Subset",
           "ConcatDataset", "random_split", "default_collate", "default_convert", "Sampler",
           "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler"]
