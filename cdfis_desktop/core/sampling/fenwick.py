"""A Fenwick (binary indexed) tree over non-negative weights, vectorised with torch.

History mode keeps one weight per training sample (millions); each step changes b of
them and draws b. Rebuilding a cumulative sum would cost O(N) per step; the tree costs
O(b log N) for both, as a handful of vectorised torch operations (CPU, float64).
"""

from __future__ import annotations

import torch


class FenwickTree:
    """Prefix sums of ``weights float64[N]`` (N >= 1), with batched update and sampling.

    Not thread-safe: owned by one sampler.
    """

    def __init__(self, weights: torch.Tensor) -> None:
        self.size = int(weights.shape[0])
        self.weights = weights.detach().to("cpu", torch.float64).clone()
        prefix = torch.zeros(self.size + 1, dtype=torch.float64)
        torch.cumsum(self.weights, 0, out=prefix[1:])
        node = torch.arange(1, self.size + 1)
        # node j (1-based) holds the sum of the weights j - lowbit(j) + 1 .. j
        self.tree = torch.zeros(self.size + 1, dtype=torch.float64)
        self.tree[1:] = prefix[node] - prefix[node - (node & -node)]
        self.total = float(prefix[-1])
        self._top_bit = 1 << (self.size.bit_length() - 1)

    @classmethod
    def from_state(cls, weights: torch.Tensor, tree: torch.Tensor, total: float) -> FenwickTree:
        """Restore a tree exactly (same rounding) from :meth:`state`."""
        obj = cls.__new__(cls)
        obj.size = int(weights.shape[0])
        obj.weights = weights.clone()
        obj.tree = tree.clone()
        obj.total = float(total)
        obj._top_bit = 1 << (obj.size.bit_length() - 1)
        return obj

    def state(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        return self.weights.clone(), self.tree.clone(), self.total

    def update(self, indices: torch.Tensor, values: torch.Tensor) -> None:
        """Set ``weights[indices] = values`` (int64[m], float[m]); the last value of a repeat wins."""
        if indices.numel() == 0:
            return
        unique, last = last_occurrence(indices)
        new = values.to(torch.float64)[last]
        delta = new - self.weights[unique]
        self.weights[unique] = new
        self.total += float(delta.sum())
        node = unique + 1
        while node.numel():
            self.tree.index_add_(0, node, delta)
            node = node + (node & -node)
            keep = node <= self.size
            node, delta = node[keep], delta[keep]

    def find(self, targets: torch.Tensor) -> torch.Tensor:
        """Indices int64[k] i with prefix(i) <= target < prefix(i + 1), for targets in [0, total).

        Zero-weight entries are never returned (except by rounding at the very top).
        """
        position = torch.zeros(targets.shape[0], dtype=torch.int64)
        remaining = targets.to(torch.float64).clone()
        step = self._top_bit
        while step:
            candidate = position + step
            valid = candidate <= self.size
            node_sum = self.tree[candidate.clamp_max(self.size)]
            move = valid & (node_sum <= remaining)
            position = torch.where(move, candidate, position)
            remaining = torch.where(move, remaining - node_sum, remaining)
            step >>= 1
        return position.clamp_max(self.size - 1)


def last_occurrence(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of ``indices int64[m]`` (sorted) and the position of each one's last repeat."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    last = torch.full((unique.shape[0],), -1, dtype=torch.int64, device=indices.device)
    last.scatter_reduce_(0, inverse, torch.arange(indices.shape[0], device=indices.device), "amax")
    return unique, last
