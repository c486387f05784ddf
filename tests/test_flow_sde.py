"""The SDE step and the sigma schedule against closed forms and diffusers."""

import math

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from superflow.flow.schedule import sd3_sigmas, shift_sigmas
from superflow.flow.sde import ode_step, sde_std_dev, sde_step


def _inputs(seed=0, shape=(3, 4, 5, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("sigma,sigma_next", [(0.9, 0.8), (0.5, 0.3), (0.2, 0.0)])
def test_log_prob_equals_torch_normal(sigma, sigma_next):
    v, x, x_next = _inputs()
    a = 0.7
    out = sde_step(v, x, sigma, sigma_next, sigma_after_one=0.95, noise_level=a, next_x=x_next)
    s, dt = torch.tensor(sigma), torch.tensor(sigma_next - sigma)
    std = a * torch.sqrt(s / (1 - s))
    mean = x * (1 + std**2 / (2 * s) * dt) + v * (1 + std**2 * (1 - s) / (2 * s)) * dt
    expected = torch.distributions.Normal(mean, std * torch.sqrt(-dt)).log_prob(x_next).mean(dim=(1, 2, 3))
    torch.testing.assert_close(out.log_prob, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.mean, mean)


def test_sigma_one_uses_second_sigma_in_denominator():
    sigmas = sd3_sigmas(10, shift=3.0)
    assert sigmas[0] == 1.0
    std = sde_std_dev(sigmas[:1], sigmas[1], 0.7)
    expected = 0.7 * math.sqrt(1.0 / (1 - float(sigmas[1])))
    assert std.item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(std).all()
    # away from 1 the substitution must not apply
    mid = sde_std_dev(sigmas[3:4], sigmas[1], 0.7)
    assert mid.item() == pytest.approx(0.7 * math.sqrt(float(sigmas[3]) / (1 - float(sigmas[3]))), rel=1e-6)


def test_first_step_log_prob_is_finite_and_matches_normal():
    v, x, _ = _inputs(1)
    sigmas = sd3_sigmas(10)
    out = sde_step(
        v,
        x,
        sigmas[0],
        sigmas[1],
        sigma_after_one=sigmas[1],
        noise_level=0.7,
        generator=torch.Generator().manual_seed(3),
    )
    std = 0.7 * torch.sqrt(sigmas[0] / (1 - sigmas[1]))
    scale = std * torch.sqrt(sigmas[0] - sigmas[1])
    expected = torch.distributions.Normal(out.mean, scale).log_prob(out.next_x).mean(dim=(1, 2, 3))
    torch.testing.assert_close(out.log_prob, expected, rtol=1e-5, atol=1e-5)


def test_noise_level_zero_is_the_ode_step():
    v, x, _ = _inputs(2)
    out = sde_step(v, x, 0.6, 0.4, sigma_after_one=0.9, noise_level=0.0)
    torch.testing.assert_close(out.next_x, ode_step(v, x, 0.6, 0.4))
    torch.testing.assert_close(out.next_x, x + (0.4 - 0.6) * v)
    assert torch.isnan(out.log_prob).all()


def test_sampled_step_has_the_stated_noise_scale():
    shape = (4000, 1, 8, 8)
    v, x = torch.zeros(shape), torch.zeros(shape)
    out = sde_step(v, x, 0.5, 0.4, sigma_after_one=0.9, noise_level=0.7, generator=torch.Generator().manual_seed(0))
    expected = 0.7 * math.sqrt(0.5 / 0.5) * math.sqrt(0.1)
    assert (out.next_x - out.mean).std().item() == pytest.approx(expected, rel=0.01)


def test_per_sample_sigmas_broadcast():
    v, x, x_next = _inputs(4)
    sig = torch.tensor([0.9, 0.5, 0.3])
    nxt = torch.tensor([0.8, 0.4, 0.0])
    batched = sde_step(v, x, sig, nxt, sigma_after_one=0.95, next_x=x_next)
    for i in range(3):
        single = sde_step(v[i : i + 1], x[i : i + 1], sig[i], nxt[i], sigma_after_one=0.95, next_x=x_next[i : i + 1])
        torch.testing.assert_close(batched.log_prob[i : i + 1], single.log_prob)


@pytest.mark.parametrize("steps,shift", [(10, 3.0), (40, 3.0), (4, 1.0), (7, 2.5)])
def test_schedule_matches_diffusers(steps, shift):
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(steps)
    ours = sd3_sigmas(steps, shift=shift)
    torch.testing.assert_close(ours, scheduler.sigmas.float(), rtol=0, atol=1e-7)
    assert ours[-1] == 0 and ours[0] == 1
    assert (ours[1:] < ours[:-1]).all()


def test_shift_is_monotone_and_fixes_endpoints():
    s = torch.linspace(0, 1, 101)
    shifted = shift_sigmas(s, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert (shifted[1:] > shifted[:-1]).all()
    assert (shifted[1:-1] > s[1:-1]).all()
