"""The optional `caches` group (Redis for the gateways' shared router state), planned with
pyinfra's @fake connector next to the production gateways: no host is ever contacted."""

from __future__ import annotations

import pytest

from hxgw.cache_settings import check_redis_password, parse_cache_settings
from hxgw.errors import ConfigError
from hxgw.validation_shared_state import judge_shared_state
from tests.unit.helpers import fake_inventory, plan

CACHE = '\ncaches = [("@fake/hx-cache", {"cache_ip": "192.168.10.50", **_fake, **EXTRA})]\n'


def with_cache(tmp_path, extra: str = "{}", hosts: int = 1) -> object:
    inventory = fake_inventory(tmp_path, "192.168.10.39")
    text = inventory.read_text() + f"EXTRA = {extra}\n" + CACHE
    if hosts == 2:
        text += 'caches.append(("@fake/hx-cache-2", {"cache_ip": "192.168.10.51", **_fake}))\n'
    inventory.write_text(text)
    return inventory


def test_a_caches_group_gets_redis_and_the_gateways_its_password_never_shown(tmp_path):
    result = plan(with_cache(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for step in (
        "tasks/cache.py | Render /etc/redis/hx-redis.conf",
        "tasks/cache.py | Install the Redis password in /etc/redis/hx-redis-secret.conf (value not shown)",
        "tasks/cache.py | Harden redis-server.service (drop-in)",
        "tasks/config.py | Install the Redis password in /opt/HX-Infrastructure-/api-gateway/config/"
        "api-gateway/redis.env (value not shown)",
        "The Redis on @fake/hx-cache takes the gateway's password",
    ):
        assert step in output, step
    password = (tmp_path / ".config/hx-gateway/redis-password").read_text().strip()
    assert len(password) >= 32 and password not in output
    assert oct((tmp_path / ".config/hx-gateway/redis-password").stat().st_mode & 0o777) == "0o600"


def test_without_a_caches_group_no_redis_is_planned(tmp_path):
    result = plan(fake_inventory(tmp_path, "192.168.10.39"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "tasks/cache.py" not in output and "Redis password" not in output
    assert not (tmp_path / ".config/hx-gateway/redis-password").exists()


@pytest.mark.parametrize(
    ("extra", "hosts", "expected"),
    [
        ('{"cache_ip": "192.168.10"}', 1, "cache_ip"),
        ('{"redis_port": 0}', 1, "redis_port"),
        ("{}", 2, "the gateways share ONE Redis: keep one host in `caches`"),
    ],
)
def test_bad_cache_data_stops_the_plan_before_any_host_is_touched(tmp_path, extra, hosts, expected):
    result = plan(with_cache(tmp_path, extra, hosts))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output
    assert "Detected changes" not in output


def test_router_settings_naming_another_redis_are_refused_beside_a_caches_group(tmp_path):
    inventory = with_cache(tmp_path)
    other = "{'redis_host': '10.0.0.5', 'redis_port': 6379}"
    text = f"\ngateways = [(n, {{**d, 'router_settings': {other}}}) for n, d in gateways]\n"
    inventory.write_text(inventory.read_text() + text)
    result = plan(inventory)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "redis_host, redis_port would override the `caches` group's Redis" in output


def test_cache_settings_defaults_and_password_rules():
    settings = parse_cache_settings({"cache_ip": "10.0.0.5"})
    assert (settings.redis_port, settings.redis_persistence, settings.redis_maxmemory_mb) == (6379, False, 64)
    with pytest.raises(ConfigError) as caught:
        check_redis_password("short pass")
    assert "too short" in str(caught.value.problems) and "short pass" not in str(caught.value.problems)
    check_redis_password("A" * 20 + "b-_" * 5)


@pytest.mark.parametrize(
    ("probe", "status", "words"),
    [
        ("OK", "pass", "router state shared in Redis at 10.0.0.5:6379"),
        ("UNREACHABLE [Errno 111] Connection refused", "degraded", "cannot be reached ([Errno 111]"),
        ("REFUSED -WRONGPASS", "degraded", "refused the gateway's password (-WRONGPASS)"),
        (None, "degraded", "could not be asked (no answer)"),
    ],
)
def test_redis_trouble_degrades_the_validation_and_never_fails_it(probe, status, words):
    result = judge_shared_state("10.0.0.5:6379", probe)
    assert (result.check, result.status) == ("shared-state", status)
    assert words in result.detail
