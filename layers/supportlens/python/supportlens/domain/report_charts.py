"""The e-mail's charts (matplotlib, PNG) drawn from the report summary.

Inbox-grade: units on every axis, integer ticks on counts, dates with the year, weekly bins on
long periods (the summary decides), the negative share drawn only where a bin holds enough
messages to mean something (the stacked bars under it show the sample size), a labelled colour
bar, high-DPI PNGs that the HTML shows at half their pixel width.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

DPI = 200
WIDTH_IN = 7.0  # shown at 700 CSS px: 2x pixels for high-DPI screens
MIN_SHARE_SAMPLE = 10  # a bin's negative share is drawn only from this many messages up
COLOURS = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60", "volume": "#3b6ea5",
           "escalations": "#8e44ad", "abusive": "#d35400", "ftds": "#16a085"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "sans-serif", "font.size": 8,
                         "font.sans-serif": ["Arial", "Helvetica", "Liberation Sans", "DejaVu Sans"],
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _dates(rows: list[dict[str, Any]]) -> list[date]:
    return [date.fromisoformat(r["start"]) for r in rows]


def _date_axis(ax: Any, rows: list[dict[str, Any]], unit: str) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=8))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.set_xlabel("week starting (UTC)" if unit == "week" else "day (UTC)")
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


def _integer_y(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.set_ylim(bottom=0)


def _bar_width(unit: str) -> float:
    return 5.5 if unit == "week" else 0.8


def charts(summary: dict[str, Any]) -> dict[str, bytes]:
    """{content-id: PNG} for the sections that have data."""
    rows = summary["volume_daily"]["rows"]
    if not rows or not summary["kpis"]["customer_messages"]:
        return {}
    plt = _plt()
    unit = summary["period"]["bins"]
    out: dict[str, bytes] = {}

    def save(fig: Any, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    x = _dates(rows)
    width = _bar_width(unit)
    align = "edge" if unit == "week" else "center"

    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.4))
    ax.bar(x, [r["volume"] for r in rows], width=width, align=align, color=COLOURS["volume"])
    ax.set_ylabel(f"customer messages / {unit}")
    ax.set_title(f"Customer messages per {unit}", loc="left")
    _integer_y(ax)
    _date_axis(ax, rows, unit)
    save(fig, "volume")

    srows = summary["sentiment"]["rows"]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.6))
    bottom = [0] * len(srows)
    for name in ("negative", "neutral", "positive"):
        values = [r[name] for r in srows]
        ax.bar(x, values, width=width, align=align, bottom=bottom, color=COLOURS[name], label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel(f"customer messages / {unit}")
    _integer_y(ax)
    _date_axis(ax, srows, unit)
    share = ax.twinx()
    share.spines["right"].set_visible(True)
    offset = 3.5 if unit == "week" else 0  # the middle of a weekly bar
    from datetime import timedelta

    points = [(d + timedelta(days=offset), 100 * r["negative_share"]) for d, r in zip(x, srows)
              if r["negative_share"] is not None and r["volume"] >= MIN_SHARE_SAMPLE]
    if points:
        share.plot([p[0] for p in points], [p[1] for p in points], color="#222", marker="o", markersize=3, linewidth=1,
                   label=f"% negative (bins with {MIN_SHARE_SAMPLE}+ messages)")
    share.set_ylim(0, 100)
    share.set_ylabel("% negative")
    handles = ax.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + share.get_legend_handles_labels()[1]
    # The legend on its own row above the plot, the title above it: side by side they overlapped.
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=7, frameon=False, ncol=4,
              borderaxespad=0.2)
    ax.set_title(f"Sentiment per {unit}", loc="left", pad=18)
    save(fig, "sentiment")

    heat = summary["heatmap"]["rows"]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.4))
    image = ax.imshow([r["hours"] for r in heat], aspect="auto", cmap="Blues", vmin=0)
    ax.set_yticks(range(7), [r["weekday"] for r in heat])
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour of day (UTC)")
    ax.set_title("When customers write (weekday x hour)", loc="left")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("customer messages")
    from matplotlib.ticker import MaxNLocator

    bar.locator = MaxNLocator(integer=True, nbins=5)
    bar.update_ticks()
    save(fig, "heatmap")

    esc, abuse = summary["escalation_trend"]["rows"], summary["abuse_trend"]["rows"]
    if esc or abuse:
        base = esc or abuse
        bx = _dates(base)
        half = width / 2
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.2))
        from datetime import timedelta as td

        zeros = [0] * len(bx)
        ax.bar(bx, [r["escalations"] for r in esc] if esc else zeros, width=half, align="edge",
               color=COLOURS["escalations"], label="escalations")
        ax.bar([d + td(days=half) for d in bx], [r["abusive"] for r in abuse] if abuse else zeros, width=half, align="edge",
               color=COLOURS["abusive"], label="abusive messages")
        ax.set_ylabel(f"messages / {unit}")
        _integer_y(ax)
        _date_axis(ax, base, unit)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=7, frameon=False, ncol=2, borderaxespad=0.2)
        ax.set_title(f"Escalations and abusive messages per {unit}", loc="left", pad=18)
        save(fig, "trends")

    ftds = summary["ftds_trend"]["rows"]
    if ftds:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.2))
        ax.plot(_dates(ftds), [100 * r["rate"] for r in ftds], color=COLOURS["ftds"], marker="o", markersize=3)
        for d, r in zip(_dates(ftds), ftds):
            ax.annotate(f"n={r['cases']}", (d, 100 * r["rate"]), textcoords="offset points", xytext=(0, 5), fontsize=6, ha="center")
        ax.set_ylim(0, 105)
        ax.set_ylabel("% delivered first time")
        _date_axis(ax, ftds, unit)
        ax.set_title(f"First-time delivery success per {unit}", loc="left")
        save(fig, "ftds")
    return out
