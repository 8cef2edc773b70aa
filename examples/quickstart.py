"""The tour of docs/getting_started.md as a script: a gradient on every installed backend."""

import lucid
from lucid import backends

for name in backends.available():
    with lucid.using_backend(name):
        lucid.random.seed(0)
        x = lucid.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        w = lucid.random.randn(2, 2, requires_grad=True)
        loss = (x @ w).tanh().mean()
        loss.backward()
        print(f"{name}: loss={loss.item():.6f} grad of w={w.grad.tolist()}")
