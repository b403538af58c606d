"""custom.losses against independent numpy implementations of the reference agent's code."""

import numpy as np
import pytest
import torch

from custom.losses import LOSSES, loss_function, mse, reference_huber, smooth_l1


def numpy_reference_huber(delta: np.ndarray) -> np.ndarray:
    """Seed 000's loss per element: ``|d| - 0.5`` where that exceeds 1, else ``0.5 d^2``."""
    linear = np.abs(delta) - 0.5
    return np.where(linear > 1.0, linear, 0.5 * delta**2)


def _loss(fn_name: str, delta: np.ndarray) -> float:
    """The named loss with Q(s, a) = 0 and targets ``delta``, both (batch, 1) float32."""
    target = torch.as_tensor(delta, dtype=torch.float32).reshape(-1, 1)
    return float(LOSSES[fn_name](torch.zeros_like(target), target))


def test_reference_loss_equals_numpy_on_random_deltas() -> None:
    rng = np.random.default_rng(0)
    current = rng.normal(scale=2.0, size=(256, 1)).astype(np.float32)
    target = rng.normal(scale=2.0, size=(256, 1)).astype(np.float32)
    delta = target - current
    # both branches are exercised
    assert (np.abs(delta) < 1.5).sum() > 50 and (np.abs(delta) > 1.5).sum() > 50

    got = reference_huber(torch.as_tensor(current), torch.as_tensor(target))

    np.testing.assert_allclose(float(got), numpy_reference_huber(delta).mean(), rtol=1e-6)


def test_reference_loss_at_the_switch_is_the_squared_branch() -> None:
    delta = np.array([1.5, -1.5], dtype=np.float32)
    assert _loss("reference", delta) == numpy_reference_huber(delta).mean() == 1.125
    # just beyond the switch the linear branch gives about 1.0: the documented discontinuity
    beyond = np.nextafter(np.float32(1.5), np.float32(2.0))
    assert _loss("reference", np.array([beyond])) == pytest.approx(1.0, abs=1e-6)


def test_reference_and_smooth_l1_differ_only_between_1_and_1_5() -> None:
    for d in (0.3, -0.9, 1.6, -4.0):  # both 0.5 d^2 below 1, both |d| - 0.5 beyond 1.5
        assert _loss("reference", np.array([d])) == pytest.approx(_loss("smooth_l1", np.array([d])))
    d = 1.25
    assert _loss("reference", np.array([d])) == pytest.approx(0.5 * d**2)
    assert _loss("smooth_l1", np.array([d])) == pytest.approx(d - 0.5)


def test_reference_loss_is_the_seed_matrix_form_up_to_batch_over_n_actions() -> None:
    """Seed 000 masks a (batch, n_actions) matrix with the one-hot actions, averages over the
    action axis and differentiates the (batch, 1) result, i.e. its sum over the batch."""
    rng = np.random.default_rng(1)
    batch, n_actions = 32, 4
    q = rng.normal(scale=2.0, size=(batch, n_actions)).astype(np.float32)
    target = rng.normal(scale=2.0, size=(batch, 1)).astype(np.float32)
    actions = rng.integers(0, n_actions, batch)
    one_hot = np.eye(n_actions, dtype=np.float32)[actions]
    delta_mat = target * one_hot - q * one_hot
    seed_objective = numpy_reference_huber(delta_mat).mean(axis=1, keepdims=True).sum()

    q_taken = torch.as_tensor(q[np.arange(batch), actions]).reshape(-1, 1)
    ours = float(reference_huber(q_taken, torch.as_tensor(target)))

    np.testing.assert_allclose(ours * batch / n_actions, seed_objective, rtol=1e-6)


def test_reference_loss_gradient_is_delta_then_sign() -> None:
    current = torch.zeros(2, 1, requires_grad=True)
    target = torch.tensor([[1.2], [-3.0]])
    reference_huber(current, target).backward()
    assert current.grad is not None
    # mean over 2: d(0.5 d^2)/dQ = -d, d(|d| - 0.5)/dQ = -sign(d)
    torch.testing.assert_close(current.grad, torch.tensor([[-1.2], [1.0]]) / 2)


def test_loss_function_names() -> None:
    assert loss_function("smooth_l1") is smooth_l1
    assert loss_function("reference") is reference_huber
    assert loss_function("mse") is mse
    with pytest.raises(
        ValueError, match=r"loss must be one of 'smooth_l1', 'reference', 'mse'; got 'l2'"
    ):
        loss_function("l2")


def test_mse_is_dopamines_mean_squared_td_error_without_a_half() -> None:
    delta = np.array([0.5, -2.0, 3.0], dtype=np.float32)
    assert _loss("mse", delta) == pytest.approx(float((delta**2).mean()))
    current = torch.zeros(3, 1, requires_grad=True)
    mse(current, torch.as_tensor(delta).reshape(-1, 1)).backward()
    assert current.grad is not None
    np.testing.assert_allclose(current.grad.flatten().numpy(), -2.0 * delta / 3, rtol=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
def test_weighted_loss_is_the_mean_of_weighted_per_sample_losses(name: str) -> None:
    rng = np.random.default_rng(1)
    current = rng.normal(scale=2.0, size=(64, 1)).astype(np.float32)
    target = rng.normal(scale=2.0, size=(64, 1)).astype(np.float32)
    weights = rng.uniform(0.1, 1.0, size=(64, 1)).astype(np.float32)
    delta = target - current
    huber = np.where(np.abs(delta) < 1, 0.5 * delta**2, np.abs(delta) - 0.5)
    per_sample = {"smooth_l1": huber, "reference": numpy_reference_huber(delta), "mse": delta**2}[
        name
    ]
    current_t = torch.as_tensor(current, dtype=torch.float32).requires_grad_()
    got = LOSSES[name](current_t, torch.as_tensor(target), torch.as_tensor(weights))
    np.testing.assert_allclose(float(got.detach()), (weights * per_sample).mean(), rtol=1e-6)
    got.backward()  # the weights scale each sample's gradient
    assert current_t.grad is not None
    unweighted = torch.as_tensor(current).requires_grad_()
    LOSSES[name](unweighted, torch.as_tensor(target)).backward()
    assert unweighted.grad is not None
    torch.testing.assert_close(current_t.grad, unweighted.grad * torch.as_tensor(weights))
    # unit weights change nothing
    ones = torch.ones(64, 1)
    unit = LOSSES[name](torch.as_tensor(current), torch.as_tensor(target), ones)
    torch.testing.assert_close(
        unit, LOSSES[name](torch.as_tensor(current), torch.as_tensor(target))
    )
