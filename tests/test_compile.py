"""lucid.compile: compiled steps equal eager ones, state is written back into the same objects,
random draws stay fresh, and the rules (no host reads, only declared state) are enforced."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.compiler as lucid_compiler
from lucid import nn, optim


def _cnn(dropout=0.3, first=None):
    # No conv bias before BatchNorm: its gradient is rounding noise, which Adam would amplify
    # into a trajectory that differs with every change of summation order.
    return nn.Sequential(
        first or nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(dropout), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def _data(n=22):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n)


def _make_opt(name, params):
    if name == "sgd":
        return optim.SGD(params, lr=0.05, momentum=0.9)
    return optim.Adam(params, lr=0.01)


def _train(compiled, opt_name, steps=20, dropout=0.3, first=None, batch=6, seed=3):
    """steps of CNN training over batches of 6 (the last one short); returns the losses, the
    model and the optimizer."""
    lucid.random.seed(seed)
    model = _cnn(dropout, first() if first else None)
    opt = _make_opt(opt_name, model.parameters())
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = lucid.compile(step, state=[model, opt])
    x, y = _data()
    losses = []
    for i in range(steps):
        s = (i * batch) % len(x)
        xb, yb = lucid.tensor(x[s:s + batch]), lucid.tensor(y[s:s + batch])
        losses.append(step(xb, yb).item())
    return np.array(losses), model, opt, step


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_compiled_training_equals_eager(backend, opt_name):
    eager, m_e, o_e, _ = _train(False, opt_name)
    comp, m_c, o_c, step = _train(True, opt_name)
    # Dropout's masks are drawn from the same counter-based stream, so they match too
    np.testing.assert_allclose(comp, eager, rtol=2e-5, atol=2e-6)
    for (name, a), (_, b) in zip(m_e.state_dict().items(), m_c.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    bn = m_c[1]
    assert bn.num_batches_tracked.item() == 20                  # running stats were updated
    assert not np.allclose(bn.running_mean.numpy(), 0)
    se, sc = o_e.state_dict(), o_c.state_dict()
    for i, entry in se["state"].items():
        for k, v in entry.items():
            got = sc["state"][i][k]
            if isinstance(v, (int, float)):
                assert got == v and type(got) is type(v), k
            else:
                np.testing.assert_allclose(got.numpy(), v.numpy(), rtol=1e-4, atol=1e-6)
    if backend == "mlx":
        # one trace per state structure and batch shape: first step (no grads, no optimizer
        # state yet), then full batches, the short batch of 4
        assert 2 <= len(step._traces) <= 4


def test_state_objects_are_kept(mlx_only):
    _, model, opt, _ = _train(True, "adam", steps=3)
    params = list(model.parameters())
    assert all(p is q for p, q in zip(params, opt.param_groups[0]["params"]))
    assert all(p.grad is not None for p in params)


def test_same_seed_same_run_and_fresh_dropout_masks(backend):
    a, *_ = _train(True, "sgd", steps=6)
    b, *_ = _train(True, "sgd", steps=6)
    np.testing.assert_array_equal(a, b)
    lucid.random.seed(0)
    drop = nn.Dropout(0.5)

    @lucid.compile(state=[drop])
    def masks(x):
        return drop(x)

    x = lucid.ones(64)
    m1, m2 = masks(x).numpy(), masks(x).numpy()
    assert not np.array_equal(m1, m2)                   # a new mask on every call
    assert set(np.unique(m1)) <= {0.0, 2.0}
    lucid.random.seed(0)
    np.testing.assert_array_equal(masks(x).numpy(), m1)  # reproducible from the seed


def test_random_draws_are_fresh_and_continue_the_eager_stream(backend):
    f = lucid.compile(lambda: (lucid.random.rand(5), lucid.random.randint(0, 9, (4,)),
                               lucid.random.randn(3)))
    lucid.random.seed(7)
    eager = [lucid.random.rand(5).numpy(), lucid.random.randint(0, 9, (4,)).numpy(),
             lucid.random.randn(3).numpy(), lucid.random.rand(5).numpy()]
    lucid.random.seed(7)
    u, i, n = (t.numpy() for t in f())
    np.testing.assert_array_equal(u, eager[0])
    np.testing.assert_array_equal(i, eager[1])
    np.testing.assert_allclose(n, eager[2], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(lucid.random.rand(5).numpy(), eager[3])   # stream moved on
    assert not np.array_equal(f()[0].numpy(), u)


@pytest.mark.parametrize("counter", [2 ** 32 + 5, 2 ** 63 + 5])
def test_compiled_draws_at_a_far_stream_position(backend, counter):
    # the position enters a trace as a uint64 array: past 32 bits, and past what a signed
    # 64-bit int holds, the compiled draws still equal the eager ones
    f = lucid.compile(lambda: lucid.random.rand(6))
    lucid.random.set_state({"seed": 3, "counter": counter})
    eager = lucid.random.rand(6).numpy()
    lucid.random.set_state({"seed": 3, "counter": counter})
    np.testing.assert_array_equal(f().numpy(), eager)
    assert lucid.random.get_state()["counter"] > counter


@pytest.mark.parametrize("enforce", ["forward", "post_step", "pre_forward"])
def test_constrained_conv_in_a_compiled_step(backend, enforce):
    def first():
        return nn.ConstrainedConv2d(1, 4, 3, padding=1, bias=False, constraint="fixed_center",
                                    enforce=enforce)

    eager, m_e, _, _ = _train(False, "adam", steps=8, first=first, dropout=0.0)
    comp, m_c, _, _ = _train(True, "adam", steps=8, first=first, dropout=0.0)
    np.testing.assert_allclose(comp, eager, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(m_c[0].weight.numpy(), m_e[0].weight.numpy(), rtol=1e-4,
                               atol=1e-5)                # the stored kernel, as in eager mode
    if enforce == "pre_forward":                        # projected at the start of a forward
        m_c(lucid.tensor(_data()[0][:2]))
    if enforce != "forward":                            # the stored kernel obeys it
        w = m_c[0].weight.numpy()
        np.testing.assert_allclose(w[:, :, 1, 1], -1.0, atol=1e-6)
        np.testing.assert_allclose(w.sum(axis=(2, 3)) - w[:, :, 1, 1], 1.0, atol=1e-4)


def test_lr_schedule_between_calls_takes_effect(backend):
    w = nn.Parameter(lucid.tensor([1.0, -2.0]))
    opt = optim.SGD([w], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    @lucid.compile(state=[opt])
    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()

    expected = np.array([1.0, -2.0])
    for lr in (0.1, 0.05, 0.025):
        assert opt.param_groups[0]["lr"] == lr
        step()
        expected = expected - lr * 2 * expected
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
        sched.step()


def test_scheduler_inside_is_refused(mlx_only):
    w = nn.Parameter(lucid.tensor([1.0]))
    opt = optim.SGD([w], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1)

    @lucid.compile(state=[opt])
    def step():
        (w * w).sum().backward()
        opt.step()
        sched.step()

    with pytest.raises(RuntimeError, match="learning rate"):
        step()
    assert opt.param_groups[0]["lr"] == 0.1 and w.numpy()[0] == 1.0   # nothing changed


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: t.numpy(), lambda t: t.tolist(),
                                  lambda t: bool(t), lambda t: repr(t), lambda t: float(t),
                                  lambda t: print(t)],
                         ids=["item", "numpy", "tolist", "bool", "repr", "float", "print"])
def test_host_reads_inside_are_refused(backend, read):
    f = lucid.compile(lambda x: read((x * 2).sum()))
    with pytest.raises(RuntimeError, match="inside a lucid.compile'd function") as e:
        f(lucid.ones(3))
    assert "Return the tensor" in str(e.value)
    assert not f._traces                               # a failed trace is not kept
    assert lucid.ones(2).sum().item() == 2.0           # and nothing is left switched on


def test_undeclared_state_is_refused(backend):
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.numpy().copy()

    @lucid.compile(state=[opt])                  # the model's parameters come with opt ...
    def ok(x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    ok(lucid.ones(1, 3))
    assert not np.array_equal(model.weight.numpy(), before)

    bn = nn.BatchNorm2d(2)

    @lucid.compile(state=[])                     # ... but BatchNorm's buffers are not declared
    def stats(x):
        return bn(x)

    with pytest.raises(RuntimeError,
                       match=r"updated a Tensor of shape .*not part of its state.*\(3 such tensor"):
        stats(lucid.random.randn(4, 2, 3, 3))

    @lucid.compile(state=[])
    def grads(x):
        model(x).sum().backward()

    with pytest.raises(RuntimeError, match="gave a gradient to a Parameter"):
        grads(lucid.ones(1, 3))

    @lucid.compile
    def write_input(x):
        x.copy_(x * 2)

    with pytest.raises(RuntimeError, match="not part of its state"):
        write_input(lucid.ones(2))

    @lucid.compile
    def own(x):
        t = lucid.zeros(3)
        t[1] = 5.0                               # a tensor the function made itself: fine
        return t + x

    np.testing.assert_array_equal(own(lucid.ones(3)).numpy(), [1, 6, 1])


def test_arguments_and_results_nest(backend):
    @lucid.compile
    def f(pair, scale, opts):
        a, b = pair
        return {"sum": a + b * scale, "parts": [a * 2, opts["c"] - b]}, scale

    out, scale = f((lucid.ones(2), lucid.tensor([1.0, 2.0])), 3.0, {"c": lucid.tensor(10.0)})
    assert scale == 3.0
    np.testing.assert_array_equal(out["sum"].numpy(), [4, 7])
    np.testing.assert_array_equal(out["parts"][1].numpy(), [9, 8])
    assert isinstance(out["parts"][0], lucid.Tensor) and not out["sum"].requires_grad
    with pytest.raises(TypeError, match="take and return Tensors"):
        f((lucid.ones(2), lucid.ones(2)), object(), {"c": lucid.ones(1)})


def test_trace_cache_is_bounded(mlx_only, monkeypatch):
    monkeypatch.setattr(lucid_compiler, "MAX_TRACES", 2)
    f = lucid.compile(lambda x: x * 2)
    for n in (1, 2, 3, 2):
        np.testing.assert_array_equal(f(lucid.ones(n)).numpy(), np.full(n, 2.0))
    assert len(f._traces) == 2


def test_modes_and_grad_mode_are_part_of_the_key(mlx_only):
    drop = nn.Dropout(0.5)
    f = lucid.compile(lambda x: drop(x), state=[drop])
    x = lucid.ones(32)
    assert (f(x).numpy() == 0).any()
    drop.eval()
    np.testing.assert_array_equal(f(x).numpy(), np.ones(32))
    assert len(f._traces) == 2


def test_compiled_steps_keep_memory_flat(mlx_only):
    import mlx.core as mx
    *_, step = _train(True, "sgd", steps=5)
    x, y = (lucid.tensor(a) for a in (_data()[0][:6], _data()[1][:6]))
    for _ in range(20):
        step(x, y)
    mx.clear_cache()
    base = mx.get_active_memory()
    for _ in range(200):
        step(x, y)
    mx.clear_cache()
    assert mx.get_active_memory() <= base * 1.05 + 4096


def _rank_net(rank):
    if rank == 1:
        return nn.Sequential(nn.Conv1d(2, 4, 4, padding="same", bias=False), nn.BatchNorm1d(4),
                             nn.ReLU(), nn.MaxPool1d(2),
                             nn.ConstrainedConv1d(4, 4, 3, groups=2, max_norm=0.5),
                             nn.AdaptiveAvgPool1d(2), nn.Flatten(), nn.Linear(8, 3))
    return nn.Sequential(nn.Conv3d(2, 4, 3, padding=1, bias=False), nn.BatchNorm3d(4),
                         nn.ReLU(), nn.AvgPool3d(2),
                         nn.ConstrainedConv3d(4, 4, 3, padding=1, constraint="zero_mean"),
                         nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3))


@pytest.mark.parametrize("rank", [1, 3])
def test_compiled_step_with_the_layers_of_every_rank(backend, rank):
    """Conv1d/3d, their constrained forms, BatchNorm1d/3d and 1-D/3-D pooling in a compiled
    training step: the same losses and parameters as eager steps."""
    rng = np.random.default_rng(rank)
    shape = (4, 2, 8) if rank == 1 else (2, 2, 4, 4, 4)
    xs = rng.standard_normal((3,) + shape).astype(np.float32)
    ys = rng.integers(0, 3, (3, shape[0]))
    runs = []
    for compiled in (False, True):
        lucid.random.seed(0)
        model = _rank_net(rank)
        opt = optim.SGD(model.parameters(), lr=0.05)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y, model=model, opt=opt, loss_fn=loss_fn):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss

        if compiled:
            step = lucid.compile(step, state=[model, opt])
        losses = [step(lucid.tensor(x), lucid.tensor(y)).item() for x, y in zip(xs, ys)]
        runs.append((losses, [p.numpy() for p in model.parameters()]))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-4, atol=1e-5)
    for a, b in zip(runs[1][1], runs[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
