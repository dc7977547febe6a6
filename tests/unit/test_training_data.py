"""The training data never contains the demo customers' numbers or postcodes: the model would
learn them, and the tests that use these customers would prove less."""

from pathlib import Path

from actions.backend.seed import CUSTOMERS

ROOT = Path(__file__).resolve().parents[2]


def test_no_demo_customer_number_or_postcode_in_the_training_data():
    texts = {p: p.read_text(encoding="utf-8") for p in sorted((ROOT / "data").rglob("*.yml"))}
    for customer in CUSTOMERS:
        for value in (customer.id, customer.postcode, customer.email):
            for path, text in texts.items():
                if len(value) > 4:  # a Belgian postcode alone ("3000") is too short to be told from prices
                    assert value not in text, f"{path.relative_to(ROOT)}: demo value {value}"
                else:
                    assert f"[{value}](postcode)" not in text, f"{path.relative_to(ROOT)}: demo postcode {value}"
