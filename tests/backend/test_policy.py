"""The operator's policy file: the shipped one is valid, a broken one is refused as a whole with
the key that is wrong, and a change is picked up without a restart."""

from __future__ import annotations

import copy
import os
from typing import Any, Dict

import pytest
import yaml

from actions.backend.policy import DEFAULT_POLICY_FILE, ENV_POLICY_FILE, PolicyError, PolicyFile, parse_policy


def shipped() -> Dict[str, Any]:
    return yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))


def test_the_shipped_policy(monkeypatch):
    monkeypatch.delenv(ENV_POLICY_FILE, raising=False)
    policy = PolicyFile().get()
    assert policy.bot_limit_cents == 2500 and policy.outage_min_hours == 12
    assert policy.outage_cents_per_hour == (50, 75) and policy.steps("outage") == 2
    assert [s.type for s in policy.late_order_steps] == ["delivery_costs", "voucher"]
    assert policy.defect_extras["playstation game"].en == "a PlayStation game of your choice"
    assert (policy.failed_payment_hold_days, policy.erasure_days, policy.signup_token_hours) == (7, 30, 24)


def _set(data: Dict[str, Any], dotted: str, value: Any) -> Dict[str, Any]:
    data = copy.deepcopy(data)
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("dotted, value, named", [
    ("version", 2, "version"),
    ("bot_limit_cents", -1, "bot_limit_cents"),
    ("bot_limit_cents", "25 euro", "bot_limit_cents"),
    ("bot_limit_cents", True, "bot_limit_cents"),
    ("goodwill.outage.min_hours", KeyError, "goodwill.outage.min_hours"),
    ("goodwill.outage.bill_day", 31, "bill_day"),
    ("goodwill.outage.steps", [], "goodwill.outage.steps"),
    ("goodwill.outage.steps", [{"credit_cents_per_hour": 75}, {"credit_cents_per_hour": 50}], "go up"),
    ("goodwill.late_order.steps", [{"type": "flowers", "cents": 100}], "goodwill.late_order.steps[0].type"),
    ("goodwill.lost_order.steps", [{"type": "voucher", "cents": 500}], "valid_days"),
    ("goodwill.defect.extras", {"capsules": {"nl": "capsules"}}, "extras.capsules"),
    ("account.signup_url", "javascript:alert(1)", "signup_url"),
    ("privacy.erasure_days", 0, "privacy.erasure_days"),
])
def test_a_broken_policy_names_the_key(dotted, value, named):
    with pytest.raises(PolicyError, match=r"policy: .*" + named.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(_set(shipped(), dotted, value))


def test_not_a_mapping():
    with pytest.raises(PolicyError):
        parse_policy(["version", 1])


def test_a_change_is_read_without_a_restart(tmp_path, monkeypatch):
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(shipped(), allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv(ENV_POLICY_FILE, str(path))
    policy_file = PolicyFile()
    assert policy_file.get().bot_limit_cents == 2500
    path.write_text(yaml.safe_dump(_set(shipped(), "bot_limit_cents", 4000), allow_unicode=True), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a coarse clock must see it too
    assert policy_file.get().bot_limit_cents == 4000
    path.unlink()
    with pytest.raises(PolicyError):
        policy_file.get()


def test_unreadable_yaml(tmp_path):
    path = tmp_path / "policy.yml"
    path.write_text("version: [1\n", encoding="utf-8")
    with pytest.raises(PolicyError):
        PolicyFile(path).get()


def test_a_database_seeded_before_the_new_tables_gains_them(tmp_path, monkeypatch):
    """`make run` seeds only an empty database; an older one still gets the tables added since."""
    import sys

    from sqlalchemy import inspect

    from actions.backend import seed as seed_module
    from actions.backend.sql import CustomerRow, GoodwillRow, SqlBackend

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = SqlBackend(url)
    seed_module.seed(old)
    GoodwillRow.__table__.drop(old.engine)
    assert "goodwill" not in inspect(old.engine).get_table_names()
    monkeypatch.setenv("KLANTCONTACT_DB_URL", url)
    monkeypatch.setattr(sys, "argv", ["seed", "--if-empty"])
    seed_module.main()
    assert "goodwill" in inspect(old.engine).get_table_names()
    with old.transaction() as session:
        assert session.query(CustomerRow).count() >= 12
    old.dispose()
