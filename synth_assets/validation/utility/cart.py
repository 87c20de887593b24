"""An rpart-like classification tree, for synthpop-compatible CART pMSE.

synthpop's ``utility.gen`` fits ``rpart(cp = 1e-3, minbucket = 5)``. rpart does not just
grow and prune: while growing, its ``partition()`` passes each child an upper bound on
the complexity the child can still reach and refuses to split nodes whose bound is
below ``alpha = cp × root risk`` (risk = misclassified records). Under the null (permuted
labels) that stops noise splits early, which is what makes CART S_pMSE meaningful;
plain cost-complexity pruning keeps many more noise leaves and halves the ratio.

We grow sklearn's tree with the same Gini criterion, ``minsplit`` 20, ``minbucket`` and
depth 30 (so rpart's tree is a subtree of it, up to rpart's subset splits on factors and
surrogates for missing values), then replay rpart's ``partition()`` bookkeeping on it to
find which nodes rpart would have left terminal.
"""

from __future__ import annotations

import numpy as np
from sklearn.tree import DecisionTreeClassifier

_RPART_MIN_SPLIT = 20
_RPART_MAX_DEPTH = 30


def _rpart_terminals(tree, alpha: float) -> np.ndarray:
    """Boolean per node of a fitted sklearn tree: terminal in rpart's tree (a C port)."""
    t = tree.tree_
    counts = t.value[:, 0, :] * t.n_node_samples[:, None]
    risk = counts.sum(axis=1) - counts.max(axis=1)
    complexity = np.zeros(t.node_count)
    terminal = np.zeros(t.node_count, dtype=bool)

    def partition(node: int, bound: float) -> tuple[int, float]:
        tempcp = min(risk[node], bound)
        left, right = t.children_left[node], t.children_right[node]
        if left < 0 or t.n_node_samples[node] < _RPART_MIN_SPLIT or tempcp <= alpha:
            complexity[node], terminal[node] = alpha, True
            return 0, risk[node]
        left_split, left_risk = partition(left, tempcp - alpha)
        tempcp = max((risk[node] - left_risk) / (left_split + 1), risk[node] - risk[left])
        right_split, right_risk = partition(right, min(tempcp, bound) - alpha)

        def cp() -> float:
            return (risk[node] - (left_risk + right_risk)) / (left_split + right_split + 1)

        # rpart's "who goes first": children that would collapse before this node
        # count as leaves when computing this node's own complexity.
        if complexity[right] > complexity[left]:
            if cp() > complexity[left]:
                left_split, left_risk = 0, risk[left]
                if cp() > complexity[right]:
                    right_split, right_risk = 0, risk[right]
        elif cp() > complexity[right]:
            right_split, right_risk = 0, risk[right]
            if cp() > complexity[left]:
                left_split, left_risk = 0, risk[left]
        complexity[node] = cp()
        if complexity[node] <= alpha:
            terminal[node] = True
            return 0, risk[node]
        return left_split + right_split + 1, left_risk + right_risk

    partition(0, risk[0])
    return terminal


def rpart_propensities(X: np.ndarray, y: np.ndarray, cp: float, minbucket: int, seed: int) -> np.ndarray:
    """In-sample P(y = 1) from the leaves of the rpart-like tree (leaf class shares)."""
    tree = DecisionTreeClassifier(
        min_samples_leaf=minbucket,
        min_samples_split=max(_RPART_MIN_SPLIT, 2 * minbucket),
        max_depth=_RPART_MAX_DEPTH,
        random_state=seed,
    ).fit(X, y)
    terminal = _rpart_terminals(tree, cp * min(y.sum(), len(y) - y.sum()))
    # Each node predicts through its highest terminal ancestor (parents have smaller ids).
    t = tree.tree_
    predictor = np.arange(t.node_count)
    for node in range(t.node_count):
        for child in (t.children_left[node], t.children_right[node]):
            if child >= 0 and (terminal[node] or predictor[node] != node):
                predictor[child] = predictor[node]
    return t.value[predictor[tree.apply(X)], 0, 1]
