"""The insights report in the terminal: the same figures as the console's insights page.

    make insights                      # the last 7 days next to the 7 before
    make insights PERIOD=30d CSV=var/insights.csv   # and var/insights-promises.csv
    .venv-handoff/bin/python -m scripts.insights --period 2026-11-01..2026-11-30 --language nl --json

Reads the daily buckets the handoff service aggregates (handoff/insights.py) from Redis at
``HANDOFF_REDIS_URL`` (or ``REDIS_URL``, or ``--redis-url``). Runs in the handoff environment.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from handoff.insights import PROMISE_OUTCOMES, REASONS, build_report, parse_period, promise_rows, report_rows


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes}m{seconds:02d}s"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(report: Dict[str, Any]) -> str:
    """The report as plain text."""
    period, previous = report["period"], report["previous_period"]
    filters = ", ".join(f"{k} {v}" for k, v in report["filters"].items() if v) or "all languages and channels"
    out = [f"Insights {period['from']} .. {period['to']} ({period['days']} days; previous {previous['from']} .. "
           f"{previous['to']}); {filters}", ""]
    totals = report["totals"]
    out.append(f"contacts {totals['contacts']} (previous {totals['previous']}), solved by the assistant "
               f"{totals['solved']}, handed to a person {totals['handed']}, abandoned {totals['abandoned']}, "
               f"open {totals['open']}, repeat contacts {totals['repeat']}")
    out.append("by language: " + (", ".join(f"{k} {v}" for k, v in sorted(report["by_language"].items())) or "-")
               + "; by channel: " + (", ".join(f"{k} {v}" for k, v in sorted(report["by_channel"].items())) or "-"))
    out.append("")
    reasons = [r for r in REASONS if any(t["reasons"].get(r) for t in report["topics"])]
    rows = []
    for topic in report["topics"]:
        change = "new" if topic["previous"] == 0 and topic["contacts"] else (
            f"{topic['change']:+d}" + (f" ({topic['change_percent']:+.0f}%)" if topic["change_percent"] is not None else ""))
        rows.append([topic["name"], topic["contacts"], topic["previous"], change, topic["solved"], topic["handed"],
                     topic["abandoned"], topic["open"], topic["repeat"], *(topic["reasons"].get(r, 0) for r in reasons)])
    out.append(_table(["topic", "contacts", "prev", "change", "solved", "handed", "abandoned", "open", "repeat",
                       *(f"({REASONS[r]})" for r in reasons)], rows) if rows else "no contacts in this period")
    out.append("")
    waiting = report["waiting"]
    wait, reply = waiting["wait_for_person"], waiting["first_human_reply"]
    out.append(f"wait for a person: {wait['count']} cases, median {_seconds(wait['median_seconds'])}, "
               f"p90 {_seconds(wait['p90_seconds'])}; first human reply: median {_seconds(reply['median_seconds'])}, "
               f"p90 {_seconds(reply['p90_seconds'])}; past their promised reply time now: "
               f"{waiting['past_promised_reply_now']}")
    promises = report["promises"]
    out.append(f"case reply promises: made {promises['made']}, kept {promises['kept']}, late {promises['late']}, "
               f"open {promises['open']}; goodwill granted: {report['goodwill']['granted']}"
               + "".join(f", {kind.replace('_', ' ')} {n}" for kind, n in report["goodwill"]["by_kind"].items()))
    out.append("")
    out.append("promises made in the period, per kind (reply: a case answered by its reply-by time; "
               "the rest: the customer backend's):")
    columns = ("made", *PROMISE_OUTCOMES, "open")
    kinds: List[Sequence[Any]] = [[row["promise"], *(row[c] for c in columns)] for row in promise_rows(report)]
    out.append(_table(["promise", *columns], kinds))
    if report["outages"]:
        out.append("contacts caused by known outages: "
                   + ", ".join(f"{o['outage']} {o['contacts']}" for o in report["outages"]))
    if report["repeats"]:
        out.append("")
        out.append(_table(["repeat contact", "topic", "customer", "conversation", "previous conversation"],
                          [[r["at"], r["topic"], r["customer_id"], r["conversation_id"], r["previous_conversation_id"]]
                           for r in report["repeats"]]))
    words = [(t["name"], s) for t in report["topics"] for s in t["snippets"]]
    if words:
        out.append("")
        out.append("in the customers' own words:")
        out += [f"  [{name}] ({s['language']}, {s['channel']}) {s['text']}" for name, s in words]
    if report["feedback"]["items"]:
        out.append("")
        out.append("feedback customers gave:")
        out += [f"  ({f['language']}, {f['channel']}, {f['at'][:10]}) {f['text']}" for f in report["feedback"]["items"]]
    return "\n".join(out)


def promises_csv_path(path: Path) -> Path:
    """Where the promises per kind go next to the per-topic CSV: ``week.csv`` → ``week-promises.csv``."""
    return path.with_name(f"{path.stem}-promises{path.suffix or '.csv'}")


def write_csv(report: Dict[str, Any], path: Path) -> List[Path]:
    """The per-topic rows to ``path`` (as ``GET /api/insights.csv``) and the promises per kind
    next to it (as ``?table=promises``); returns both paths."""
    written = []
    for target, rows in ((path, report_rows(report)), (promises_csv_path(path), promise_rows(report))):
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding="utf-8") as handle:
            if rows:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        written.append(target)
    return written


async def _main(args: argparse.Namespace) -> int:
    try:
        period = parse_period(args.period)
    except ValueError as error:
        print(f"insights: {error}", file=sys.stderr)
        return 2
    redis = Redis.from_url(args.redis_url, decode_responses=True)
    try:
        report = await build_report(redis, period, language=args.language or None, channel=args.channel or None)
    except (RedisError, OSError) as error:
        print(f"insights: Redis at {args.redis_url} failed: {error}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else render(report))
    if args.csv:
        written = write_csv(report, Path(args.csv))
        print("CSV written to " + " and ".join(str(path) for path in written), file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.insights", description=__doc__.split("\n")[0])
    parser.add_argument("--period", default=os.environ.get("PERIOD") or "7d",
                        help="'7d' (default), '30d' or 'YYYY-MM-DD..YYYY-MM-DD' (UTC days)")
    parser.add_argument("--language", help="only this language (nl, en)")
    parser.add_argument("--channel", help="only this channel (socketio, whatsapp, rest)")
    parser.add_argument("--csv", help="also write the per-topic table to this CSV file (and the promises per "
                                      "kind to <name>-promises.csv)")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument("--redis-url", default=os.environ.get("HANDOFF_REDIS_URL") or os.environ.get("REDIS_URL")
                        or "redis://127.0.0.1:6379/0")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
