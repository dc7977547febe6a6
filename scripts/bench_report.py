"""Writes docs/benchmarks.md from the benchmark results in results/ (generated, never edited).

Reads results/bench_turns.json, bench_handoff.json, bench_understanding.json and
bench_profile.json (whichever exist) and renders one page: the machine, the date, the command,
every figure next to its same-run baseline and its target. With results/bench_turns_before.json
(scripts/bench_turns.py run on the commit before a change, same machine) it adds what the change
saved, stage by stage of the profile under load.

    PYTHONPATH=. .venv/bin/python scripts/bench_report.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchlib import RESULTS, machine  # noqa: E402

OUT = ROOT / "docs" / "benchmarks.md"


def load(name: str) -> Optional[Dict[str, Any]]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def table(header: List[str], rows: List[List[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def turns_section(data: Dict[str, Any]) -> List[str]:
    out: List[str] = []
    targets = data["targets"]
    latency = data.get("latency")
    if latency:
        ours, base = latency["ours"], latency["baseline"]
        out += ["## Turn latency (REST channel, one conversation at a time)", "",
                f"{ours['n']} turns of ours (multi-turn conversations with identification, backend lookups and the "
                f"action server in the loop) and {base['n']} turns of the baseline (`rasa init`'s starter bot, "
                "served with Rasa's defaults), interleaved conversation by conversation.", ""]
        out += table(["", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                     [["ours", ours["p50_ms"], ours["p95_ms"], ours["p99_ms"], ours["max_ms"]],
                      ["baseline (rasa init)", base["p50_ms"], base["p95_ms"], base["p99_ms"], base["max_ms"]],
                      ["ratio", latency["ratio_p50"], latency["ratio_p95"], latency["ratio_p99"], ""]])
        ok = latency["ratio_p95"] <= targets["turn_p95_ratio_max"]
        out += [f"Target: p95 at most {targets['turn_p95_ratio_max']}× the baseline's: "
                f"{latency['ratio_p95']}× ({verdict(ok)}).", ""]
    throughput = data.get("throughput")
    if throughput:
        out += ["## Throughput (simulated customers, each with its own conversations)", "",
                f"Think time exponential with mean {throughput['think_time_s']} s; each step runs "
                f"{throughput['step_seconds']:.0f} s after a warm-up; the ramp stops at the first step whose p95 "
                f"passes {targets['p95_limit_ms']:.0f} ms or whose errors pass 1 %, then walks from the last step "
                f"that held towards it in finer steps of {throughput.get('refine_seconds', 0):.0f} s each "
                "(marked *), up to the first that does not hold. The load average is the 1-minute one as the "
                "step starts; CPU ms per turn is each process's user + system time over the answered turns.", ""]
        for name, value in throughput.items():
            if not isinstance(value, dict) or "steps" not in value:
                continue
            out += [f"**{name.replace('_', ' ')}**", ""]
            out += table(["customers", "turns/s", "p50 ms", "p95 ms", "p99 ms", "errors", "load", "CPU ms per turn"],
                         [[f"{s['customers']}{' *' if s.get('refined') else ''}", s["turns_per_s"],
                           s.get("p50_ms", ""), s.get("p95_ms", ""), s.get("p99_ms", ""), pct(s["error_rate"]),
                           s.get("load_1m_at_start", ""),
                           ", ".join(f"{k} {v}" for k, v in s.get("cpu_ms_per_turn", {}).items())]
                          for s in value["steps"]])
        base_best = (throughput.get("baseline") or {}).get("sustained", {}).get("turns_per_s")
        out += [f"Sustained with p95 under {targets['p95_limit_ms']:.0f} ms and errors under 1 % "
                f"(target at least {targets['sustained_ratio_min']}× the baseline's, same run):", ""]
        rows = []
        for name, value in throughput.items():
            if isinstance(value, dict) and "sustained" in value:
                best = value["sustained"]
                ratio = round(best["turns_per_s"] / base_best, 2) if base_best else None
                rows.append([name.replace("_", " "), best["turns_per_s"], best.get("customers", ""),
                             best.get("p95_ms", ""), pct(best.get("error_rate")), "" if ratio is None else ratio,
                             "" if name == "baseline" or ratio is None
                             else verdict(ratio >= targets["sustained_ratio_min"])])
        out += table(["", "turns/s", "customers", "p95 ms", "errors", "× baseline", "target"], rows)
    out += profile_under_load_section(data.get("profile_under_load"))
    memory = data.get("memory_mib")
    if memory:
        out += ["## Memory (resident, MiB, process and children)", ""]
        out += table(["process", "idle", "peak under load"],
                     [[name, values["idle"], values["peak_under_load"]] for name, values in memory.items()])
        rasa = memory["rasa"]
        ok = max(rasa["idle"], rasa["peak_under_load"]) <= targets["rasa_rss_max_mib"]
        out += [f"Target: Rasa server at most {targets['rasa_rss_max_mib']} MiB: "
                f"{max(rasa['idle'], rasa['peak_under_load'])} MiB ({verdict(ok)}).", ""]
    training, start = data.get("training") or None, data.get("start")
    if training or start:
        out += ["## Training and start-up", ""]
        rows = []
        if training:
            rows.append(["training from scratch (empty cache)", f"{training.get('ours_s', 'n/a')} s",
                         f"{training.get('baseline_s', 'n/a')} s"])
        if start:
            rows += [["rasa run → /status has the model", f"{start['ours_rasa_status_s']} s",
                      f"{start['baseline_rasa_status_s']} s"],
                     ["rasa run → first message answered", f"{start['ours_rasa_first_answer_s']} s",
                      f"{start['baseline_rasa_first_answer_s']} s"],
                     ["action server → /health", f"{start['ours_actions_s']} s", "(none)"],
                     ["handoff service → /health", f"{start['ours_handoff_s']} s", "(none)"]]
        out += table(["", "ours", "baseline (rasa init)"], rows)
    return out


def profile_under_load_section(data: Optional[Dict[str, Any]]) -> List[str]:
    if not data:
        return []
    step = data["step"]
    out = ["## Profile under load (py-spy on every process)", "",
           f"{data['customers']} customers (the knee of the ramp above), {step['seconds']:.0f} s, "
           f"{step['turns_per_s']} turns/s at p95 {step.get('p95_ms', 'n/a')} ms (while sampled); py-spy sampled "
           f"the thread holding the GIL of each process {data['rate_hz']} times a second "
           "(scripts/sampling_profile.py says why). GIL ms per turn: samples over answered turns; native work "
           "outside the GIL (TensorFlow's threads) is only in the CPU ms per turn of the ramp. A stage is "
           "every sample whose stack passes through it, so stages overlap.", ""]
    cpu = step.get("cpu_ms_per_turn", {})
    for name, summary in data["processes"].items():
        out += [f"**{name}**: {summary['gil_ms_per_turn']} ms with the GIL per turn ({summary['samples']} samples); "
                f"CPU {cpu.get(name, 'n/a')} ms per turn", ""]
        out += table(["stage", "GIL ms per turn", "share"],
                     [[row["stage"], row["gil_ms_per_turn"], pct(row["share"])] for row in summary["stages"]])
        out += table(["own time of", "GIL ms per turn", "share"],
                     [[f"`{row['function']}`", row["gil_ms_per_turn"], pct(row["share"])]
                      for row in summary["top_self"][:8]])
    return out


#: The fixes made after the profile under load: (the stage it cut, what was done, where).
FIXES = (
    ("event classes looked up (Event.resolve_by_type)",
     "an event's class from a table by type name, not a walk over every subclass of Event per event",
     "bot/event_lookup.py"),
    ("action responses validated (jsonschema)",
     "each event of an action's response checked against its own type's schema, not all thirty",
     "bot/action_validation.py"),
    ("  of which a new connection to the action server",
     "one kept-alive HTTP session to the action server instead of a new session and connection per call",
     "bot/endpoint_sessions.py"),
)


def _stage(profile: Dict[str, Any], process: str, stage: str) -> float:
    stages = profile["processes"].get(process, {}).get("stages", [])
    return next((row["gil_ms_per_turn"] for row in stages if row["stage"] == stage), 0.0)


def fixes_section(before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> List[str]:
    """Before (results/bench_turns_before.json: the same benchmark on the commit before the fixes)
    and after (this run), where both have a profile under load."""
    if not before or not after or not before.get("profile_under_load") or not after.get("profile_under_load"):
        return []
    old, new = before["profile_under_load"], after["profile_under_load"]
    out = ["## What the profile found, and what each fix saved", "",
           f"Before: {before.get('commit_note', 'an earlier run')} (results/bench_turns_before.json, "
           f"{before['date']}); after: this run. Rasa's GIL ms per turn under load "
           f"({old['customers']} and {new['customers']} customers), below 1 % of the samples counted as 0.", ""]
    rows = [[f"`{where}`: {what}", f"{_stage(old, 'rasa', stage)} → {_stage(new, 'rasa', stage)}"]
            for stage, what, where in FIXES]
    for process in ("rasa", "actions", "handoff"):
        if process in old["processes"] and process in new["processes"]:
            rows.append([f"{process}: all GIL time per turn", f"{old['processes'][process]['gil_ms_per_turn']} → "
                         f"{new['processes'][process]['gil_ms_per_turn']}"])
    old_cpu, new_cpu = old["step"].get("cpu_ms_per_turn", {}), new["step"].get("cpu_ms_per_turn", {})
    rows.append(["CPU ms per turn (/proc) at the profiled step: rasa, actions, handoff",
                 f"{', '.join(str(old_cpu.get(p, 'n/a')) for p in ('rasa', 'actions', 'handoff'))} → "
                 f"{', '.join(str(new_cpu.get(p, 'n/a')) for p in ('rasa', 'actions', 'handoff'))}"])
    if before.get("latency") and after.get("latency"):
        b, a = before["latency"], after["latency"]
        rows.append(["turn latency p50 / p95, one conversation at a time (ratio to the same run's baseline)",
                     f"{b['ours']['p50_ms']} / {b['ours']['p95_ms']} ms ({b['ratio_p95']}×) → "
                     f"{a['ours']['p50_ms']} / {a['ours']['p95_ms']} ms ({a['ratio_p95']}×)"])
    out += table(["fix, or figure", "before → after (ms)"], rows)
    return out


def handoff_section(data: Dict[str, Any]) -> List[str]:
    out = ["## Handoff delivery", "",
           f"{data.get('customers', '?')} customers × {data.get('messages_each_way', '?')} messages each way; "
           "from the send until the other side has it; Rasa as make run starts it "
           f"({data.get('rasa_workers', 1)} worker process(es)).", ""]
    rows = []
    for key, value in data.items():
        if isinstance(value, dict) and "p50_ms" in value:
            rows.append([key.replace("_", " "), value["n"], value["p50_ms"], value["p95_ms"], value["max_ms"]])
    out += table(["leg", "n", "p50 ms", "p95 ms", "max ms"], rows)
    legs = [v for v in data.values() if isinstance(v, dict) and "target_p95_ms" in v]
    if legs:
        worst = max(v["p95_ms"] for v in legs)
        target = max(v["target_p95_ms"] for v in legs)
        out += [f"Target: p95 at most {target:.0f} ms on every leg (web: the websocket the widget uses): "
                f"worst {worst} ms ({verdict(worst <= target)}).", ""]
    return out


def understanding_section(data: Dict[str, Any]) -> List[str]:
    targets = data["targets"]
    out = ["## Understanding", "", f"Model `{data['model']}`; {data['messages_parsed']} messages parsed.", ""]
    rows = []
    for language, scores in data["heldout"].items():
        rows.append([f"held-out intent F1 ({language}, {scores['examples']} examples)",
                     f"macro {scores['macro_f1']:.3f} / weighted {scores['weighted_f1']:.3f}",
                     f"≥ {targets['heldout_macro_f1_per_language']}",
                     verdict(scores["macro_f1"] >= targets["heldout_macro_f1_per_language"])])
    bitext = data["bitext"]
    rows.append([f"Bitext in-scope accuracy (en, {bitext['in_scope']['n']} rows)", pct(bitext["in_scope"]["accuracy"]),
                 f"≥ {pct(targets['bitext_in_scope_accuracy'])}", verdict(bitext["in_scope"]["meets_target"])])
    rows.append([f"Bitext out-of-scope not taken for a case ({bitext['out_of_scope']['n']} rows)",
                 pct(bitext["out_of_scope"]["not_mistaken_rate"]), "", ""])
    for language, scope in data["xsid"]["out_of_scope"].items():
        rows.append([f"xSID ({language}) not taken for a case", pct(scope["not_mistaken_rate"]), "", ""])
    for language, det in data["xsid"]["language_detection"].items():
        rows.append([f"language detection on xSID ({language}, per message)", pct(det["accuracy"]),
                     f"≥ {pct(targets['xsid_language_detection_per_language'])}", verdict(det["meets_target"])])
    out += table(["measure", "figure", "target", ""], rows)
    out += ["Language detection by message length (xSID), per message / with the conversation's stickiness / "
            "how often a sentence switches a conversation held in the other language:", ""]
    rows = []
    for language, det in data["xsid"]["language_detection"].items():
        for bucket, values in det["by_length"].items():
            rows.append([language, bucket, values["n"], pct(values["per_message_accuracy"]),
                         pct(values["with_stickiness_accuracy"]),
                         pct(values["switch_rate_in_other_language_conversation"])])
    out += table(["language", "words", "n", "per message", "with stickiness", "switches other-language conversation"],
                 rows)
    return out


def profile_section(data: Dict[str, Any]) -> List[str]:
    out = ["## Profile of a turn", "", data.get("summary", ""), ""]
    if data.get("top"):
        out += table(["function", "cumulative ms per turn", "share"],
                     [[f"`{row['function']}`", row["ms_per_turn"], pct(row["share"])] for row in data["top"]
                      if row["ms_per_turn"] > 0])
    for finding in data.get("findings", []):
        out.append(f"- {finding}")
    return out + [""] + fixes_saved_section(data)


def fixes_saved_section(data: Dict[str, Any]) -> List[str]:
    """What each fix of the hot path saves, measured in this run by taking it out (bench_profile.py)."""
    fixes = data.get("fixes") or []
    if not fixes:
        return []
    out = ["## What each fix saves (measured in this run)", "",
           f"The profile's conversations in process, {data['conversations_per_pass']} conversations a pass, "
           f"{data['ablation_rounds']} passes with every patch of bot/rasa_patches.py and {data['ablation_rounds']} "
           "with the one fix taken out (`rasa_patches.without`: Rasa's own code for those attributes), "
           "alternating which goes first. CPU is user + system time of the process (Rasa: this process, "
           "all its threads; the action server: /proc); per answered turn.", ""]
    rows = []
    for fix in fixes:
        rasa, actions, wall = fix["rasa_cpu_ms_per_turn"], fix["actions_cpu_ms_per_turn"], fix["wall_ms_per_turn"]
        rows.append([f"`{fix['fix']}`", f"{rasa['without']} → {rasa['with']}",
                     f"{actions['without']} → {actions['with']}", f"{wall['without']} → {wall['with']}"])
    out += table(["fix (taken out → in)", "Rasa CPU ms per turn", "action server CPU ms per turn",
                  "wall ms per turn"], rows)
    return out


def main() -> None:
    parts = {name: load(name) for name in ("bench_turns", "bench_handoff", "bench_understanding", "bench_profile")}
    before = load("bench_turns_before")
    host = (parts["bench_turns"] or {}).get("machine") or machine()
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (scripts/bench_report.py); do not edit by hand. Every timing sits next "
        "to a baseline measured in the same run on the same machine.",
        "",
        f"- Measured: {(parts['bench_turns'] or {}).get('date', 'n/a')} at commit {host.get('commit')}; "
        f"rendered {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Machine: {host.get('cpu')}, {host.get('cores')} cores, {host.get('memory_gib')} GiB, "
        f"Linux {host.get('kernel')}; load average at start {host.get('load_average_at_start')}",
        "- Command: `make bench` (results in results/*.json; each script's `--help` explains what it measures)",
        "",
    ]
    if parts["bench_turns"]:
        lines += turns_section(parts["bench_turns"])
        lines += fixes_section(before, parts["bench_turns"])
    if parts["bench_handoff"]:
        lines += handoff_section(parts["bench_handoff"])
    if parts["bench_understanding"]:
        lines += understanding_section(parts["bench_understanding"])
    if parts["bench_profile"]:
        lines += profile_section(parts["bench_profile"])
    missing = [name for name, value in parts.items() if value is None]
    if missing:
        lines += [f"Not in this run: {', '.join(missing)}.", ""]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines).rstrip() + "\n")
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
