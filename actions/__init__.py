"""Custom actions of the Helder support assistant (rasa-sdk action server package)."""

# rasa-sdk has configured logging before it imports this package: mask personal data (e-mail,
# phone, postcode, IBAN) in the action server's log output.
from contract import log_masking as _log_masking

_log_masking.install()

# Prometheus metrics on an internal port, only when ACTIONS_METRICS_PORT is set (actions/metrics.py).
from actions import metrics as _metrics  # noqa: E402

_metrics.install()
