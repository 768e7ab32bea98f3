"""The support figures as `gateway report --json` prints them, for programs: durations in
seconds, shares as fractions, each mapping by priority key as `gateway.report` computes it."""

from __future__ import annotations

from typing import Any

from gateway.report import ALL, Durations, Figures, Tally


def figures_json(figures: Figures) -> dict[str, Any]:
    """The figures as `gateway report --json` prints them."""
    by_key = figures.rates
    return {
        "period": {
            "since": figures.period.since.isoformat(),
            "until": figures.period.until.isoformat(),
        },
        "first_response": {key: durations_json(d) for key, d in figures.first_response.items()},
        "resolution": {key: durations_json(d) for key, d in figures.resolution.items()},
        "fcr_rate": by_key[ALL].fcr_rate,
        "reopen_rate": by_key[ALL].reopen_rate,
        "rates_by_priority": {
            key: {"fcr_rate": r.fcr_rate, "reopen_rate": r.reopen_rate} for key, r in by_key.items()
        },
        "targets_met": {
            name: {key: tally_json(t) for key, t in tallies.items()}
            for name, tallies in figures.targets_met.items()
        },
        "backlog": {
            "by_status": dict(figures.backlog.by_status),
            "by_age": dict(figures.backlog.by_age),
            "by_status_and_age": {k: dict(v) for k, v in figures.backlog.by_status_and_age.items()},
        },
        "total_open": figures.backlog.total,
        "knowledge_base": {
            "tickets_with_suggestions": figures.articles.tickets_suggested,
            "tickets_opening_a_suggestion": figures.articles.tickets_opened,
            "suggestion_click_through": figures.articles.click_through,
            "tickets_solved_by_article": figures.articles.tickets_solved,
            "most_suggested_without_solving": [
                {"slug": slug, "suggested": times} for slug, times in figures.articles.never_solving
            ],
        },
    }


def durations_json(durations: Durations) -> dict[str, Any]:
    return {
        "count": durations.count,
        "median_s": durations.median_s,
        "p90_s": durations.p90_s,
        "business_median_s": durations.business_median_s,
        "business_p90_s": durations.business_p90_s,
    }


def tally_json(tally: Tally) -> dict[str, Any]:
    return {"met": tally.met, "missed": tally.missed, "rate": tally.rate}
