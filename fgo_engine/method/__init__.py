"""The FGO method, one phase per module.

- ``divide``: split the training tasks into subsets (category, random, clusters).
- ``optimize``: Algorithm 1 — explore → evaluate (textual gradients) → optimize, per batch.
- ``merge``: Algorithm 2 — progressive merging through a clustered tree, each merge
  reviewed, then backtested on the union of its tasks.
- ``cluster``: the similarity clustering the merge tree uses (k = ⌊√n⌋).
- ``methods``: FGO, no-merge and the baselines as small strategy objects, each with the
  projection of the calls it will make.
- ``runtime``: what every phase shares — the collaborators, rollouts (one task under one
  module), module rows and the test evaluation.
"""
