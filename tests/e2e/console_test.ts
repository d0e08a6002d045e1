/**
 * The built-in console in a real browser: headless Chromium (Debian's `chromium`) loads `/`
 * from a broker with traffic, with every host but loopback unresolvable (no CDN can be used),
 * and the rendered DOM shows the topic, the consumer group with its lag, and charts with data
 * points. The JSON API behind it is checked as scripts would use it. A screenshot is saved as
 * .tools/console.png (a CI artifact).
 */
import assert from "node:assert/strict";
import { type BrokerProcess, startBroker } from "./broker_process.ts";
import { REPO_ROOT } from "./client_runner.ts";

const dec = new TextDecoder();
const CHROMIUM_TIMEOUT_MS = 60_000;

async function kafscale(broker: BrokerProcess, args: string[], input?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}cli.ts`, ...args, "--bootstrap-server", broker.bootstrap],
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
  }
  const out = await child.output();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  return dec.decode(out.stdout);
}

/** Headless Chromium with no network but loopback. */
async function chromium(args: string[]): Promise<string> {
  const child = new Deno.Command("chromium", {
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
      "--virtual-time-budget=10000",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), CHROMIUM_TIMEOUT_MS);
  const out = await child.output().finally(() => clearTimeout(timer));
  assert.equal(out.code, 0, dec.decode(out.stderr));
  return dec.decode(out.stdout);
}

Deno.test("console: Chromium renders topics, groups with lag and throughput charts, offline", async () => {
  await using broker = await startBroker({ args: ["--group-initial-rebalance-delay-ms", "0"] });
  const http = `http://${broker.httpAddr}`;
  await kafscale(broker, ["topics", "create", "orders", "--partitions", "3"]);
  // Traffic over three 5 s sampling intervals: produce, then a group reads part of it.
  for (let round = 0; round < 3; round++) {
    const input = Array.from({ length: 300 }, (_, i) => `key-${round}-${i}:value ${i}`).join("\n");
    await kafscale(broker, ["produce", "orders", "--key-delimiter", ":"], input);
    if (round === 1) {
      await kafscale(broker, [
        "consume",
        "orders",
        "--group",
        "billing",
        "--from-beginning",
        "--count",
        "400",
      ]);
    }
    await new Promise((r) => setTimeout(r, 5_500));
  }

  // The JSON API.
  const topics = await (await fetch(`${http}/api/topics`)).json();
  const orders = topics.find((t: { name: string }) => t.name === "orders");
  assert.equal(orders.partitions.length, 3);
  assert.equal(
    orders.partitions.reduce((n: number, p: { latestOffset: number }) => n + p.latestOffset, 0),
    900,
  );
  assert.equal(orders.cleanupPolicy, "delete");
  const groups = await (await fetch(`${http}/api/groups`)).json();
  const billing = groups.find((g: { groupId: string }) => g.groupId === "billing");
  assert.equal(
    billing.offsets.reduce((n: number, o: { lag: number }) => n + o.lag, 0),
    500,
    JSON.stringify(billing),
  );
  const throughput = await (await fetch(`${http}/api/throughput`)).json();
  assert.ok(throughput.samples.length >= 2, JSON.stringify(throughput));
  assert.ok(
    throughput.samples.some((s: { produceBytesPerSec: number }) => s.produceBytesPerSec > 0),
  );
  const overview = await (await fetch(`${http}/api/overview`)).json();
  assert.equal(overview.health.status, "ok");

  // The page in a browser.
  const dom = await chromium(["--dump-dom", `${http}/`]);
  assert.match(dom, /<body[^>]*data-loaded="true"/, dom.slice(0, 2000));
  assert.match(
    dom,
    /<tr data-topic="orders"><td>orders<\/td><td class="num">3<\/td><td class="num">900<\/td>/,
  );
  assert.match(dom, /<tr data-group="billing">.*?<td class="num lag">500<\/td>/s);
  const points = [...dom.matchAll(/id="chart-(produce|fetch|latency)"[^>]*data-points="(\d+)"/g)];
  assert.equal(points.length, 3, "three charts");
  for (const [, name, count] of points) assert.ok(Number(count) >= 2, `${name}: ${count} points`);
  assert.match(dom, /<polyline class="series"/);
  assert.match(dom, /id="status" class="badge ok">ok</);

  await Deno.mkdir(`${REPO_ROOT}.tools`, { recursive: true });
  await chromium([
    "--window-size=1280,900",
    `--screenshot=${REPO_ROOT}.tools/console.png`,
    `${http}/`,
  ]);
  assert.ok((await Deno.stat(`${REPO_ROOT}.tools/console.png`)).size > 10_000);
});
