"""A Fenwick (binary indexed) tree over non-negative weights, vectorised with numpy.

History mode keeps one weight per training sample (millions); each step changes b of
them and draws b. Rebuilding a cumulative sum would cost O(N) per step; the tree costs
O(b log N) for both, as a few dozen vectorised numpy operations on b-element arrays
(numpy rather than torch: per-call overhead dominates at this size).
"""

from __future__ import annotations

import numpy as np
import torch


class FenwickTree:
    """Prefix sums of ``weights float64[N]`` (N >= 1), with batched update and sampling.

    Not thread-safe: owned by one sampler.
    """

    def __init__(self, weights: torch.Tensor) -> None:
        self.size = int(weights.shape[0])
        self.weights = weights.detach().to("cpu", torch.float64).numpy().copy()
        prefix = np.zeros(self.size + 1)
        np.cumsum(self.weights, out=prefix[1:])
        node = np.arange(1, self.size + 1)
        # node j (1-based) holds the sum of the weights j - lowbit(j) + 1 .. j
        self.tree = np.zeros(self.size + 1)
        self.tree[1:] = prefix[node] - prefix[node - (node & -node)]
        self.total = float(prefix[-1])

    @classmethod
    def from_state(cls, weights: np.ndarray, tree: np.ndarray, total: float) -> FenwickTree:
        """Restore a tree exactly (same rounding) from :meth:`state`."""
        obj = cls.__new__(cls)
        obj.size = int(weights.shape[0])
        obj.weights = np.array(weights, dtype=np.float64)
        obj.tree = np.array(tree, dtype=np.float64)
        obj.total = float(total)
        return obj

    def state(self) -> tuple[np.ndarray, np.ndarray, float]:
        return self.weights.copy(), self.tree.copy(), self.total

    def update(self, unique: np.ndarray, values: np.ndarray) -> None:
        """Set ``weights[unique] = values`` (distinct int64[m], float64[m])."""
        delta = values - self.weights[unique]
        self.weights[unique] = values
        self.total += float(delta.sum())
        node = unique + 1
        while node.size:
            np.add.at(self.tree, node, delta)
            node = node + (node & -node)
            keep = node <= self.size
            node, delta = node[keep], delta[keep]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """Indices int64[k] i with prefix(i) <= target < prefix(i + 1), for targets in [0, total).

        Zero-weight entries are never returned (except by rounding at the very top).
        """
        position = np.zeros(targets.shape[0], dtype=np.int64)
        remaining = targets.astype(np.float64)
        step = 1 << (self.size.bit_length() - 1)
        while step:
            candidate = position + step
            node_sum = self.tree[np.minimum(candidate, self.size)]
            move = (candidate <= self.size) & (node_sum <= remaining)
            position[move] = candidate[move]
            remaining[move] -= node_sum[move]
            step >>= 1
        return np.minimum(position, self.size - 1)


def last_occurrence(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of ``indices int64[m]`` (sorted) and the position of each one's last repeat."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    last = torch.full((unique.shape[0],), -1, dtype=torch.int64, device=indices.device)
    last.scatter_reduce_(0, inverse, torch.arange(indices.shape[0], device=indices.device), "amax")
    return unique, last
