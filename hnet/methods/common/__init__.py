"""What the methods share, so that ``hnet/methods/`` holds one module per method and nothing
else: the method interface and its registry (:mod:`.base`), the baseline network that nine
methods extend (:mod:`.baseline`), the optimizer and learning-rate schedule, the hypernetwork's
output regularizer and its lookahead, distillation, the replay models of the replay family,
and the packed trainer that steps several seeds at once (:mod:`.packed`)."""
