/**
 * One conformance suite for every `MetadataStore` backend (memory, embedded,
 * and later etcd): each backend's test file calls `metadataStoreConformance`
 * with a factory for fresh, empty stores.
 *
 * The factory receives a `ManualClock` for lease timing. A backend whose
 * leases run on real time (etcd) passes `{ manualClock: false }`, which
 * skips only the cases that drive lease expiry with that clock.
 */

import assert from "node:assert/strict";
import {
  type Compare,
  type KvEntry,
  LeaseExpiredError,
  type MetadataStore,
  type WatchEvent,
} from "../../lib/metadata/metadata_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";

export interface MetadataStoreFixture {
  store: MetadataStore;
  /** Closes the store and removes whatever backs it. */
  cleanup: () => Promise<void>;
}

export interface MetadataConformanceOptions {
  /** Whether the store's leases run on the given ManualClock (default true). */
  manualClock?: boolean;
}

/** Bound on the concurrent writers of the concurrency cases. */
const CONCURRENT_WRITERS = 20;
/** Bound on the retries of one compare-and-swap loop. */
const MAX_CAS_ATTEMPTS = 100;
/** Deadline for conditions a store reaches asynchronously (lease expiry). */
const POLL_DEADLINE_MS = 5_000;

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Polls `condition` until it holds, failing after a deadline. */
export async function waitFor(
  what: string,
  condition: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = performance.now() + POLL_DEADLINE_MS;
  while (!(await condition())) {
    if (performance.now() > deadline) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Collects watch events; `stop()` unsubscribes. */
function recordEvents(store: MetadataStore, prefix: string) {
  const events: WatchEvent[] = [];
  const stop = store.watch(prefix, (event) => events.push(event));
  return { events, stop };
}

function describe(event: WatchEvent): string {
  return event.type === "put"
    ? `put ${event.entry.key}=${text(event.entry.value)}@${event.entry.modRevision}`
    : `delete ${event.key}@${event.modRevision}`;
}

export function metadataStoreConformance(
  name: string,
  makeStore: (clock: ManualClock) => Promise<MetadataStoreFixture>,
  options: MetadataConformanceOptions = {},
): void {
  const manualClock = options.manualClock ?? true;
  const test = (
    title: string,
    fn: (store: MetadataStore, clock: ManualClock) => Promise<void>,
    ignore = false,
  ) =>
    Deno.test({
      name: `${name}: ${title}`,
      ignore,
      fn: async () => {
        const clock = new ManualClock();
        const { store, cleanup } = await makeStore(clock);
        try {
          await fn(store, clock);
        } finally {
          await cleanup();
        }
      },
    });
  const timingTest = (
    title: string,
    fn: (store: MetadataStore, clock: ManualClock) => Promise<void>,
  ) => test(title, fn, !manualClock);

  // ---- Keys and revisions ----------------------------------------------------

  test("a fresh store is empty", async (store) => {
    assert.equal(await store.get("a"), null);
    assert.deepEqual(await store.list(""), []);
  });

  test("put returns increasing revisions; entries carry etcd's fields", async (store) => {
    const r1 = await store.put("k", bytes("v1"));
    const r2 = await store.put("other", bytes("x"));
    const r3 = await store.put("k", bytes("v2"));
    assert.ok(r1 >= 1);
    assert.equal(r2, r1 + 1);
    assert.equal(r3, r2 + 1);
    const entry = await store.get("k");
    assert.deepEqual(entry, {
      key: "k",
      value: bytes("v2"),
      createRevision: r1,
      modRevision: r3,
      version: 2,
      lease: 0,
    });
    // Writing the same value again is still a write.
    const r4 = await store.put("k", bytes("v2"));
    assert.equal(r4, r3 + 1);
    assert.equal((await store.get("k"))!.version, 3);
  });

  test("delete reports existence; only real changes bump the revision", async (store) => {
    const r1 = await store.put("k", bytes("v"));
    assert.equal(await store.delete("k"), true);
    assert.equal(await store.get("k"), null);
    assert.equal(await store.delete("k"), false);
    assert.equal(await store.delete("never"), false);
    const r3 = await store.put("k", bytes("again"));
    assert.equal(r3, r1 + 2, "the missing deletes did not bump the revision");
    const entry = (await store.get("k"))!;
    assert.equal(entry.createRevision, r3, "re-created keys start over");
    assert.equal(entry.version, 1);
  });

  test("values are copied in and out", async (store) => {
    const value = bytes("abc");
    await store.put("k", value);
    value[0] = 0x7a;
    const got = (await store.get("k"))!;
    assert.equal(text(got.value), "abc");
    got.value[0] = 0x7a;
    assert.equal(text((await store.get("k"))!.value), "abc");
    assert.equal(text((await store.list("k"))[0].value), "abc");
  });

  // etcd's JSON gateway leaves an empty `bytes` field out of its answers altogether.
  test("an empty value reads back empty, from get, list and watch", async (store) => {
    const watch = recordEvents(store, "e/");
    const revision = await store.put("e/empty", new Uint8Array(0));
    assert.equal((await store.get("e/empty"))!.value.length, 0);
    assert.deepEqual((await store.list("e/")).map((e) => [e.key, e.value.length]), [[
      "e/empty",
      0,
    ]]);
    assert.deepEqual(watch.events.map(describe), [`put e/empty=@${revision}`]);
    watch.stop();
  });

  test("list returns the prefix range sorted by key", async (store) => {
    for (const key of ["b/2", "a/2", "a/10", "a/1", "a", "ab", "b/1", "a/1/x"]) {
      await store.put(key, bytes(key));
    }
    const keys = async (prefix: string) => (await store.list(prefix)).map((e) => e.key);
    assert.deepEqual(await keys(""), ["a", "a/1", "a/1/x", "a/10", "a/2", "ab", "b/1", "b/2"]);
    assert.deepEqual(await keys("a/"), ["a/1", "a/1/x", "a/10", "a/2"]);
    assert.deepEqual(await keys("a/1"), ["a/1", "a/1/x", "a/10"]);
    assert.deepEqual(await keys("a"), ["a", "a/1", "a/1/x", "a/10", "a/2", "ab"]);
    assert.deepEqual(await keys("c"), []);
    const [entry] = await store.list("b/2");
    assert.equal(text(entry.value), "b/2");
    assert.equal(entry.version, 1);
  });

  test("deletePrefix deletes the range in one revision", async (store) => {
    for (const key of ["t/a", "t/b", "t/c/d", "u/a", "t"]) await store.put(key, bytes("x"));
    const before = await store.put("marker", bytes("m"));
    assert.equal(await store.deletePrefix("t/"), 3);
    assert.deepEqual((await store.list("")).map((e) => e.key), ["marker", "t", "u/a"]);
    assert.equal(await store.deletePrefix("t/"), 0);
    assert.equal(await store.put("marker", bytes("m")), before + 2);
  });

  // ---- Transactions ----------------------------------------------------------

  test("txn applies the success branch atomically at one revision", async (store) => {
    await store.put("gone", bytes("x"));
    const result = await store.txn([], [
      { op: "put", key: "a", value: bytes("1") },
      { op: "put", key: "b", value: bytes("2") },
      { op: "delete", key: "gone" },
    ]);
    assert.equal(result.succeeded, true);
    const a = (await store.get("a"))!;
    const b = (await store.get("b"))!;
    assert.equal(a.modRevision, result.revision);
    assert.equal(b.modRevision, result.revision);
    assert.equal(await store.get("gone"), null);
  });

  test("txn applies the failure branch when a compare fails", async (store) => {
    const r = await store.put("k", bytes("v"));
    const result = await store.txn(
      [{ key: "k", target: "value", equals: bytes("other") }],
      [{ op: "put", key: "k", value: bytes("success") }],
      [{ op: "put", key: "fallback", value: bytes("failure") }],
    );
    assert.equal(result.succeeded, false);
    assert.equal(result.revision, r + 1);
    assert.equal(text((await store.get("k"))!.value), "v");
    assert.equal(text((await store.get("fallback"))!.value), "failure");
  });

  test("a failed txn without a failure branch changes nothing", async (store) => {
    const r = await store.put("k", bytes("v"));
    const result = await store.txn(
      [{ key: "k", target: "exists", equals: false }],
      [{ op: "put", key: "k", value: bytes("new") }, { op: "put", key: "x", value: bytes("x") }],
    );
    assert.deepEqual(result, { succeeded: false, revision: r });
    assert.equal(text((await store.get("k"))!.value), "v");
    assert.equal(await store.get("x"), null);
    assert.equal(await store.put("y", bytes("y")), r + 1);
  });

  test("every compare kind, on present and absent keys", async (store) => {
    const r1 = await store.put("k", bytes("v"));
    const r2 = await store.put("k", bytes("w"));
    const holds = async (compare: Compare) => (await store.txn([compare], [], [])).succeeded;
    const cases: [Compare, boolean][] = [
      [{ key: "k", target: "modRevision", equals: r2 }, true],
      [{ key: "k", target: "modRevision", equals: r1 }, false],
      [{ key: "k", target: "modRevision", equals: 0 }, false],
      [{ key: "absent", target: "modRevision", equals: 0 }, true],
      [{ key: "absent", target: "modRevision", equals: r2 }, false],
      [{ key: "k", target: "version", equals: 2 }, true],
      [{ key: "k", target: "version", equals: 1 }, false],
      [{ key: "k", target: "version", equals: 0 }, false],
      [{ key: "absent", target: "version", equals: 0 }, true],
      [{ key: "k", target: "value", equals: bytes("w") }, true],
      [{ key: "k", target: "value", equals: bytes("v") }, false],
      [{ key: "k", target: "value", equals: bytes("ww") }, false],
      [{ key: "absent", target: "value", equals: bytes("") }, false],
      [{ key: "k", target: "exists", equals: true }, true],
      [{ key: "k", target: "exists", equals: false }, false],
      [{ key: "absent", target: "exists", equals: false }, true],
      [{ key: "absent", target: "exists", equals: true }, false],
    ];
    for (const [compare, expected] of cases) {
      assert.equal(await holds(compare), expected, JSON.stringify(compare));
    }
    // Compares are a conjunction; none of them wrote anything.
    const both = await store.txn([
      { key: "k", target: "exists", equals: true },
      { key: "absent", target: "exists", equals: true },
    ], [{ op: "put", key: "z", value: bytes("z") }]);
    assert.equal(both.succeeded, false);
    assert.equal(both.revision, r2);
  });

  test("txn with deletePrefix and puts elsewhere", async (store) => {
    await store.put("p/1", bytes("1"));
    await store.put("p/2", bytes("2"));
    const events = recordEvents(store, "");
    const result = await store.txn([{ key: "p/1", target: "exists", equals: true }], [
      { op: "deletePrefix", prefix: "p/" },
      { op: "put", key: "q", value: bytes("q") },
    ]);
    events.stop();
    assert.equal(result.succeeded, true);
    assert.deepEqual((await store.list("")).map((e) => e.key), ["q"]);
    assert.deepEqual(events.events.map(describe), [
      `delete p/1@${result.revision}`,
      `delete p/2@${result.revision}`,
      `put q=q@${result.revision}`,
    ]);
  });

  test("a txn that writes one key twice is rejected and applies nothing", async (store) => {
    const r = await store.put("k", bytes("v"));
    await assert.rejects(() =>
      store.txn([], [
        { op: "put", key: "k", value: bytes("1") },
        { op: "put", key: "k", value: bytes("2") },
      ])
    );
    assert.equal(text((await store.get("k"))!.value), "v");
    assert.equal(await store.put("x", bytes("x")), r + 1);
  });

  test("concurrent CAS on one key: exactly one winner", async (store) => {
    const start = await store.put("owner", bytes("none"));
    const results = await Promise.all(
      Array.from({ length: CONCURRENT_WRITERS }, (_, i) =>
        store.txn(
          [{ key: "owner", target: "modRevision", equals: start }],
          [{ op: "put", key: "owner", value: bytes(`writer-${i}`) }],
        )),
    );
    const winners = results.flatMap((r, i) => (r.succeeded ? [i] : []));
    assert.equal(winners.length, 1);
    const entry = (await store.get("owner"))!;
    assert.equal(text(entry.value), `writer-${winners[0]}`);
    assert.equal(entry.modRevision, results[winners[0]].revision);
    assert.equal(entry.version, 2);
  });

  test("concurrent CAS increment loops lose no update", async (store) => {
    await store.put("counter", bytes("0"));
    const increments = 5;
    const worker = async () => {
      for (let done = 0, attempts = 0; done < increments; attempts++) {
        assert.ok(attempts < MAX_CAS_ATTEMPTS, "CAS loop did not converge");
        const entry = (await store.get("counter"))!;
        const next = String(Number(text(entry.value)) + 1);
        const { succeeded } = await store.txn(
          [{ key: "counter", target: "modRevision", equals: entry.modRevision }],
          [{ op: "put", key: "counter", value: bytes(next) }],
        );
        if (succeeded) done++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const entry = (await store.get("counter"))!;
    assert.equal(text(entry.value), String(8 * increments));
    assert.equal(entry.version, 8 * increments + 1);
  });

  test("concurrent creates with exists=false: exactly one winner", async (store) => {
    const results = await Promise.all(
      Array.from({ length: CONCURRENT_WRITERS }, (_, i) =>
        store.txn(
          [{ key: "lock", target: "version", equals: 0 }],
          [{ op: "put", key: "lock", value: bytes(`holder-${i}`) }],
        )),
    );
    assert.equal(results.filter((r) => r.succeeded).length, 1);
  });

  // ---- Watches ---------------------------------------------------------------

  test("watch delivers later changes under the prefix in revision order", async (store) => {
    await store.put("w/before", bytes("old"));
    const watch = recordEvents(store, "w/");
    const r1 = await store.put("w/a", bytes("1"));
    await store.put("elsewhere", bytes("x"));
    const r2 = await store.put("w/a", bytes("2"));
    const r3 = (await store.txn([], [
      { op: "put", key: "w/b", value: bytes("3") },
      { op: "delete", key: "w/before" },
    ])).revision;
    await store.delete("w/a");
    const r5 = r3 + 1;
    assert.deepEqual(watch.events.map(describe), [
      `put w/a=1@${r1}`,
      `put w/a=2@${r2}`,
      `put w/b=3@${r3}`,
      `delete w/before@${r3}`,
      `delete w/a@${r5}`,
    ]);
    const put = watch.events[1];
    assert.equal(put.type, "put");
    const entry = (put as { entry: KvEntry }).entry;
    assert.deepEqual(
      { create: entry.createRevision, version: entry.version, lease: entry.lease },
      { create: r1, version: 2, lease: 0 },
    );
    watch.stop();
  });

  test("watch: no events for failed txns or no-op deletes; unsubscribe stops delivery", async (store) => {
    const watch = recordEvents(store, "");
    await store.txn([{ key: "k", target: "exists", equals: true }], [
      { op: "put", key: "k", value: bytes("no") },
    ]);
    await store.delete("missing");
    await store.deletePrefix("missing/");
    assert.deepEqual(watch.events, []);
    await store.put("k", bytes("yes"));
    assert.equal(watch.events.length, 1);
    watch.stop();
    await store.put("k", bytes("after stop"));
    await store.delete("k");
    assert.equal(watch.events.length, 1);
  });

  test("watchers are independent and see the same order", async (store) => {
    const a = recordEvents(store, "");
    const b = recordEvents(store, "x");
    const writes = Array.from(
      { length: 10 },
      (_, i) => store.put(i % 2 ? "x" : "y", bytes(`${i}`)),
    );
    await Promise.all(writes);
    a.stop();
    b.stop();
    const revisions = a.events.map((e) => (e.type === "put" ? e.entry.modRevision : -1));
    assert.deepEqual(revisions, [...revisions].sort((p, q) => p - q));
    assert.equal(a.events.length, 10);
    assert.deepEqual(
      b.events.map(describe),
      a.events.filter((e) => e.type === "put" && e.entry.key === "x").map(describe),
    );
  });

  test("a watcher that writes from its callback keeps revision order for all", async (store) => {
    const seen: string[] = [];
    const stopEcho = store.watch("in/", (event) => {
      if (event.type === "put") void store.put("out/echo", event.entry.value);
    });
    const all = recordEvents(store, "");
    await store.put("in/a", bytes("1"));
    await waitFor("the echo write", async () => (await store.get("out/echo")) !== null);
    for (const e of all.events) seen.push(describe(e));
    stopEcho();
    all.stop();
    assert.equal(seen.length, 2);
    assert.match(seen[0], /^put in\/a=1@/);
    assert.match(seen[1], /^put out\/echo=1@/);
  });

  // ---- Leases ----------------------------------------------------------------

  test("revokeLease deletes the lease's keys in one revision", async (store) => {
    const lease = await store.grantLease(10_000);
    assert.ok(lease.id > 0);
    assert.equal(lease.ttlMs, 10_000);
    await store.put("l/a", bytes("a"), { lease: lease.id });
    const r = (await store.txn([], [
      { op: "put", key: "l/b", value: bytes("b"), lease: lease.id },
      { op: "put", key: "l/c", value: bytes("c") },
    ])).revision;
    assert.equal((await store.get("l/a"))!.lease, lease.id);
    const watch = recordEvents(store, "l/");
    await store.revokeLease(lease.id);
    watch.stop();
    assert.deepEqual((await store.list("l/")).map((e) => e.key), ["l/c"]);
    assert.deepEqual(watch.events.map(describe), [`delete l/a@${r + 1}`, `delete l/b@${r + 1}`]);
    await assert.rejects(() => store.keepAlive(lease.id), LeaseExpiredError);
    await store.revokeLease(lease.id); // revoking again is a no-op
  });

  test("a put with an unknown or revoked lease fails and applies nothing", async (store) => {
    await assert.rejects(() => store.put("k", bytes("v"), { lease: 987654321 }), LeaseExpiredError);
    const lease = await store.grantLease(10_000);
    await store.revokeLease(lease.id);
    await assert.rejects(
      () =>
        store.txn([], [
          { op: "put", key: "a", value: bytes("a") },
          { op: "put", key: "b", value: bytes("b"), lease: lease.id },
        ]),
      LeaseExpiredError,
    );
    assert.deepEqual(await store.list(""), []);
  });

  test("keepAlive of an unknown lease throws LeaseExpiredError", async (store) => {
    const error = await store.keepAlive(424242).then(() => null, (e) => e);
    assert.ok(error instanceof LeaseExpiredError, String(error));
    assert.equal(error.leaseId, 424242);
  });

  test("overwriting a leased key can detach it from the lease", async (store) => {
    const lease = await store.grantLease(10_000);
    await store.put("k", bytes("leased"), { lease: lease.id });
    await store.put("k", bytes("free"));
    assert.equal((await store.get("k"))!.lease, 0);
    await store.revokeLease(lease.id);
    assert.equal(text((await store.get("k"))!.value), "free");
  });

  timingTest("keys vanish when their lease expires, with delete events", async (store, clock) => {
    const lease = await store.grantLease(1_000);
    await store.put("e/a", bytes("a"), { lease: lease.id });
    await store.put("e/keep", bytes("k"));
    const watch = recordEvents(store, "e/");
    clock.advance(999);
    assert.notEqual(await store.get("e/a"), null);
    clock.advance(1);
    await waitFor("the leased key to vanish", async () => (await store.get("e/a")) === null);
    assert.notEqual(await store.get("e/keep"), null);
    await waitFor("the delete event", () => watch.events.length === 1);
    assert.equal(describe(watch.events[0]).startsWith("delete e/a@"), true);
    watch.stop();
    await assert.rejects(() => store.keepAlive(lease.id), LeaseExpiredError);
    await assert.rejects(
      () => store.put("e/b", bytes("b"), { lease: lease.id }),
      LeaseExpiredError,
    );
  });

  timingTest("keepAlive extends the lease by its TTL", async (store, clock) => {
    const lease = await store.grantLease(1_000);
    await store.put("k", bytes("v"), { lease: lease.id });
    for (let i = 0; i < 5; i++) {
      clock.advance(600);
      await store.keepAlive(lease.id);
    }
    assert.notEqual(await store.get("k"), null, "kept alive for 3 s with a 1 s TTL");
    clock.advance(999);
    assert.notEqual(await store.get("k"), null);
    clock.advance(1);
    await waitFor("the key to vanish", async () => (await store.get("k")) === null);
    await assert.rejects(() => store.keepAlive(lease.id), LeaseExpiredError);
  });

  timingTest("leases expire independently", async (store, clock) => {
    const short = await store.grantLease(100);
    const long = await store.grantLease(1_000);
    assert.notEqual(short.id, long.id);
    await store.put("short", bytes("s"), { lease: short.id });
    await store.put("long", bytes("l"), { lease: long.id });
    clock.advance(500);
    await waitFor("short to vanish", async () => (await store.get("short")) === null);
    assert.notEqual(await store.get("long"), null);
    await store.keepAlive(long.id);
    clock.advance(1_000);
    await waitFor("long to vanish", async () => (await store.get("long")) === null);
  });
}
