"""lucid.amp.GradScaler against torch.amp.GradScaler("cpu") driven by the same inf pattern, and
compiled against eager."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import nn
from lucid.amp import GradScaler

torch = pytest.importorskip("torch")
# float16 overflow is the event loss scaling handles; NumPy warns about it
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

W0 = np.array([0.5, -1.0, 2.0], np.float32)
INF_STEPS = {1, 2, 6}              # steps whose gradient holds an inf (or NaN at step 6)


def _coef(step):
    c = np.array([0.25, -0.5, 1.0], np.float32) * (1 + step % 3)
    if step in INF_STEPS:
        c[step % 3] = np.nan if step == 6 else np.inf
    return c


def _torch_run(steps, clip=False, **kw):
    w = torch.nn.Parameter(torch.tensor(W0))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", **kw)
    scales, ws = [], []
    for s in range(steps):
        opt.zero_grad()
        loss = (w * torch.tensor(_coef(s))).sum()
        scaler.scale(loss).backward()
        if clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_([w], 1.0)
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        ws.append(w.detach().numpy().copy())
    return scales, ws, scaler.state_dict()


def _lucid_step(w, opt, scaler, coef, clip=False):
    opt.zero_grad()
    loss = (w * coef).sum()
    scaler.scale(loss).backward()
    if clip:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_([w], 1.0)
    scaler.step(opt)
    scaler.update()
    return loss


def _lucid_run(steps, clip=False, compiled=False, **kw):
    w = nn.Parameter(lucid.tensor(W0))
    opt = lucid.optim.SGD([w], lr=0.1, momentum=0.9)
    scaler = GradScaler(**kw)
    step = lucid.compile(lambda c: _lucid_step(w, opt, scaler, c, clip),
                         state=[w, opt, scaler]) if compiled else \
        (lambda c: _lucid_step(w, opt, scaler, c, clip))
    scales, ws = [], []
    for s in range(steps):
        step(lucid.tensor(_coef(s)))
        scales.append(scaler.get_scale())
        ws.append(w.numpy().copy())
    return scales, ws, scaler.state_dict()


KW = {"init_scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.25, "growth_interval": 2}


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("compiled", [False, True])
def test_scale_sequence_skips_and_weights_match_torch(backend, clip, compiled):
    t_scales, t_ws, t_sd = _torch_run(9, clip, **KW)
    scales, ws, sd = _lucid_run(9, clip, compiled, **KW)
    assert scales == t_scales
    for a, b in zip(ws, t_ws):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert sd == t_sd
    # the pattern does what it says: skipped steps leave w as it was
    np.testing.assert_array_equal(ws[1], ws[0])
    np.testing.assert_array_equal(ws[2], ws[0])


def test_state_dict_keys_and_load_from_torch(backend):
    t_scaler = torch.amp.GradScaler("cpu", init_scale=32.0, growth_interval=7)
    sd = t_scaler.state_dict()
    s = GradScaler()
    assert set(s.state_dict()) == set(sd)
    s.load_state_dict(sd)
    assert s.get_scale() == 32.0 and s.get_growth_interval() == 7
    assert s.state_dict() == sd
    off = GradScaler(enabled=False)
    assert off.state_dict() == {} and off.get_scale() == 1.0
    with pytest.raises(RuntimeError, match="empty"):
        GradScaler().load_state_dict({})


def test_disabled_scaler_passes_through(backend):
    w = nn.Parameter(lucid.tensor(W0))
    opt = lucid.optim.SGD([w], lr=0.1)
    scaler = GradScaler(enabled=False)
    loss = (w * 2.0).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(w.numpy(), W0 - 0.2)


def test_misuse_raises_like_torch(backend):
    w = nn.Parameter(lucid.tensor(W0))
    opt = lucid.optim.SGD([w], lr=0.1)
    scaler = GradScaler()
    with pytest.raises(AssertionError, match="No inf checks"):
        scaler.update()
    scaler.scale((w * 1.0).sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)
    scaler.update()
    for bad, what in (({"growth_factor": 1.0}, "growth factor"),
                      ({"backoff_factor": 1.5}, "backoff factor"),
                      ({"init_scale": 0.0}, "init_scale"),
                      ({"growth_interval": 0}, "growth_interval")):
        with pytest.raises(ValueError, match=what):
            GradScaler(**bad)


def test_float16_training_with_autocast_and_scaler(backend):
    # the M1/M2 recipe: float16 autocast + loss scaling; the scale halves at the first overflow
    lucid.random.seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    opt = lucid.optim.SGD(model.parameters(), lr=0.05)
    scaler = GradScaler(init_scale=2.0 ** 20)
    rng = np.random.default_rng(0)
    x = lucid.tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
    y = lucid.tensor(rng.integers(0, 3, 8))
    losses = []
    for _ in range(12):
        with lucid.autocast(dtype=lucid.float16):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.item()))
    assert all(p.dtype == lucid.float32 for p in model.parameters())
    assert scaler.get_scale() < 2.0 ** 20                    # float16 overflowed: backed off
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


@pytest.mark.parametrize("compiled", [False, True])
def test_adam_with_overflowing_first_steps_matches_torch(backend, compiled):
    # the common float16 start: the first steps overflow while the scale backs off, so Adam's
    # state (and its step count) must not exist / advance until a clean step
    def coef(s):
        c = np.array([0.5, -1.0, 0.25], np.float32)
        if s < 2:
            c[0] = np.inf
        return c

    tw = torch.nn.Parameter(torch.tensor(W0))
    topt = torch.optim.Adam([tw], lr=0.1)
    tsc = torch.amp.GradScaler("cpu", init_scale=4.0)
    w = nn.Parameter(lucid.tensor(W0))
    opt = lucid.optim.Adam([w], lr=0.1)
    sc = GradScaler(init_scale=4.0)
    step = lucid.compile(lambda c: _lucid_step(w, opt, sc, c), state=[w, opt, sc]) \
        if compiled else (lambda c: _lucid_step(w, opt, sc, c))
    for s in range(5):
        topt.zero_grad()
        tsc.scale((tw * torch.tensor(coef(s))).sum()).backward()
        tsc.step(topt)
        tsc.update()
        step(lucid.tensor(coef(s)))
        assert sc.get_scale() == tsc.get_scale()
        np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_scaled_half_loss_is_float32_like_torch(backend):
    loss = lucid.tensor(3.0, dtype="float16")
    out = GradScaler().scale(loss)
    tout = torch.amp.GradScaler("cpu").scale(torch.tensor(3.0, dtype=torch.float16))
    assert out.dtype == lucid.float32 and tout.dtype == torch.float32
    assert float(out.item()) == float(tout) == 3.0 * 65536


def test_compiled_step_sees_a_changed_growth_setting(backend):
    """The factors and interval are baked into a compiled trace: changing one between calls
    must trace again (the structure version moves), never replay the old constants."""
    w = nn.Parameter(lucid.tensor(W0))
    opt = lucid.optim.SGD([w], lr=0.1)
    scaler = GradScaler(init_scale=8.0, growth_factor=2.0, growth_interval=100)
    step = lucid.compile(lambda c: _lucid_step(w, opt, scaler, c), state=[w, opt, scaler])
    clean = lucid.tensor(np.array([0.25, -0.5, 1.0], np.float32))
    step(clean)
    assert scaler.get_scale() == 8.0                # 1 clean step of 100: no growth
    scaler.set_growth_interval(1)
    scaler.set_growth_factor(4.0)
    step(clean)
    assert scaler.get_scale() == 32.0               # grows at once, by the new factor
    scaler.load_state_dict({"scale": 2.0, "growth_factor": 3.0, "backoff_factor": 0.5,
                            "growth_interval": 1, "_growth_tracker": 0})
    step(clean)
    assert scaler.get_scale() == 6.0
