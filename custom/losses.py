"""TD losses on the Q-value of the action taken: SB3's smooth L1, the reference agent's, MSE.

Every loss takes ``current_q`` (Q(s, a) of the taken actions, with grad) and ``target_q`` (the
TD targets, no grad), both of shape (batch, 1), and returns a scalar: the mean over the batch,
or, given ``weights`` (batch, 1) (prioritized replay's importance weights), the mean of the
per-sample losses times their weights. :func:`loss_function` maps the names that
:class:`custom.dqn.TargetDQN` accepts (``loss=``) to them.
"""

from typing import Protocol

import torch as th
from torch.nn import functional as F


class LossFn(Protocol):
    """``(current_q, target_q, weights=None) -> scalar loss``, see the module docstring."""

    def __call__(
        self, current_q: th.Tensor, target_q: th.Tensor, weights: th.Tensor | None = None
    ) -> th.Tensor: ...


def _weighted_mean(per_sample: th.Tensor, weights: th.Tensor | None) -> th.Tensor:
    return per_sample.mean() if weights is None else (per_sample * weights).mean()


def smooth_l1(
    current_q: th.Tensor, target_q: th.Tensor, weights: th.Tensor | None = None
) -> th.Tensor:
    """SB3's DQN loss, ``F.smooth_l1_loss`` (Huber with beta = 1), called exactly as SB3 does.

    :param current_q: Q(s, a) of the taken actions, (batch, 1)
    :param target_q: TD targets, (batch, 1)
    :param weights: per-sample weights, (batch, 1); None: SB3's call, bit for bit
    :return: the (weighted) mean loss over the batch
    """
    if weights is None:
        return F.smooth_l1_loss(current_q, target_q)
    return _weighted_mean(F.smooth_l1_loss(current_q, target_q, reduction="none"), weights)


def reference_huber(
    current_q: th.Tensor, target_q: th.Tensor, weights: th.Tensor | None = None
) -> th.Tensor:
    """The reference agent's (seed 000) "Huber" loss, its formula kept exactly.

    With ``d = target - Q(s, a)``: ``0.5 d^2`` where ``|d| - 0.5 <= 1``, else ``|d| - 0.5``.
    The switch is at ``|d| = 1.5`` (not at 1 as in a true Huber loss), so the loss is
    discontinuous there: 1.125 at ``|d| = 1.5`` exactly (the squared branch, as the
    reference's strict ``tf.greater`` picks it), 1.0 just beyond. The gradient's magnitude is
    ``|d|`` up to 1.5 and drops to 1 beyond (a true Huber loss caps it at 1, continuously).

    Reduction: the reference computes the loss on a (batch, n_actions) matrix that is zero
    except at the taken action, takes the mean over the action axis (a constant factor
    ``1 / n_actions``), and differentiates the resulting (batch, 1) tensor, which TensorFlow
    sums over the batch. That is this loss times ``batch_size / n_actions``. We do not keep
    that factor: the mean over the batch keeps ``train/loss`` comparable with
    :func:`smooth_l1`, and a constant factor changes an Adam update only through Adam's epsilon
    and SB3's gradient-norm clipping (``max_grad_norm``).

    :param current_q: Q(s, a) of the taken actions, (batch, 1)
    :param target_q: TD targets, (batch, 1)
    :param weights: per-sample weights, (batch, 1), or None
    :return: the (weighted) mean loss over the batch
    """
    delta = target_q - current_q
    linear = delta.abs() - 0.5
    return _weighted_mean(th.where(linear > 1.0, linear, 0.5 * delta.square()), weights)


def mse(current_q: th.Tensor, target_q: th.Tensor, weights: th.Tensor | None = None) -> th.Tensor:
    """Dopamine's JAX DQN loss (``loss_type="mse"``, its default): the mean squared TD error.

    No factor 1/2, as in Dopamine's ``losses.mse_loss``: the MinAtar protocol of Revisiting
    Rainbow (Obando-Ceron & Castro, 2021) trains with it, and its gradient is then ``2 d``.

    :param current_q: Q(s, a) of the taken actions, (batch, 1)
    :param target_q: TD targets, (batch, 1)
    :param weights: per-sample weights, (batch, 1), or None
    :return: the (weighted) mean loss over the batch
    """
    return _weighted_mean(F.mse_loss(current_q, target_q, reduction="none"), weights)


LOSSES: dict[str, LossFn] = {"smooth_l1": smooth_l1, "reference": reference_huber, "mse": mse}
"""Loss name (``TargetDQN(loss=...)``) -> loss function."""


def loss_function(name: str) -> LossFn:
    """The loss called ``name``, or a ValueError that lists the known names.

    :param name: a key of :data:`LOSSES`
    :return: the loss function
    """
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}; got {name!r}")
    return LOSSES[name]
