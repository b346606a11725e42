"""The course's Dropout: nn.Dropout's distribution with a mask from torch.rand, the same on every CPU vendor."""

import pytest
import torch
from torch import nn

from seminar_lib.models import DSSM, SASRec
from seminar_lib.models.dropout import Dropout


def test_the_mask_is_uniform_at_least_p_scaled_by_the_keep_rate():
    x = torch.arange(1.0, 13.0).reshape(3, 4)
    torch.manual_seed(5)
    out = Dropout(0.25).train()(x)
    torch.manual_seed(5)
    keep = torch.rand(3, 4) >= 0.25            # the same draw, by hand
    assert torch.equal(out, torch.where(keep, x * (1 / 0.75), torch.zeros_like(x)))


def test_eval_mode_and_p_zero_are_the_identity_and_it_is_an_nn_dropout():
    x = torch.randn(5, 3)
    assert torch.equal(Dropout(0.5).eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    assert isinstance(Dropout(0.1), nn.Dropout) and Dropout(0.1).p == 0.1


def test_the_rate_and_the_mean_are_nn_dropouts():
    torch.manual_seed(0)
    out = Dropout(0.3).train()(torch.ones(200_000))
    assert (out == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_a_probability_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\)"):
        Dropout(p)


def test_no_course_model_uses_torchs_vendor_dependent_dropout():
    """nn.Dropout draws with MKL on Intel and with torch's generator elsewhere: a DSSM trained with it gave other
    numbers on an Intel machine than on the AMD one that made the committed notebooks."""
    import polars as pl

    toy = pl.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 20, 20, 30, 10],
                        "timestamp": [1, 2, 3, 4, 5]})
    nets = [DSSM("softmax", epochs=0, device="cpu", log_every=None).fit(toy).net_,
            SASRec("softmax", epochs=0, device="cpu", log_every=None).fit(toy).net_]
    for net in nets:
        dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
        assert dropouts and all(type(m) is Dropout for m in dropouts)
