/**
 * The log start offset moving into unsealed data (DeleteRecords): the sealed end follows it,
 * later seals start there, a seal overtaken by the advance is dropped (not committed, its
 * objects deleted), two advances at once merge, and a restart serves the same data.
 */
import assert from "node:assert/strict";
import { LogError } from "../../lib/log/log_manager.ts";
import {
  appendAcked,
  batch,
  decode,
  GatedObjectStore,
  harness,
  sealAll,
  TOPIC,
} from "./log_fixture.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";

Deno.test("log start: an advance into unsealed ranges moves the sealed end; sealing goes on from it", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 6; i++) await appendAcked(h, log, batch([`r${i}`]));
    assert.equal(log.sealedEnd, 0);
    assert.equal(log.unsealedRangeCount, 6);
    await log.advanceLogStartOffset(3);
    assert.equal(log.logStartOffset, 3);
    assert.equal(log.sealedEnd, 3);
    assert.deepEqual(decode((await log.read(3, 1 << 20)).chunks).map((r) => r[1]), [
      "r3",
      "r4",
      "r5",
    ]);
    await sealAll(log);
    assert.deepEqual(log.segments.map((s) => [s.baseOffset, s.lastOffset]), [[3, 5]]);
    // A new owner reads the same.
    await h.manager.close();
    const next = await (await h.newManager()).partition(TOPIC, 0);
    assert.equal(next.logStartOffset, 3);
    assert.deepEqual(decode((await next.read(3, 1 << 20)).chunks).map((r) => r[1]), [
      "r3",
      "r4",
      "r5",
    ]);
  } finally {
    await h.close();
  }
});

Deno.test("log start: a seal overtaken by an advance is dropped, its objects deleted", async () => {
  const gated = new GatedObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: gated });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 4; i++) await appendAcked(h, log, batch([`r${i}`]));
    gated.hold(); // the seal's segment PUTs wait here
    const seal = log.seal({ segmentBytes: 1 << 20 });
    for (let i = 0; i < 100 && gated.waiting === 0; i++) await new Promise((r) => setTimeout(r, 0));
    assert.ok(gated.waiting > 0, "the seal is writing its segment");
    const advance = log.advanceLogStartOffset(2);
    gated.release();
    await advance;
    await assert.rejects(seal, LogError);
    assert.equal(log.closed, false);
    assert.equal(log.sealedEnd, 2);
    assert.equal(log.segments.length, 0);
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual((await gated.list(`default/${TOPIC}/0/`)).map((o) => o.key), []);
    await sealAll(log);
    assert.deepEqual(log.segments.map((s) => [s.baseOffset, s.lastOffset]), [[2, 3]]);
    assert.deepEqual(decode((await log.read(2, 1 << 20)).chunks).map((r) => r[1]), ["r2", "r3"]);
  } finally {
    await h.close();
  }
});

Deno.test("log start: two advances at once merge into the higher one", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 5; i++) await appendAcked(h, log, batch([`r${i}`]));
    await sealAll(log);
    const [a, b] = await Promise.all([log.advanceLogStartOffset(2), log.advanceLogStartOffset(4)]);
    assert.deepEqual(a, b);
    assert.equal(log.logStartOffset, 4);
    assert.equal((await h.metadata.getPartitionState(TOPIC, 0)).state.logStartOffset, 4);
  } finally {
    await h.close();
  }
});
