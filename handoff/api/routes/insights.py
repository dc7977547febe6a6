"""Insights for supervisors and admins: what customers contact us about and what came of it.

``GET /api/insights`` returns the report of :func:`handoff.insights.build_report` (a period, by
default the last 7 days next to the 7 before, optionally for one language or channel);
``GET /api/insights.csv`` the per-topic table (``?table=promises``: the promises per kind);
``GET /insights`` the console page with the charts.
Agents get a 403: the report names repeat customers and is for the people who fix causes.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import date
from pathlib import Path
from typing import Any, Dict, Optional

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from handoff.api import roles
from handoff.api.deps import OptionalAgentDep, StoreDep, SupervisorDep
from handoff.insights import build_report, parse_period, promise_rows, report_rows

router = APIRouter(tags=["insights"])
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
#: Chart.js as npm installed it (web/package-lock.json, scripts/install_web.sh); an image without
#: web/node_modules sets HANDOFF_CHARTJS_PATH to where it copied the file.
CHARTJS = Path(__file__).resolve().parents[3] / "web" / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"
SIGN_IN_FIRST = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                 '<meta http-equiv="refresh" content="0; url=/login"><title>Sign in</title></head>'
                 '<body><p><a href="/login">Sign in</a> to see the insights.</p></body></html>')

PeriodQuery = Query("7d", max_length=40, description="'7d', '30d' or 'YYYY-MM-DD..YYYY-MM-DD' (UTC days)")
LanguageQuery = Query(None, pattern=r"^[a-z]{2}$|^unknown$")
ChannelQuery = Query(None, max_length=32, pattern=r"^[a-z0-9_.-]+$")
TableQuery = Query("topics", pattern=r"^(topics|promises)$",
                   description="'topics': one row per topic; 'promises': one row per kind of promise")
#: The CSV tables: their rows from a report.
CSV_TABLES = {"topics": report_rows, "promises": promise_rows}


async def _report(store: Any, period: str, language: Optional[str], channel: Optional[str],
                  today: Optional[date] = None) -> Dict[str, Any]:
    try:
        chosen = parse_period(period, today or store.clock().date())
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    return await build_report(store.redis, chosen, language=language, channel=channel,
                              now=store.clock().timestamp())


@router.get("/api/insights")
async def insights(
    _: SupervisorDep, store: StoreDep, period: str = PeriodQuery, language: Optional[str] = LanguageQuery,
    channel: Optional[str] = ChannelQuery,
) -> Dict[str, Any]:
    """The report: topics with their change, outcomes, reasons, repeat contacts, outages, waits,
    promises and the customers' own words (masked)."""
    return await _report(store, period, language, channel)


@router.get("/api/insights.csv", response_class=PlainTextResponse)
async def insights_csv(
    _: SupervisorDep, store: StoreDep, period: str = PeriodQuery, language: Optional[str] = LanguageQuery,
    channel: Optional[str] = ChannelQuery, table: str = TableQuery,
) -> Response:
    """One row per topic (contacts, change, outcomes, every reason, the backend's promises) as CSV;
    with ``table=promises`` one row per kind of promise (case replies, then the backend's kinds)."""
    report = await _report(store, period, language, channel)
    suffix = "" if table == "topics" else f"-{table}"
    filename = f"insights{suffix}-{report['period']['from']}-{report['period']['to']}.csv"
    return PlainTextResponse(to_csv(report, table), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


def to_csv(report: Dict[str, Any], table: str = "topics") -> str:
    """One of the report's tables (:data:`CSV_TABLES`) as CSV text."""
    rows = CSV_TABLES[table](report)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


@router.get("/insights", include_in_schema=False)
async def insights_page(request: Request, me: OptionalAgentDep) -> Response:
    """The insights page, for supervisors and admins."""
    if me is None:
        # 401 like every protected route; the browser goes on to the sign-in page.
        return HTMLResponse(SIGN_IN_FIRST, status_code=401)
    if not roles.has_role(me.agent, roles.SUPERVISOR):
        return PlainTextResponse("Insights are for supervisors and admins.", status_code=403)
    path = STATIC_DIR / "insights.html"
    if not path.is_file():
        return PlainTextResponse("console page insights.html is not installed", status_code=503)
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-store"})


@router.get("/vendor/chart.umd.min.js", include_in_schema=False)
async def chart_library(me: OptionalAgentDep) -> Response:
    """Chart.js for the insights page, from the npm package (no CDN); for signed-in users."""
    if me is None:
        return PlainTextResponse("not signed in", status_code=401)
    path = Path(os.environ.get("HANDOFF_CHARTJS_PATH") or CHARTJS)
    if not path.is_file():
        return PlainTextResponse("chart.js is not installed: run scripts/install_web.sh", status_code=503)
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "private, max-age=3600"})
