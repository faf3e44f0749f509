"""The supervisors' dashboard for the caller's jurisdiction: breached and at-risk appeals by level and
unit, the weekly response and resolution rates, workload per handler and appeals per building, each a
chart drawn on the server (inline SVG) with its table beside it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from workflow.errors import AppealNotFound, NotPermitted
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.access import department_filter
from workflow.web import charts
from workflow.web.i18n import t
from workflow.web.page_queries import child_units, per_building, unit_in_scope, unit_names, weekly_trend, workload
from workflow.web.page_support import DASHBOARD_ROLES, Me, localise_units, render, running_for, urgency, workflow_of

router = APIRouter(include_in_schema=False)
BREACHED_LISTED = 20


@router.get("/dashboard")
def dashboard(request: Request, me: Me, unit: str | None = None) -> Response:
    actor, locale = me.actor, me.locale
    if actor.role not in DASHBOARD_ROLES:
        raise NotPermitted(f"the dashboard is for supervisors; user {actor.username!r} has role {actor.role!r}")
    wf = workflow_of(request)
    now = wf.clock.now()
    with UnitOfWork(wf.engine, read_only=True) as uow:
        names = unit_names(uow)
        scope = unit_in_scope(uow, unit, actor.scope_path) if unit else None
        if unit and scope is None:
            raise AppealNotFound(unit)  # the same 404 page, whether the unit is elsewhere or nowhere
        scope_path = str(scope.path) if scope is not None else actor.scope_path
        code = str(scope.code) if scope is not None else wf.unit_code_of_path(actor.scope_path)
        top = uow.repo.unit_by_code(code) if code else None
        children = [(str(c.code), str(c.name), str(c.name_en)) for c in child_units(uow, top.id)] if top else []
        mine = department_filter(uow, wf.registry, actor)  # a department officer counts the department's appeals
        trend = weekly_trend(uow, scope_path, now, extra=mine)
        load = workload(uow, scope_path, now, extra=mine)
        buildings = per_building(uow, scope_path, now, extra=mine)
    report = wf.sla_report(unit=code, as_user=actor.username)
    # The breached appeals themselves, most overdue first: what a supervisor opens next.
    overdue, overdue_total = wf.list_appeals(
        as_user=actor.username, unit=code, overdue=True, limit=BREACHED_LISTED, locale=locale
    )
    overdue.sort(key=urgency)
    localise_units(wf, overdue, locale)
    en = locale == "en"

    def unit_name(code_: str | None, fallback: str | None = None) -> str:
        pair = names.get(code_ or "")
        return (pair[1] if en else pair[0]) if pair else (fallback or code_ or "")

    rows = [
        {"level": level["level"], **entry, "name": unit_name(entry["unit"]["code"], entry["unit"]["name"])}
        for level in report["levels"]
        for entry in level["units"]
    ]
    w = (t("dashboard.breached", locale), t("dashboard.at_risk", locale))
    sla_chart = charts.stacked_bars(
        [r["name"] for r in rows[:20]],
        [
            (w[0], charts.BREACHED, [r["breached"] for r in rows[:20]]),
            (w[1], charts.AT_RISK, [r["at_risk"] for r in rows[:20]]),
            (t("dashboard.on_track", locale), charts.ON_TRACK, [r["on_track"] for r in rows[:20]]),
            (t("dashboard.paused", locale), charts.PAUSED, [r["paused"] for r in rows[:20]]),
        ],
        title=t("dashboard.by_level", locale),
        empty=t("dashboard.nothing", locale),
    )
    trend_chart = charts.line_chart(
        [week["label"] for week in trend],
        [
            (t("dashboard.response_rate", locale), charts.BLUE, [week["response_rate"] for week in trend]),
            (t("dashboard.resolution_rate", locale), charts.TEAL, [week["resolution_rate"] for week in trend]),
        ],
        title=t("dashboard.trend", locale),
        empty=t("dashboard.nothing", locale),
    )
    load_chart = charts.stacked_bars(
        [row["display_name"] or row["username"] for row in load],
        [
            (w[0], charts.BREACHED, [row["breached"] for row in load]),
            (w[1], charts.AT_RISK, [row["at_risk"] for row in load]),
            (t("dashboard.other_open", locale), charts.BLUE, [row["other"] for row in load]),
        ],
        title=t("dashboard.workload", locale),
        empty=t("dashboard.nothing", locale),
    )
    building_chart = charts.stacked_bars(
        [b["name_en"] if en else b["name"] for b in buildings],
        [
            (w[0], charts.BREACHED, [b["breached"] for b in buildings]),
            (w[1], charts.AT_RISK, [b["at_risk"] for b in buildings]),
            (t("dashboard.other_open", locale), charts.BLUE, [b["other_open"] for b in buildings]),
            (t("dashboard.closed", locale), "#b0bec5", [b["closed"] for b in buildings]),
        ],
        title=t("dashboard.buildings", locale),
        empty=t("dashboard.nothing", locale),
    )
    rates = report["rates"]

    def pct(value: float | None) -> str:
        return charts.percent(value) if value is not None else "—"

    context = {
        "scope_name": unit_name(code),
        "drilled": scope is not None,
        "children": [(c, n_en if en else n) for c, n, n_en in children],
        "as_of": report["as_of"],
        "totals": report["totals"],
        "rows": rows,
        "overdue": overdue,
        "overdue_total": overdue_total,
        "running_for": running_for(wf, now),
        "trend": trend,
        "load": load,
        "buildings": buildings,
        "rates": {
            "response": pct(rates["response_rate"]),
            "resolution": pct(rates["resolution_rate"]),
            "on_time": pct(rates["resolved_within_limit_rate"]),
        },
        "pct": pct,
        "charts": {
            "sla": Markup(sla_chart),
            "trend": Markup(trend_chart),
            "load": Markup(load_chart),
            "buildings": Markup(building_chart),
        },
    }
    return render(request, "dashboard.html", context, me=me)
