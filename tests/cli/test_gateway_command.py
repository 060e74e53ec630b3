"""``meterpay gateway`` option parsing: every option reaches the gateway's configuration."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from meterpay.cli.management.commands import gateway as command
from meterpay.gateway.main import GatewayConfig


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[GatewayConfig]:
    configs: list[GatewayConfig] = []

    async def run_gateway(config: GatewayConfig) -> None:
        configs.append(config)

    monkeypatch.setattr(command, "run_gateway", run_gateway)
    return configs


def test_defaults_are_the_configurations_defaults(started: list[GatewayConfig]) -> None:
    call_command("gateway")
    (config,) = started
    default = GatewayConfig()
    assert (config.request_retries, config.batch_size, config.batch_delay) == (
        default.request_retries,
        default.batch_size,
        default.batch_delay,
    )
    assert config.mqtt_host == "127.0.0.1"


def test_options_reach_the_configuration(started: list[GatewayConfig]) -> None:
    call_command(
        "gateway",
        *("--port", "9100", "--request-timeout", "1.5", "--request-retries", "0"),
        *("--batch-size", "50", "--batch-delay", "0.2", "--no-mqtt"),
    )
    (config,) = started
    assert config.port == 9100
    assert config.request_timeout == 1.5
    assert config.request_retries == 0
    assert config.batch_size == 50
    assert config.batch_delay == 0.2
    assert config.mqtt_host is None


@pytest.mark.parametrize(
    ("option", "value"),
    [("--request-retries", "-1"), ("--batch-size", "0"), ("--batch-delay", "-0.1")],
)
def test_out_of_range_values_are_refused(
    started: list[GatewayConfig], option: str, value: str
) -> None:
    with pytest.raises(CommandError, match=option):
        call_command("gateway", option, value)
    assert started == []
