"""Unknown prior names in the reference models: one message format, with a suggestion."""

from __future__ import annotations

import pytest

from polygvc.errors import ConfigError
from polygvc.models import panel_threshold
from polygvc.models.linear_iv import resolve_linear_iv_priors
from polygvc.models.priors import check_prior_name
from polygvc.models.varying_intercept import resolve_varying_intercept_priors

SETTING = {"dist": "Normal", "mu": 0.0, "sigma": 1.0}


@pytest.mark.parametrize(
    ("resolve", "typo", "message"),
    [
        (
            resolve_linear_iv_priors,
            "betta",
            "Unknown linear IV prior name 'betta'. Did you mean 'beta'?",
        ),
        (
            resolve_varying_intercept_priors,
            "sigmma",
            "Unknown varying-intercept prior name 'sigmma'. Did you mean 'sigma'?",
        ),
        (
            panel_threshold._resolve_priors,
            "sigma_scaled_",
            "Unknown panel threshold prior name 'sigma_scaled_'. Did you mean 'sigma_scaled'?",
        ),
    ],
)
def test_unknown_prior_name_suggests(resolve, typo, message):
    with pytest.raises(ConfigError) as info:
        resolve({typo: SETTING})
    assert str(info.value).startswith(message)
    assert "Valid names: " in str(info.value)


def test_unknown_prior_name_without_match():
    with pytest.raises(ConfigError) as info:
        check_prior_name("zzz", ["alpha", "beta"], "test")
    assert str(info.value) == "Unknown test prior name 'zzz'. Valid names: alpha, beta."


def test_known_prior_name_passes():
    assert check_prior_name("beta", ["alpha", "beta"], "test") is None
