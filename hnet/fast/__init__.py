"""Performance-only code: each module computes exactly what a plain version elsewhere computes,
faster, and a test checks that the two agree.

- :mod:`.output_layer`: the hypernetwork's output layer, ``nn.Linear`` stored transposed with a
  folded bias (test: tests/unit/test_output_layout.py).
- :mod:`.flat_mlp`: the MLP target on one flat weight vector as one autograd function, equal to
  ``functional_call`` of the module (tests/unit/test_models.py).
- :mod:`.adam`: Adam's fused kernel called directly, for the step (equal to
  ``Optimizer.step``, tests/unit/test_optim.py) and the regularizer's lookahead (equal to the
  elementwise ΔΘ, tests/unit/test_regularizer.py).
- :mod:`.gram`: the regularizer's ``gram`` term with its hand-written backward, equal to the
  ``direct`` term (tests/unit/test_regularizer.py).
- :mod:`.cpu`: subnormal flushing and glibc's allocator thresholds
  (tests/unit/test_environment.py).

Nothing here imports the rest of hnet: models and methods call in, never the other way round.
docs/performance.md has the measurements behind each trick.
"""
