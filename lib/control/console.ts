/**
 * The built-in console on the HTTP port: a read-only page at `/` (HTML, CSS and script inline in
 * this module, so the compiled binary serves it with no file and no CDN) and the JSON API it
 * reads, which scripts can use too:
 *
 * - `GET /api/overview`: broker, health report, brokers of the cluster;
 * - `GET /api/topics`: topics with partitions (leader, offsets, sealed and unsealed bytes),
 *   retention and cleanup policy;
 * - `GET /api/groups`: consumer groups with state, members, assignments, committed offsets
 *   and lag per partition;
 * - `GET /api/throughput`: produce and fetch bytes/s, records/s and the flush round latency,
 *   sampled every 5 s over the last 10 minutes.
 *
 * The data comes over the Kafka protocol from the broker's own listener (the admin client the
 * `topics` and `groups` commands use), so it is what any client sees.
 */
import { type AdminClient, AdminError } from "../client/admin.ts";

/** Samples kept (10 minutes at the default interval). */
export const THROUGHPUT_SAMPLES_MAX = 120;
export const THROUGHPUT_INTERVAL_MS = 5_000;

export interface ThroughputSample {
  /** Unix ms at the end of the interval. */
  t: number;
  produceBytesPerSec: number;
  fetchBytesPerSec: number;
  produceRecordsPerSec: number;
  /** Mean flush round time (write ahead + commit) over the interval, ms; null without rounds. */
  flushRoundMs: number | null;
}

export interface Counters {
  produceBytes: number;
  fetchBytes: number;
  produceRecords: number;
  flushRounds: number;
  flushMs: number;
}

/** Turns counter readings into per-second samples; keeps the last THROUGHPUT_SAMPLES_MAX. */
export class ThroughputHistory {
  readonly #samples: ThroughputSample[] = [];
  #last: { t: number; c: Counters } | null = null;

  record(t: number, c: Counters): void {
    const last = this.#last;
    this.#last = { t, c };
    if (!last || t <= last.t) return;
    const secs = (t - last.t) / 1000;
    const rounds = c.flushRounds - last.c.flushRounds;
    this.#samples.push({
      t,
      produceBytesPerSec: Math.max(0, (c.produceBytes - last.c.produceBytes) / secs),
      fetchBytesPerSec: Math.max(0, (c.fetchBytes - last.c.fetchBytes) / secs),
      produceRecordsPerSec: Math.max(0, (c.produceRecords - last.c.produceRecords) / secs),
      flushRoundMs: rounds > 0 ? (c.flushMs - last.c.flushMs) / rounds : null,
    });
    if (this.#samples.length > THROUGHPUT_SAMPLES_MAX) this.#samples.shift();
  }

  get samples(): readonly ThroughputSample[] {
    return this.#samples;
  }
}

export interface ConsoleDeps {
  /** An admin client on the broker's own listener (connected on first use). */
  admin: () => Promise<AdminClient>;
  /** Drops the admin client after a failure (the next request connects again). */
  resetAdmin: () => void;
  health: () => Promise<unknown>;
  broker: { nodeId: number; version: string; kafka: string };
  history: ThroughputHistory;
}

function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}

async function topicsOf(admin: AdminClient) {
  const topics = await admin.describeTopics(null);
  return topics.map((t) => {
    const config = (name: string) => t.configs.find((c) => c.name === name)?.value ?? null;
    return {
      name: t.name,
      topicId: t.topicId,
      retentionMs: config("retention.ms"),
      retentionBytes: config("retention.bytes"),
      cleanupPolicy: config("cleanup.policy"),
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        leader: p.leader,
        earliestOffset: p.earliestOffset,
        latestOffset: p.latestOffset,
        sealedBytes: p.sealedBytes,
        unsealedBytes: p.unsealedBytes,
      })),
    };
  });
}

async function groupsOf(admin: AdminClient) {
  const listed = await admin.listGroups();
  return await Promise.all(listed.map(async (g) => {
    const [description, offsets] = await Promise.all([
      admin.describeGroup(g.groupId),
      admin.fetchOffsets(g.groupId),
    ]);
    const ends = offsets.length === 0 ? new Map<string, number>() : await admin.listOffsets(
      offsets.map((o) => ({ topic: o.topic, partition: o.partition })),
      "latest",
    );
    return {
      groupId: g.groupId,
      state: description.state,
      protocol: description.protocol,
      members: description.members.map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        assignment: m.assignment,
      })),
      offsets: offsets.map((o) => {
        const end = ends.get(`${o.topic}/${o.partition}`) ?? -1;
        return {
          topic: o.topic,
          partition: o.partition,
          committed: o.offset,
          logEnd: end,
          lag: o.offset < 0 || end < 0 ? null : Math.max(0, end - o.offset),
        };
      }),
    };
  }));
}

/** Routes of the console; null for paths it does not serve. */
export function consoleRoutes(deps: ConsoleDeps): (path: string) => Promise<Response | null> {
  const withAdmin = async (fn: (admin: AdminClient) => Promise<unknown>) => {
    try {
      return json(await fn(await deps.admin()));
    } catch (error) {
      deps.resetAdmin();
      const message = error instanceof AdminError || error instanceof Error
        ? error.message
        : String(error);
      return json({ error: message }, 503);
    }
  };
  return (path) => {
    switch (path) {
      case "/":
      case "/index.html":
        return Promise.resolve(
          new Response(CONSOLE_HTML, {
            headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
          }),
        );
      case "/api/overview":
        return withAdmin(async (admin) => ({
          broker: deps.broker,
          health: await deps.health(),
          brokers: (await admin.metadata([])).brokers,
        }));
      case "/api/topics":
        return withAdmin(topicsOf);
      case "/api/groups":
        return withAdmin(groupsOf);
      case "/api/throughput":
        return Promise.resolve(
          json({ intervalMs: THROUGHPUT_INTERVAL_MS, samples: deps.history.samples }),
        );
      default:
        return Promise.resolve(null);
    }
  };
}

/** The page: plain HTML, CSS and script; charts are inline SVG. */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>KafScale console</title>
<style>
  :root { --bg:#0f1419; --panel:#172029; --line:#263442; --text:#e6edf3; --dim:#8b9aab;
          --ok:#3fb950; --warn:#d29922; --bad:#f85149; --a:#58a6ff; --b:#bc8cff; --c:#3fb950; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         background:var(--bg); color:var(--text); }
  header { display:flex; align-items:center; gap:16px; padding:14px 24px;
           border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  .badge { padding:2px 10px; border-radius:999px; font-size:12px; font-weight:600; }
  .ok { background:rgba(63,185,80,.15); color:var(--ok); }
  .degraded, .warn { background:rgba(210,153,34,.15); color:var(--warn); }
  .unavailable, .bad { background:rgba(248,81,73,.15); color:var(--bad); }
  main { padding:20px 24px; display:grid; gap:20px; }
  .charts { display:grid; grid-template-columns:repeat(auto-fit,minmax(300px,1fr)); gap:20px; }
  .panel { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:16px; }
  .panel h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim);
              margin:0 0 10px; font-weight:600; }
  .big { font-size:26px; font-weight:600; }
  .dim { color:var(--dim); }
  svg.chart { width:100%; height:120px; display:block; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
  .bar { height:8px; border-radius:4px; background:var(--a); min-width:2px; }
  .deps span { margin-right:8px; }
</style>
</head>
<body>
<header>
  <h1>KafScale</h1>
  <span id="status" class="badge">…</span>
  <span id="broker" class="dim"></span>
  <span id="deps" class="deps"></span>
</header>
<main>
  <section class="charts">
    <div class="panel"><h2>Produce</h2><div class="big" id="produce-now">–</div>
      <svg class="chart" id="chart-produce" viewBox="0 0 300 120" preserveAspectRatio="none"></svg></div>
    <div class="panel"><h2>Fetch</h2><div class="big" id="fetch-now">–</div>
      <svg class="chart" id="chart-fetch" viewBox="0 0 300 120" preserveAspectRatio="none"></svg></div>
    <div class="panel"><h2>Flush round latency</h2><div class="big" id="latency-now">–</div>
      <svg class="chart" id="chart-latency" viewBox="0 0 300 120" preserveAspectRatio="none"></svg></div>
  </section>
  <section class="panel"><h2>Topics</h2><table id="topics"><thead><tr>
    <th>Topic</th><th class="num">Partitions</th><th class="num">Records</th><th class="num">Size</th>
    <th>Size share</th><th>Leaders</th><th>Retention</th><th>Cleanup</th></tr></thead><tbody></tbody></table></section>
  <section class="panel"><h2>Consumer groups</h2><table id="groups"><thead><tr>
    <th>Group</th><th>State</th><th class="num">Members</th><th>Assignments</th><th class="num">Lag</th>
    <th>Lag by partition</th></tr></thead><tbody></tbody></table></section>
  <section class="panel"><h2>Brokers</h2><table id="brokers"><thead><tr>
    <th>Node</th><th>Address</th><th class="num">Partitions led</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
function bytes(n) {
  if (n < 0 || n === null) return "–";
  const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
}
function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const n = Number(ms); if (n < 0) return "forever";
  if (n % 86400000 === 0) return n / 86400000 + " d";
  if (n % 3600000 === 0) return n / 3600000 + " h";
  return n / 1000 + " s";
}
function chart(id, values, color, unit) {
  const svg = $(id); const w = 300, h = 120, pad = 4;
  const max = Math.max(1e-9, ...values);
  const pts = values.map((v, i) => [values.length < 2 ? w : (i / (values.length - 1)) * w,
    h - pad - (v / max) * (h - 2 * pad)]);
  const line = pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ");
  svg.innerHTML = '<polyline fill="none" stroke="var(--line)" stroke-width="1" points="0,' + (h - pad) + " " + w + "," + (h - pad) + '"/>' +
    (pts.length ? '<polygon fill="' + color + '" fill-opacity=".15" points="0,' + (h - pad) + " " + line + " " + w + "," + (h - pad) + '"/>' +
    '<polyline class="series" fill="none" stroke="' + color + '" stroke-width="2" points="' + line + '"/>' : "") +
    '<text x="4" y="12" fill="var(--dim)" font-size="10">max ' + esc(unit(max)) + "</text>";
  svg.dataset.points = String(pts.length);
}
async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
async function refresh() {
  const [overview, topics, groups, tp] = await Promise.allSettled(
    ["/api/overview", "/api/topics", "/api/groups", "/api/throughput"].map(get));
  if (overview.status === "fulfilled") {
    const o = overview.value; const s = o.health.status;
    $("status").textContent = s; $("status").className = "badge " + s;
    $("broker").textContent = "node " + o.broker.nodeId + " · " + o.broker.kafka + " · v" + o.broker.version;
    $("deps").innerHTML = Object.entries(o.health.dependencies).map(([k, v]) =>
      '<span class="badge ' + (v === "ok" ? "ok" : "bad") + '" title="' + esc(v) + '">' + esc(k) + "</span>").join("");
    window.__brokers = o.brokers;
  }
  if (tp.status === "fulfilled") {
    const s = tp.value.samples;
    const last = s[s.length - 1];
    chart("chart-produce", s.map((x) => x.produceBytesPerSec), "var(--a)", (v) => bytes(v) + "/s");
    chart("chart-fetch", s.map((x) => x.fetchBytesPerSec), "var(--b)", (v) => bytes(v) + "/s");
    chart("chart-latency", s.map((x) => x.flushRoundMs ?? 0), "var(--c)", (v) => v.toFixed(1) + " ms");
    $("produce-now").textContent = last ? bytes(last.produceBytesPerSec) + "/s · " + Math.round(last.produceRecordsPerSec) + " rec/s" : "–";
    $("fetch-now").textContent = last ? bytes(last.fetchBytesPerSec) + "/s" : "–";
    $("latency-now").textContent = last && last.flushRoundMs !== null ? last.flushRoundMs.toFixed(1) + " ms" : "–";
  }
  if (topics.status === "fulfilled") {
    const list = topics.value; const led = new Map();
    const sizes = list.map((t) => t.partitions.reduce((n, p) => n + Math.max(0, p.sealedBytes) + Math.max(0, p.unsealedBytes), 0));
    const biggest = Math.max(1, ...sizes);
    $("topics").tBodies[0].innerHTML = list.map((t, i) => {
      const records = t.partitions.reduce((n, p) => n + Math.max(0, p.latestOffset - p.earliestOffset), 0);
      for (const p of t.partitions) led.set(p.leader, (led.get(p.leader) || 0) + 1);
      const leaders = [...new Set(t.partitions.map((p) => p.leader))].sort().join(", ");
      return '<tr data-topic="' + esc(t.name) + '"><td>' + esc(t.name) + '</td><td class="num">' + t.partitions.length +
        '</td><td class="num">' + records + '</td><td class="num">' + bytes(sizes[i]) +
        '</td><td><div class="bar" style="width:' + (100 * sizes[i] / biggest).toFixed(1) + '%"></div></td><td>' +
        esc(leaders) + "</td><td>" + duration(t.retentionMs) + "</td><td>" + esc(t.cleanupPolicy ?? "") + "</td></tr>";
    }).join("");
    const brokers = window.__brokers || [];
    $("brokers").tBodies[0].innerHTML = brokers.map((b) => "<tr><td>" + b.nodeId + "</td><td>" +
      esc(b.host + ":" + b.port) + '</td><td class="num">' + (led.get(b.nodeId) || 0) + "</td></tr>").join("");
  }
  if (groups.status === "fulfilled") {
    $("groups").tBodies[0].innerHTML = groups.value.map((g) => {
      const lag = g.offsets.reduce((n, o) => n + (o.lag ?? 0), 0);
      const maxLag = Math.max(1, ...g.offsets.map((o) => o.lag ?? 0));
      const bars = g.offsets.map((o) => '<div title="' + esc(o.topic + "-" + o.partition + ": " + (o.lag ?? "?")) +
        '" class="bar" style="display:inline-block;margin-right:2px;height:' + (4 + 16 * (o.lag ?? 0) / maxLag).toFixed(0) +
        'px;width:6px;background:var(--warn)"></div>').join("");
      const assign = g.members.map((m) => esc(m.clientId) + ": " + m.assignment.map((a) => esc(a.topic) + "[" + a.partitions.join(",") + "]").join(" ")).join("; ");
      return '<tr data-group="' + esc(g.groupId) + '"><td>' + esc(g.groupId) + "</td><td>" + esc(g.state) +
        '</td><td class="num">' + g.members.length + "</td><td>" + assign + '</td><td class="num lag">' + lag +
        '</td><td style="vertical-align:bottom">' + bars + "</td></tr>";
    }).join("");
  }
  document.body.dataset.loaded = "true";
}
refresh().catch(console.error);
setInterval(() => refresh().catch(console.error), 5000);
</script>
</body>
</html>
`;
