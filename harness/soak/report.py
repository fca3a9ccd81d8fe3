"""The soak's outputs: one CSV row per sample, the plot, and the extrapolation to a day."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

DAY_TAGS = 86_400_000  # a day at the reference 1,000 tags/s
RSS_LIMIT_GIB = 12.0  # issue 12: all processes of a day within 12 GiB
DISK_LIMIT_GB = 40.0  # ... and 40 GB of disk
DISK_COLUMNS = ("cassandra_mb", "kafka_mb", "checkpoint_mb")
# Parts of cassandra_mb (not added to the disk total): the cube and the profiles.
TABLE_COLUMNS = ("cells_mb", "profiles_mb")


def columns(components: Sequence[str]) -> list[str]:
    return ["elapsed_s", "tags", "lag", "event_time", *(f"rss_mb_{c}" for c in components), "rss_mb_total",
            "job_heap_after_gc_mb", *DISK_COLUMNS, *TABLE_COLUMNS]


class CsvLog:
    """Appends rows and flushes each, so an interrupted soak keeps what it measured."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fields = fields
        self.rows: list[dict[str, Any]] = []
        self._file: IO[str] = path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=fields)
        self._writer.writeheader()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._writer.writerow({k: "" if row.get(k) is None else row[k] for k in self.fields})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def processed(row: dict[str, Any]) -> int:
    """Tags the job has taken (produced minus its lag): what its state and the stores follow."""
    return int(row["tags"]) - int(row["lag"])


def produced(row: dict[str, Any]) -> int:
    return int(row["tags"])


def _series(rows: Sequence[dict[str, Any]], column: str,
            x_of: Callable[[dict[str, Any]], int] = processed) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        if row.get(column) is not None:
            xs.append(float(x_of(row)))
            ys.append(float(row[column]))
    return xs, ys


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """(slope, intercept) by least squares; None with fewer than two distinct x."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def extrapolate(rows: Sequence[dict[str, Any]], components: Sequence[str], retention_tags: int,
                kafka_cap_mb: float | None = None) -> list[str]:
    """Lines of text: each metric fitted over the last half of the samples, at DAY_TAGS tags.
    Kafka's log stops growing at its size cap (`kafka_cap_mb`, harness.local_stack.kafka.log_cap_bytes),
    so its day and the disk total's are the fit's or the cap, whichever is less."""
    half = [r for r in rows[len(rows) // 2:] if processed(r) > 0]
    metrics = [*(f"rss_mb_{c}" for c in components), "rss_mb_total", "job_heap_after_gc_mb", *DISK_COLUMNS,
               *TABLE_COLUMNS, "disk_mb_total"]
    with_total = [{**r, "disk_mb_total": _disk_total(r)} for r in half]
    out = [f"extrapolation to {DAY_TAGS:,} tags (a day at 1,000 tags/s), linear fits over the last "
           f"{len(half)} samples (tags processed {processed(half[0]):,}..{processed(half[-1]):,}):" if half else
           "extrapolation: no samples"]
    day: dict[str, float] = {}
    kafka_excess = 0.0
    for metric in metrics:
        # Kafka's log follows what was produced; everything else what the job processed.
        xs, ys = _series(with_total, metric, produced if metric == "kafka_mb" else processed)
        fit = linear_fit(xs, ys)
        if fit is None:
            continue
        slope, intercept = fit
        day[metric] = intercept + slope * DAY_TAGS
        note = ""
        if metric == "kafka_mb" and kafka_cap_mb is not None and day[metric] > kafka_cap_mb:
            kafka_excess = day[metric] - kafka_cap_mb
            day[metric] = kafka_cap_mb
            note = "   (its cap: retention.bytes and a segment per partition)"
        elif metric == "disk_mb_total" and kafka_excess:
            day[metric] -= kafka_excess
            note = "   (Kafka at its cap)"
        out.append(f"  {metric:<24} now {ys[-1]:>9.0f} MB   {slope * 1e6:>+9.1f} MB per M tags   "
                   f"day {day[metric]:>9.0f} MB{note}")
    if "rss_mb_total" in day and "disk_mb_total" in day:
        rss_gib, disk_gb = day["rss_mb_total"] / 1024, day["disk_mb_total"] * 2**20 / 1e9
        out.append(f"a day fits in {rss_gib:.1f} GiB RSS (limit {RSS_LIMIT_GIB:.0f}: "
                   f"{'ok' if rss_gib <= RSS_LIMIT_GIB else 'OVER'}) and {disk_gb:.1f} GB disk "
                   f"(limit {DISK_LIMIT_GB:.0f}: {'ok' if disk_gb <= DISK_LIMIT_GB else 'OVER'})")
    # With the default 24 h retention nothing is deleted within the first day: its disk is
    # the growth per tag before this run's (shorter) retention began to delete.
    early = [{**r, "disk_mb_total": _disk_total(r)} for r in rows if 0 < processed(r) <= retention_tags]
    fit = linear_fit(*_series(early, "disk_mb_total"))
    kafka_fit = linear_fit(*_series(early, "kafka_mb", produced))
    if fit is not None:
        whole_mb = fit[0] * DAY_TAGS
        if kafka_cap_mb is not None and kafka_fit is not None:
            whole_mb -= max(0.0, kafka_fit[0] * DAY_TAGS - kafka_cap_mb)
        out.append(f"disk before retention deleted anything: {fit[0] * 1e6:+.1f} MB per M tags, so a day kept "
                   f"whole (default 24 h retention) needs about {whole_mb * 2**20 / 1e9:.1f} GB"
                   + (" (Kafka at its cap)" if whole_mb < fit[0] * DAY_TAGS else ""))
    return out


def _disk_total(row: dict[str, Any]) -> float | None:
    values = [row.get(c) for c in DISK_COLUMNS]
    return None if any(v is None for v in values) else sum(float(v) for v in values if v is not None)


def plot(rows: Sequence[dict[str, Any]], components: Sequence[str], path: Path, title: str) -> None:
    """Three panels against the tags the job has processed: memory, disk, consumer lag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, disk, lag) = plt.subplots(3, 1, figsize=(11, 11), sharex=True)
    scale = 1e6

    def draw(ax: Any, column: str, label: str, **style: Any) -> None:
        xs, ys = _series(rows, column)
        if xs:
            ax.plot([x / scale for x in xs], ys, marker=".", label=label, **style)

    for c in components:
        draw(mem, f"rss_mb_{c}", f"RSS {c}")
    draw(mem, "rss_mb_total", "RSS total", color="black", linewidth=2)
    draw(mem, "job_heap_after_gc_mb", "job heap after full GC", color="black", linestyle="--")
    mem.set_ylabel("MB")
    mem.set_title("memory")
    for column, label in (("cassandra_mb", "Cassandra data (after flush)"), ("kafka_mb", "Kafka log"),
                          ("checkpoint_mb", "job checkpoints")):
        draw(disk, column, label)
    draw(disk, "cells_mb", "  of which aggregate_cells", linestyle="--")
    draw(disk, "profiles_mb", "  of which user_profiles", linestyle="--")
    disk.set_ylabel("MB")
    disk.set_title("disk")
    draw(lag, "lag", "consumer lag of the job's group")
    lag.set_ylabel("tags")
    lag.set_title("lag")
    lag.set_xlabel("tags processed by the job (produced - lag), millions")
    for ax in (mem, disk, lag):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
