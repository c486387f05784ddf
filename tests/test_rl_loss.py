"""The clipped policy loss, the KL to the reference model and the EMA, against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from superflow.rl import EMA, clipped_policy_loss, kl_to_reference


# ----------------------------------------------------------------------------- policy loss
def _reference_loss(log_prob, old, adv, clip_range, adv_clip):
    """The Flow-GRPO reference's training-loop lines, verbatim in substance."""
    advantages = torch.clamp(adv, -adv_clip, adv_clip)
    ratio = torch.exp(log_prob - old)
    unclipped_loss = -advantages * ratio
    clipped_loss = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return torch.mean(torch.maximum(unclipped_loss, clipped_loss))


def test_loss_hand_computation_with_clipping_cases():
    eps = 0.2
    # ratios: 1.1 (inside), 1.5 (above, A>0: clipped), 0.5 (below, A<0: clipped),
    #         1.5 (above, A<0: unclipped is larger), 0.5 (below, A>0: unclipped is larger)
    ratios = [1.1, 1.5, 0.5, 1.5, 0.5]
    adv = torch.tensor([2.0, 1.0, -1.0, -3.0, 7.0])  # 7 is clamped to 5
    old = torch.tensor([-1.0, -2.0, 0.5, 0.0, -0.3])
    log_prob = (old + torch.log(torch.tensor(ratios))).requires_grad_()
    loss, info = clipped_policy_loss(log_prob, old, adv, eps, adv_clip=5.0)
    per_sample = [-2.0 * 1.1, -1.0 * 1.2, 1.0 * 0.8, 3.0 * 1.5, -5.0 * 0.5]
    assert float(loss.detach()) == pytest.approx(sum(per_sample) / 5, rel=1e-6)
    assert float(info["clipfrac"]) == pytest.approx(4 / 5)
    assert float(info["ratio_mean"]) == pytest.approx(sum(ratios) / 5, rel=1e-6)
    assert float(info["approx_kl"]) == pytest.approx(0.5 * sum(math.log(r) ** 2 for r in ratios) / 5, rel=1e-5)
    assert all(not v.requires_grad and v.ndim == 0 for v in info.values())
    loss.backward()
    # d/dlogp of -A*ratio is -A*ratio/N where unclipped is active, 0 where the clip is active.
    expected_grad = torch.tensor([-2.0 * 1.1, 0.0, 0.0, 3.0 * 1.5, -5.0 * 0.5]) / 5
    torch.testing.assert_close(log_prob.grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_loss_gradient_sign_raises_logp_of_good_samples():
    old = torch.zeros(2)
    log_prob = torch.zeros(2, requires_grad=True)
    loss, _ = clipped_policy_loss(log_prob, old, torch.tensor([1.0, -1.0]), clip_range=1e-4)
    loss.backward()
    # gradient descent moves logp against the gradient: up for A > 0, down for A < 0
    assert log_prob.grad[0] < 0 and log_prob.grad[1] > 0
    assert float(loss.detach()) == 0.0  # ratio 1: -A averages to zero


def test_loss_equals_reference_on_random_data():
    gen = torch.Generator().manual_seed(0)
    old = torch.randn(64, generator=gen)
    log_prob = old + 1e-4 * torch.randn(64, generator=gen)
    adv = 3 * torch.randn(64, generator=gen)
    loss, _ = clipped_policy_loss(log_prob, old, adv, 1e-4)
    assert torch.equal(loss, _reference_loss(log_prob, old, adv, 1e-4, 5.0))


def test_only_log_prob_gets_gradient():
    old = torch.zeros(3, requires_grad=True)
    adv = torch.ones(3, requires_grad=True)
    log_prob = torch.full((3,), 0.01, requires_grad=True)
    loss, _ = clipped_policy_loss(log_prob, old, adv, 0.2)
    loss.backward()
    assert old.grad is None and adv.grad is None and log_prob.grad is not None


def test_loss_errors():
    with pytest.raises(ValueError, match="shapes must match"):
        clipped_policy_loss(torch.zeros(3), torch.zeros(3), torch.zeros(2), 0.1)
    with pytest.raises(ValueError, match="clip_range must be >= 0, got -0.1"):
        clipped_policy_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), -0.1)
    with pytest.raises(ValueError, match="adv_clip"):
        clipped_policy_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.1, adv_clip=0.0)


# ----------------------------------------------------------------------------- KL
def test_kl_closed_form_per_sample_std():
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(3, 4, 2, 2, generator=gen)
    ref = torch.randn(3, 4, 2, 2, generator=gen)
    std = torch.tensor([0.5, 1.0, 2.0])
    expected = sum(float(((mean[i] - ref[i]) ** 2).mean()) / (2 * float(std[i]) ** 2) for i in range(3)) / 3
    assert float(kl_to_reference(mean, ref, std)) == pytest.approx(expected, rel=1e-6)
    # The reference's own broadcasting ([N, 1, 1, 1] std) gives the same number.
    std4 = std.view(3, 1, 1, 1)
    reference = torch.mean(((mean - ref) ** 2).mean(dim=(1, 2, 3), keepdim=True) / (2 * std4**2))
    assert float(kl_to_reference(mean, ref, std4)) == pytest.approx(float(reference), rel=1e-6)


def test_kl_scalar_std_zero_at_reference_and_gradient():
    mean = torch.ones(2, 3, requires_grad=True)
    assert float(kl_to_reference(mean, mean.detach(), 0.7).detach()) == 0.0
    kl = kl_to_reference(mean, torch.zeros(2, 3), torch.tensor(0.5))
    assert float(kl.detach()) == pytest.approx(1.0 / (2 * 0.25))
    kl.backward()
    torch.testing.assert_close(mean.grad, torch.full((2, 3), 2 * 1.0 / (2 * 0.25) / 6))


def test_kl_rejects_bad_std_shape():
    with pytest.raises(ValueError, match="std_dev"):
        kl_to_reference(torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="shapes must match"):
        kl_to_reference(torch.zeros(3, 2), torch.zeros(3, 3), 1.0)


# ----------------------------------------------------------------------------- EMA
def test_ema_decay_schedule_and_update_cadence():
    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([p], decay=0.9, update_every=8)
    expected = torch.zeros(3)
    for n in range(40):
        with torch.no_grad():
            p.fill_(float(n + 1))
        assert ema.current_decay(n) == min((1 + n) / (10 + n), 0.9)
        updated = ema.step([p], n)
        assert updated == ((n + 1) % 8 == 0)
        if updated:
            d = min((1 + n) / (10 + n), 0.9)
            expected = d * expected + (1 - d) * p.detach()
        torch.testing.assert_close(ema.ema_parameters[0], expected)
    assert ema.current_decay(7) == pytest.approx(8 / 17)
    assert ema.current_decay(1000) == 0.9


def test_ema_skips_frozen_parameters():
    live = torch.nn.Parameter(torch.ones(2))
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    ema = EMA([live, frozen], update_every=1)
    with torch.no_grad():
        live.fill_(3.0)
        frozen.fill_(3.0)
    ema.step([live, frozen], 0)  # decay min(1/10, 0.9) = 0.1
    torch.testing.assert_close(ema.ema_parameters[0], torch.full((2,), 0.1 * 1 + 0.9 * 3))
    torch.testing.assert_close(ema.ema_parameters[1], torch.ones(2))


def test_ema_swapped_in_restores_live_weights_even_on_error():
    p = torch.nn.Parameter(torch.ones(2))
    ema = EMA([p], update_every=1)
    with torch.no_grad():
        p.fill_(5.0)
    with ema.swapped_in([p]):
        torch.testing.assert_close(p.detach(), torch.ones(2))
    torch.testing.assert_close(p.detach(), torch.full((2,), 5.0))
    with pytest.raises(RuntimeError):
        with ema.swapped_in([p]):
            raise RuntimeError("eval failed")
    torch.testing.assert_close(p.detach(), torch.full((2,), 5.0))
    ema.copy_to([p])
    torch.testing.assert_close(p.detach(), torch.ones(2))


def test_ema_state_dict_round_trip_and_errors():
    a, b = torch.nn.Parameter(torch.randn(2, 2)), torch.nn.Parameter(torch.randn(3))
    ema = EMA([a, b], update_every=1)
    with torch.no_grad():
        a.add_(1.0)
    ema.step([a, b], 5)
    other = EMA([torch.zeros(2, 2), torch.zeros(3)])
    other.load_state_dict(ema.state_dict())
    for x, y in zip(other.ema_parameters, ema.ema_parameters):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="has 1 tensors but the EMA tracks 2"):
        ema.step([a], 0)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict({"parameters": [torch.zeros(2, 2), torch.zeros(4)]})
    with pytest.raises(ValueError, match="update_every"):
        EMA([a], update_every=0)
    with pytest.raises(ValueError, match="decay"):
        EMA([a], decay=1.5)
