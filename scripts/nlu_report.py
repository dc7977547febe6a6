"""Intent F1 per language on the held-out sets (tests/nlu_holdout_{nl,en}.yml).

Runs ``rasa test nlu`` with the current model on each set and prints macro and weighted F1,
plus the weakest intents. Exits non-zero when a language's macro F1 is below --min-f1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.model import ensure_model  # noqa: E402

LANGUAGES = ("nl", "en")


def evaluate(language: str, model: Path) -> dict:
    """Runs rasa test nlu on one hold-out set and returns the intent report."""
    out = ROOT / "results" / f"nlu_{language}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", RASA_TELEMETRY_ENABLED="false")
    log = ROOT / "results" / f"nlu_{language}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as handle:
        subprocess.run(
            [sys.executable, "-m", "rasa", "test", "nlu", "--model", str(model),
             "--nlu", f"tests/nlu_holdout_{language}.yml", "--out", str(out), "--no-plot"],
            cwd=ROOT, env=env, check=True, stdout=handle, stderr=subprocess.STDOUT,
        )
    return json.loads((out / "intent_report.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-f1", type=float, default=0.0, help="fail below this macro F1")
    args = parser.parse_args()
    model = ensure_model()
    summary = {}
    failed = False
    for language in LANGUAGES:
        report = evaluate(language, model)
        macro, weighted = report["macro avg"]["f1-score"], report["weighted avg"]["f1-score"]
        intents = {k: v for k, v in report.items() if isinstance(v, dict) and "support" in v and "avg" not in k}
        weakest = sorted(intents.items(), key=lambda kv: kv[1]["f1-score"])[:3]
        summary[language] = {"macro_f1": round(macro, 4), "weighted_f1": round(weighted, 4),
                             "accuracy": round(report.get("accuracy", 0.0), 4),
                             "examples": int(report["weighted avg"]["support"])}
        print(f"{language}: intent macro F1 {macro:.3f}, weighted F1 {weighted:.3f} "
              f"on {summary[language]['examples']} held-out examples; weakest: "
              + ", ".join(f"{name} {scores['f1-score']:.2f}" for name, scores in weakest))
        if macro < args.min_f1:
            print(f"  FAIL: {language} macro F1 {macro:.3f} < {args.min_f1}")
            failed = True
    (ROOT / "results" / "nlu_summary.json").write_text(json.dumps(summary, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
