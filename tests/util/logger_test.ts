/** The three log line formats of `kafscale serve` (`--log-format`). */
import assert from "node:assert/strict";
import { ConsoleLogger } from "../../lib/util/logger.ts";

function lines(format: "text" | "json" | "journald"): string[] {
  const out: string[] = [];
  const logger = new ConsoleLogger("info", { node: 1 }, (l) => out.push(l), format);
  logger.debug("hidden");
  logger.info("Broker ready", { kafka: "127.0.0.1:9092", big: 12n });
  logger.child({ partition: "t-0" }).warn("Cannot seal", { error: 'disk "full"' });
  logger.error("Broken invariant");
  return out;
}

Deno.test("logger: text lines carry the time, the level, the message and key=value fields", () => {
  const out = lines("text");
  assert.equal(out.length, 3);
  assert.match(
    out[0],
    /^\d{4}-\d\d-\d\dT\S+Z INFO Broker ready node=1 kafka="127\.0\.0\.1:9092" big=12$/,
  );
  assert.match(out[1], / WARN Cannot seal node=1 partition="t-0" error="disk \\"full\\""$/);
});

Deno.test("logger: journald lines have a syslog priority and no time (the journal adds it)", () => {
  const out = lines("journald");
  assert.deepEqual(out, [
    '<6>INFO Broker ready node=1 kafka="127.0.0.1:9092" big=12',
    '<4>WARN Cannot seal node=1 partition="t-0" error="disk \\"full\\""',
    "<3>ERROR Broken invariant node=1",
  ]);
});

Deno.test("logger: json lines are one object each, fields included", () => {
  const out = lines("json").map((l) => JSON.parse(l));
  assert.equal(out.length, 3);
  assert.deepEqual({ ...out[0], ts: undefined }, {
    ts: undefined,
    level: "info",
    msg: "Broker ready",
    node: 1,
    kafka: "127.0.0.1:9092",
    big: "12",
  });
  assert.ok(!Number.isNaN(Date.parse(out[0].ts)));
  assert.equal(out[1].partition, "t-0");
  assert.equal(out[2].level, "error");
});
