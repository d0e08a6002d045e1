import assert from "node:assert/strict";
import { BURST_MS, INGEST_FACTOR, WritePacer } from "../../lib/log/write_pacer.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { isSettled } from "./log_fixture.ts";

const MIB = 1024 * 1024;

function pacer(options: { floor: number; ingested?: () => number; bypass?: () => boolean }) {
  const clock = new ManualClock();
  const p = new WritePacer({
    clock,
    floorBytesPerSecond: options.floor,
    ingestedBytes: options.ingested ?? (() => 0),
    bypass: options.bypass ?? (() => false),
  });
  return { clock, p };
}

Deno.test("pacer: a floor of 0 never waits", async () => {
  const { p } = pacer({ floor: 0 });
  assert.equal(p.bytesPerSecond, 0);
  for (let i = 0; i < 10; i++) assert.ok(await isSettled(p.pace(64 * MIB)));
});

Deno.test("pacer: pieces go at the floor rate once the burst credit is spent", async () => {
  const { clock, p } = pacer({ floor: MIB });
  assert.equal(p.bytesPerSecond, MIB);
  // An idle pacer lets the first piece through at once...
  assert.ok(await isSettled(p.pace(256 * 1024)));
  // ...and the next one once the first has had its 250 ms (less the burst credit).
  const second = p.pace(256 * 1024);
  assert.equal(await isSettled(second), false);
  clock.advance(250 - BURST_MS - 2);
  assert.equal(await isSettled(second), false);
  clock.advance(2);
  assert.ok(await isSettled(second));
  // 1 MiB more after that takes a second at 1 MiB/s: the third piece waits for the second.
  const third = p.pace(MIB);
  clock.advance(200);
  assert.equal(await isSettled(third), false);
  clock.advance(50);
  assert.ok(await isSettled(third));
  const fourth = p.pace(1);
  clock.advance(999);
  assert.equal(await isSettled(fourth), false);
  clock.advance(1);
  assert.ok(await isSettled(fourth));
});

Deno.test("pacer: the pace follows twice the write-ahead rate when that is above the floor", () => {
  let ingested = 0;
  const { clock, p } = pacer({ floor: MIB, ingested: () => ingested });
  // 100 MiB/s written ahead for 3 s (sampled every 50 ms): the average converges to it.
  for (let t = 0; t < 3_000; t += 50) {
    ingested += 5 * MIB;
    clock.advance(50);
    p.bytesPerSecond;
  }
  const rate = p.bytesPerSecond;
  assert.ok(
    Math.abs(rate - INGEST_FACTOR * 100 * MIB) < 2 * MIB,
    `expected ~${INGEST_FACTOR * 100} MiB/s, got ${(rate / MIB).toFixed(1)} MiB/s`,
  );
  // Producing stops: within a couple of seconds the pace is back at the floor.
  for (let t = 0; t < 3_000; t += 50) {
    clock.advance(50);
    p.bytesPerSecond;
  }
  assert.ok(p.bytesPerSecond < 1.1 * MIB, `got ${(p.bytesPerSecond / MIB).toFixed(2)} MiB/s`);
});

Deno.test("pacer: bypass (closing, a handover's seal) writes at full speed", async () => {
  let bypass = false;
  const { p } = pacer({ floor: 1, bypass: () => bypass });
  assert.ok(await isSettled(p.pace(1)));
  const waiting = p.pace(1_000);
  assert.equal(await isSettled(waiting), false);
  bypass = true;
  assert.equal(p.bytesPerSecond, 0);
  for (let i = 0; i < 10; i++) assert.ok(await isSettled(p.pace(64 * MIB)));
});

Deno.test("pacer: a negative floor is refused", () => {
  assert.throws(() => pacer({ floor: -1 }), /floorBytesPerSecond must be 0 or more/);
});
