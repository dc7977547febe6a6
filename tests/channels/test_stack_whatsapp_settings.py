"""``make run`` warns when the WhatsApp channel still runs on the local defaults
(scripts/stack.py, :func:`whatsapp_settings_warning`)."""

from scripts.stack import Stack, whatsapp_settings_warning

LIVE = {"WHATSAPP_VERIFY_TOKEN": "a-verify-token", "WHATSAPP_APP_SECRET": "an-app-secret",
        "WHATSAPP_ACCESS_TOKEN": "EAAG-token", "WHATSAPP_PHONE_NUMBER_ID": "106540352242922"}


def test_no_warning_once_the_meta_app_is_configured():
    assert whatsapp_settings_warning(LIVE) is None
    assert whatsapp_settings_warning({**LIVE, "PATH": "/usr/bin"}) is None


def test_a_local_demo_is_told_what_to_set_to_go_live():
    warning = whatsapp_settings_warning({"PATH": "/usr/bin"})
    assert warning and "local defaults" in warning
    assert all(name in warning for name in LIVE)


def test_the_phone_number_id_left_at_its_default_is_named_with_its_consequence():
    for value in ("0", " 0 ", ""):
        warning = whatsapp_settings_warning({**LIVE, "WHATSAPP_PHONE_NUMBER_ID": value})
        assert warning and "WHATSAPP_PHONE_NUMBER_ID" in warning and "answered 200 and ignored" in warning
        assert not any(name in warning for name in LIVE if name != "WHATSAPP_PHONE_NUMBER_ID")
    warning = whatsapp_settings_warning({k: v for k, v in LIVE.items() if k != "WHATSAPP_PHONE_NUMBER_ID"})
    assert warning and "answered 200 and ignored" in warning


def test_a_missing_secret_is_named():
    warning = whatsapp_settings_warning({**LIVE, "WHATSAPP_APP_SECRET": ""})
    assert warning and "WHATSAPP_APP_SECRET" in warning and "200 and ignored" not in warning
    assert "an-app-secret" not in warning and "EAAG-token" not in warning


def test_the_defaults_the_stack_fills_in_are_the_ones_warned_about(tmp_path, monkeypatch):
    """What Stack.env() gives Rasa without WHATSAPP_* in the environment is the local default."""
    import os

    for name in [n for n in os.environ if n.startswith("WHATSAPP_")]:
        monkeypatch.delenv(name)
    env = Stack(redis_url="redis://127.0.0.1:6379/0", jwt_secret="x", log_dir=tmp_path).env()
    assert env["WHATSAPP_PHONE_NUMBER_ID"] == "0"
    assert whatsapp_settings_warning(dict(os.environ)) is not None
    assert whatsapp_settings_warning({**os.environ, **LIVE}) is None
