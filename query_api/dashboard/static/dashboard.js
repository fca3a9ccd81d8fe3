// The dashboard: every figure comes from the query API's public endpoints
// (docs/API.md); nothing is computed here but rates from successive counters.
"use strict";

const MINUTE_MS = 60_000;
const FOLLOW_EVERY_MS = 5_000;
const DIMENSIONS_EVERY_MS = 30_000;
const HEALTH_EVERY_MS = 2_000;
const DIMENSIONS = ["origin", "brand_id", "category_id"];
// Profiles are asked for over all time; the API returns the newest first.
const ALL_TIME = "2000-01-01T00:00:00_2100-01-01T00:00:00";

// What the page shows, for people and for the browser test.
const dashboard = { newestMs: null, query: null, chart: null, health: null };
window.dashboard = dashboard;

const form = document.getElementById("query");
const statusLine = document.getElementById("status");

/** 2022-03-22T12:04:00: the API's time grammar (UTC, no suffix). */
function label(ms) {
  return new Date(ms).toISOString().slice(0, 19);
}

function bucketMs(text) {
  return Date.parse(text + "Z");
}

function showError(message) {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", Boolean(message));
}

/** GET a JSON answer; a problem document (RFC 9457) becomes an Error with its detail. */
async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && (body.detail || body.title);
    throw new Error(`${path.split("?")[0]}: ${response.status} ${detail || response.statusText}`);
  }
  return body;
}

function chosen(name) {
  return form.elements[name].value;
}

/** [start, end) of the chart in ms: the chosen span ending with the newest bucket, or the explicit one. */
function chartRange() {
  if (chosen("range") === "explicit") {
    const from = Date.parse(chosen("from") + ":00Z");
    const to = Date.parse(chosen("to") + ":00Z");
    if (Number.isNaN(from) || Number.isNaN(to) || from >= to) return null;
    return [from - (from % MINUTE_MS), to - (to % MINUTE_MS)];
  }
  const now = Date.now();
  const end = (dashboard.newestMs ?? now - (now % MINUTE_MS)) + MINUTE_MS;
  return [end - Number(chosen("range")) * MINUTE_MS, end];
}

async function followNewest() {
  const answer = await getJson(`/buckets/newest?action=${chosen("action")}`);
  dashboard.newestMs = answer.newest_bucket === null ? null : bucketMs(answer.newest_bucket);
  const newest = document.getElementById("newest");
  newest.textContent = `newest bucket: ${answer.newest_bucket ?? "none yet"} (UTC)`;
  newest.dataset.bucket = answer.newest_bucket ?? "";
}

const compactNumber = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

function compact(value) {
  return value === null ? "" : compactNumber.format(value);
}

/** A bucket's start as 12:04 (UTC), with the date on the first tick of a day. */
function timeOfDay(seconds, index) {
  const iso = new Date(seconds * 1000).toISOString();
  return index === 0 || iso.slice(11, 16) === "00:00" ? `${iso.slice(11, 16)}\n${iso.slice(0, 10)}` : iso.slice(11, 16);
}

function makeChart(data) {
  const container = document.getElementById("chart");
  const options = {
    width: Math.max(320, container.clientWidth - 8),
    height: 340,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    scales: { count: {}, price: {} },
    series: [
      { label: "bucket (UTC)" },
      { label: "COUNT", scale: "count", stroke: "#2b6cb0", width: 2, points: { show: false } },
      { label: "SUM_PRICE", scale: "price", stroke: "#c05621", width: 2, points: { show: false } },
    ],
    axes: [
      { values: (u, splits) => splits.map(timeOfDay) },
      { scale: "count", label: "count", size: 70, values: (u, splits) => splits.map(compact) },
      { scale: "price", label: "sum of price", side: 1, size: 70, grid: { show: false },
        values: (u, splits) => splits.map(compact) },
    ],
  };
  return new uPlot(options, data, container);
}

async function drawBuckets() {
  const range = chartRange();
  if (range === null) {
    showError("Choose a start before the end.");
    return;
  }
  const params = new URLSearchParams({ time_range: `${label(range[0])}_${label(range[1])}`, action: chosen("action") });
  params.append("aggregates", "COUNT");
  params.append("aggregates", "SUM_PRICE");
  for (const name of DIMENSIONS) {
    if (chosen(name) !== "") params.set(name, chosen(name));
  }
  const query = params.toString();
  const answer = await getJson(`/aggregates?${query}`);
  const count = answer.columns.indexOf("count");
  const sum = answer.columns.indexOf("sum_price");
  const data = [
    answer.rows.map((row) => bucketMs(row[0]) / 1000),
    answer.rows.map((row) => Number(row[count])),
    answer.rows.map((row) => Number(row[sum])),
  ];
  if (dashboard.chart === null) dashboard.chart = makeChart(data);
  else dashboard.chart.setData(data);
  dashboard.query = query;
}

/** Fill the filter choices with the values seen in the newest hour, keeping what is chosen. */
async function offerValues() {
  const end = (dashboard.newestMs ?? Date.now() - (Date.now() % MINUTE_MS)) + MINUTE_MS;
  const range = `${label(end - 60 * MINUTE_MS)}_${label(end)}`;
  const answer = await getJson(`/dimensions?action=${chosen("action")}&time_range=${range}`);
  for (const name of DIMENSIONS) {
    const select = form.elements[name];
    const keep = select.value;
    const values = answer[name].map((seen) => seen.value);
    if (keep !== "" && !values.includes(keep)) values.unshift(keep);
    select.replaceChildren(new Option("any", ""), ...values.map((value) => new Option(value, value)));
    select.value = keep;
  }
}

async function refresh() {
  try {
    await followNewest();
    await drawBuckets();
    showError("");
  } catch (error) {
    showError(String(error.message || error));
  }
}

// --- pipeline health -------------------------------------------------------

let previous = null;

function perSecond(now, then, seconds) {
  return seconds > 0 ? ((now - then) / seconds).toFixed(0) : "–";
}

function text(id, value) {
  document.getElementById(id).textContent = value;
}

async function showHealth() {
  let health;
  try {
    health = await getJson("/pipeline");
  } catch (error) {
    text("job", `unavailable (${error.message})`);
    return;
  }
  dashboard.health = health;
  const ingest = health.ingest;
  if (ingest) {
    const totals = ingest.tags_total;
    const accepted = totals["204"] || 0;
    const refused = Object.entries(totals).filter(([status]) => status !== "204").reduce((a, [, n]) => a + n, 0);
    if (previous && previous.ingest) {
      const seconds = (health.sampled_at_ms - previous.sampled_at_ms) / 1000;
      const before = previous.ingest.tags_total;
      const refusedBefore = Object.entries(before).filter(([s]) => s !== "204").reduce((a, [, n]) => a + n, 0);
      text("accepted", `${perSecond(accepted, before["204"] || 0, seconds)}/s (${accepted} in all)`);
      text("refused", `${perSecond(refused, refusedBefore, seconds)}/s (${refused} in all: `
        + `${Object.entries(totals).filter(([s]) => s !== "204").map(([s, n]) => `${s}: ${n}`).join(", ") || "none"})`);
    }
  } else {
    text("accepted", "ingest unavailable");
    text("refused", "ingest unavailable");
  }
  const job = health.job;
  if (job) {
    text("job", `${job.name}: ${job.state}`);
    text("lag", job.kafka_lag_records === null ? "–" : `${job.kafka_lag_records} records`);
    const age = job.last_checkpoint_age_s === null ? "" : `, last ${job.last_checkpoint_age_s.toFixed(0)} s ago`;
    text("checkpoints", `${job.checkpoints_completed} completed, ${job.checkpoints_failed} failed${age}`);
    text("restarts", String(job.restarts));
  } else {
    for (const id of ["job", "lag", "checkpoints", "restarts"]) text(id, "job unavailable");
  }
  const fresh = health.freshness || {};
  text("profile-lag", fresh.profile_lag_s == null ? "–" : `${fresh.profile_lag_s.toFixed(1)} s`);
  text("bucket-lag", fresh.bucket_lag_s == null ? "–" : `${fresh.bucket_lag_s.toFixed(0)} s of event time`);
  previous = health;
}

// --- profiles ----------------------------------------------------------------

function tagTable(action, tags) {
  const table = document.createElement("table");
  table.dataset.action = action;
  table.createCaption().textContent = `${action === "VIEW" ? "Views" : "Buys"}: ${tags.length}`;
  const head = table.createTHead().insertRow();
  for (const title of ["time", "origin", "brand", "category", "product", "price", "country", "device"]) {
    head.appendChild(document.createElement("th")).textContent = title;
  }
  const body = table.createTBody();
  for (const tag of tags) {
    const row = body.insertRow();
    const info = tag.product_info;
    for (const value of [tag.time, tag.origin, info.brand_id, info.category_id, info.product_id, info.price,
      tag.country, tag.device]) {
      const cell = row.insertCell();
      cell.textContent = String(value);
      if (typeof value === "number") cell.className = "num";
    }
  }
  return table;
}

async function lookUp(event) {
  event.preventDefault();
  const cookie = event.target.elements.cookie.value;
  const target = document.getElementById("profile");
  try {
    const profile = await getJson(`/user_profiles/${encodeURIComponent(cookie)}?time_range=${ALL_TIME}&limit=200`);
    target.replaceChildren(tagTable("VIEW", profile.views), tagTable("BUY", profile.buys));
    target.dataset.cookie = cookie;
    showError("");
  } catch (error) {
    showError(String(error.message || error));
  }
}

// --- wiring ------------------------------------------------------------------

form.addEventListener("change", async (event) => {
  document.getElementById("explicit").hidden = chosen("range") !== "explicit";
  if (event.target.name === "action") await offerValues().catch((error) => showError(error.message));
  await refresh();
});
document.getElementById("lookup").addEventListener("submit", lookUp);
window.addEventListener("resize", () => {
  if (dashboard.chart) dashboard.chart.setSize({ width: Math.max(320, document.getElementById("chart").clientWidth - 8), height: 340 });
});

async function every(ms, work) {
  for (;;) {
    await work();
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

every(HEALTH_EVERY_MS, showHealth);
// The filter values are those of the newest hour: known once the newest bucket is.
refresh().then(() => {
  every(DIMENSIONS_EVERY_MS, () => offerValues().catch((error) => showError(error.message)));
  setTimeout(() => every(FOLLOW_EVERY_MS, refresh), FOLLOW_EVERY_MS);
});
