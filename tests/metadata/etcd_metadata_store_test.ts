/**
 * EtcdMetadataStore against a real etcd on loopback: the shared conformance suite (each case on
 * its own key prefix of one etcd), real lease expiry, watches across clients, and faults (etcd
 * killed and restarted).
 *
 * etcd comes from `bash scripts/setup_backends.sh` (Debian's etcd-server); without it these
 * tests fail, saying so.
 */

import assert from "node:assert/strict";
import {
  EtcdMetadataStore,
  type EtcdMetadataStoreSettings,
} from "../../lib/metadata/etcd_metadata_store.ts";
import {
  LeaseExpiredError,
  MetadataStoreError,
  type WatchEvent,
} from "../../lib/metadata/metadata_store.ts";
import { WAL_MERGED_RECORD_BYTES_MAX, walMergedRangeBytes } from "../../lib/log/log_manager.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { type EtcdServer, startEtcd } from "../support/backends.ts";
import { writeWalRounds } from "../support/wal_index.ts";
import { FaultProxy } from "../chaos/fault_proxy.ts";
import { makeCerts } from "../support/certs.ts";
import { enableEtcdAuth } from "../support/etcd_auth.ts";
import { metadataStoreConformance } from "./metadata_store_conformance.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Short enough that fault cases finish quickly; far above loopback latency. */
const REQUEST_TIMEOUT_MS = 1_000;
/** Deadline for conditions reached asynchronously (recovery, lease expiry, remote events). */
const POLL_DEADLINE_MS = 20_000;

// ---- One etcd shared by the conformance cases -------------------------------------------------

let shared: EtcdServer | null = null;
let sharedError: unknown = null;
let prefixCounter = 0;

function sharedServer(): EtcdServer {
  if (shared) return shared;
  throw new Error(
    `etcd did not start (see the test "EtcdMetadataStore: start etcd"): ${sharedError}`,
  );
}

Deno.test({
  name: "EtcdMetadataStore: start etcd",
  // The server outlives this test; the last shared-server test stops it.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    try {
      shared = await startEtcd();
    } catch (error) {
      sharedError = error;
      throw error;
    }
  },
});

function settingsFor(server: EtcdServer, extra: Partial<EtcdMetadataStoreSettings> = {}) {
  return { endpoints: [server.endpoint], requestTimeoutMs: REQUEST_TIMEOUT_MS, ...extra };
}

/** A store on its own key prefix; cleanup deletes its keys. */
async function prefixedStore(extra: Partial<EtcdMetadataStoreSettings> = {}) {
  const keyPrefix = `/t${++prefixCounter}/`;
  const store = await EtcdMetadataStore.open(settingsFor(sharedServer(), { keyPrefix, ...extra }));
  return {
    store,
    cleanup: async () => {
      await store.deletePrefix("");
      await store.close();
    },
  };
}

metadataStoreConformance("EtcdMetadataStore", () => prefixedStore(), { manualClock: false });

Deno.test("EtcdMetadataStore: keys live under keyPrefix and come back without it", async () => {
  const server = sharedServer();
  const outer = await EtcdMetadataStore.open(settingsFor(server, { keyPrefix: "/iso/" }));
  const a = await EtcdMetadataStore.open(settingsFor(server, { keyPrefix: "/iso/a/" }));
  const b = await EtcdMetadataStore.open(settingsFor(server, { keyPrefix: "/iso/b/" }));
  try {
    await a.put("k", bytes("from a"));
    await b.put("k", bytes("from b"));
    assert.deepEqual((await outer.list("")).map((e) => e.key), ["a/k", "b/k"]);
    assert.deepEqual((await a.list("")).map((e) => [e.key, text(e.value)]), [["k", "from a"]]);
    assert.equal(text((await b.get("k"))!.value), "from b");
    assert.equal(await a.deletePrefix(""), 1);
    assert.deepEqual((await outer.list("")).map((e) => e.key), ["b/k"]);
    assert.equal(await outer.deletePrefix(""), 1);
  } finally {
    await Promise.all([outer.close(), a.close(), b.close()]);
  }
});

Deno.test("EtcdMetadataStore: list pages through large prefixes at one revision", async () => {
  const { store, cleanup } = await prefixedStore();
  try {
    const count = 1_234; // more than two pages
    const keys = Array.from({ length: count }, (_, i) => `big/${String(i).padStart(5, "0")}`);
    for (let i = 0; i < keys.length; i += 100) {
      await store.txn(
        [],
        keys.slice(i, i + 100).map((key) => ({ op: "put", key, value: bytes(key) })),
      );
    }
    const listed = await store.list("big/");
    assert.deepEqual(listed.map((e) => e.key), keys);
    assert.equal(text(listed[1_000].value), keys[1_000]);
  } finally {
    await cleanup();
  }
});

Deno.test("EtcdMetadataStore: leases are rounded up to seconds and expire in etcd", async () => {
  const { store, cleanup } = await prefixedStore();
  try {
    const lease = await store.grantLease(1_200);
    assert.ok(lease.ttlMs >= 2_000 && lease.ttlMs % 1_000 === 0, `granted ${lease.ttlMs} ms`);
    assert.ok(Number.isSafeInteger(lease.id) && lease.id > 0);
    await store.put("leased", bytes("v"), { lease: lease.id });
    await store.put("free", bytes("v"));
    const events: WatchEvent[] = [];
    const stop = store.watch("", (event) => events.push(event));
    // Kept alive past its TTL, the key stays.
    const keepUntil = performance.now() + lease.ttlMs + 1_000;
    while (performance.now() < keepUntil) {
      await store.keepAlive(lease.id);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert.equal((await store.get("leased"))!.lease, lease.id);
    // Then it expires on its own, with a delete event.
    await waitFor("the leased key to expire", async () => (await store.get("leased")) === null);
    await waitFor("the delete event", () => events.length === 1);
    assert.deepEqual(events[0].type === "delete" && events[0].key, "leased");
    assert.notEqual(await store.get("free"), null);
    await assert.rejects(() => store.keepAlive(lease.id), LeaseExpiredError);
    await assert.rejects(
      () => store.put("again", bytes("v"), { lease: lease.id }),
      LeaseExpiredError,
    );
    stop();
  } finally {
    await cleanup();
  }
});

Deno.test("EtcdMetadataStore: a txn naming a missing lease names it in LeaseExpiredError", async () => {
  const { store, cleanup } = await prefixedStore();
  try {
    const live = await store.grantLease(10_000);
    const error = await store.txn([], [
      { op: "put", key: "a", value: bytes("a"), lease: live.id },
      { op: "put", key: "b", value: bytes("b"), lease: 777_777 },
    ]).then(() => null, (e) => e);
    assert.ok(error instanceof LeaseExpiredError, String(error));
    assert.equal(error.leaseId, 777_777);
    assert.deepEqual(await store.list(""), []);
    await store.revokeLease(live.id);
  } finally {
    await cleanup();
  }
});

Deno.test("EtcdMetadataStore: watchers see other clients' writes, in order", async () => {
  const server = sharedServer();
  const keyPrefix = `/cross${++prefixCounter}/`;
  const reader = await EtcdMetadataStore.open(settingsFor(server, { keyPrefix }));
  const writer = await EtcdMetadataStore.open(settingsFor(server, { keyPrefix }));
  try {
    await writer.put("x/old", bytes("before the watch"));
    await reader.get("x/old"); // the reader has now seen that revision
    const events: WatchEvent[] = [];
    const stop = reader.watch("x/", (event) => events.push(event));
    const revisions: number[] = [];
    for (let i = 0; i < 20; i++) revisions.push(await writer.put(`x/${i % 3}`, bytes(`${i}`)));
    revisions.push((await writer.txn([], [{ op: "deletePrefix", prefix: "x/" }])).revision);
    await waitFor("20 puts and 4 deletes", () => events.length === 24);
    const seen = events.map((e) => (e.type === "put" ? e.entry.modRevision : e.modRevision));
    assert.deepEqual(seen.slice(0, 20), revisions.slice(0, 20));
    assert.deepEqual(seen.slice(20), [revisions[20], revisions[20], revisions[20], revisions[20]]);
    assert.ok(!events.some((e) => e.type === "put" && e.entry.key === "x/old"), "no replay");
    stop();
  } finally {
    await writer.deletePrefix("");
    await Promise.all([reader.close(), writer.close()]);
  }
});

Deno.test("EtcdMetadataStore: with one of two endpoints down, every call still succeeds", async () => {
  const server = sharedServer();
  const dead = `http://127.0.0.1:${unusedPort()}`;
  const store = await EtcdMetadataStore.open({
    endpoints: [dead, server.endpoint],
    keyPrefix: `/two${++prefixCounter}/`,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  try {
    // Hosts are picked at random per call: enough calls hit the dead one first.
    for (let i = 0; i < 20; i++) {
      await store.put(`k${i}`, bytes(`${i}`));
      assert.equal(text((await store.get(`k${i}`))!.value), `${i}`);
    }
    assert.equal(await store.deletePrefix(""), 20);
  } finally {
    await store.close();
  }
});

Deno.test("EtcdMetadataStore: settings are validated with messages naming the setting", async () => {
  await assert.rejects(
    () => EtcdMetadataStore.open({ endpoints: [] }),
    /"endpoints" needs at least one URL/,
  );
  await assert.rejects(
    () => EtcdMetadataStore.open({ endpoints: ["localhost:2379"] }),
    /"endpoints" must hold URLs like "http:\/\/127.0.0.1:2379", got "localhost:2379"/,
  );
  await assert.rejects(
    () => EtcdMetadataStore.open({ endpoints: ["http://127.0.0.1:2379"], password: "x" }),
    /"password" is set but "username" is not/,
  );
  await assert.rejects(
    () => EtcdMetadataStore.open({ endpoints: ["http://127.0.0.1:2379"], requestTimeoutMs: 0 }),
    /"requestTimeoutMs" must be an integer/,
  );
  await assert.rejects(
    () =>
      EtcdMetadataStore.open({
        endpoints: ["https://127.0.0.1:2379"],
        tls: { caFile: "/nonexistent/ca.pem" },
      }),
    /cannot read the etcd TLS CA file "\/nonexistent\/ca.pem"/,
  );
});

Deno.test("ClusterMetadata on etcd: the largest index merge collection makes is one transaction etcd takes", async () => {
  const { store, cleanup } = await prefixedStore();
  try {
    const meta = new ClusterMetadata(store);
    // As many ranges of a topic with the longest name (249 characters) as the bound lets one
    // merged record name, from as many records as one transaction replaces.
    const topic = "t".repeat(249);
    const sources = meta.walIndexReplaceMax;
    const perRange = walMergedRangeBytes({
      topic,
      topicId: "AAAAAAAAAAAAAAAAAAAAAA",
      partition: 0,
      epoch: 1,
      baseOffset: 0,
      endOffset: 1,
      position: 0,
      length: 0,
    });
    const perRound = Math.floor(WAL_MERGED_RECORD_BYTES_MAX / perRange / sources);
    const listed = await writeWalRounds(meta, sources, perRound, topic);
    const ranges = listed.flatMap((e) => e.record.ranges);
    const bytes = ranges.length * perRange;
    assert.ok(
      bytes <= WAL_MERGED_RECORD_BYTES_MAX &&
        bytes > WAL_MERGED_RECORD_BYTES_MAX - sources * perRange,
    );
    const merged = {
      id: `${listed[listed.length - 1].id}-m00`,
      record: { object: listed[0].record.object, ranges },
    };
    assert.equal(await meta.replaceWalIndex(listed, merged), true);
    const after = await meta.listWalIndex();
    assert.deepEqual(after.map((e) => [e.id, e.record]), [[merged.id, merged.record]]);
  } finally {
    await cleanup();
  }
});

Deno.test({
  name: "EtcdMetadataStore: stop etcd",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await shared?.stop();
    shared = null;
  },
});

// ---- Start-up and faults ----------------------------------------------------------------------

Deno.test("EtcdMetadataStore: open fails fast when nothing listens at the endpoint", async () => {
  const port = unusedPort();
  const started = performance.now();
  const error = await EtcdMetadataStore.open({
    endpoints: [`http://127.0.0.1:${port}`],
    dialTimeoutMs: 2_000,
  }).then(() => null, (e) => e);
  assert.ok(error instanceof MetadataStoreError, String(error));
  assert.match(
    error.message,
    new RegExp(
      `^Cannot start: etcd at "http://127.0.0.1:${port}" is not reachable: .*; check "--etcd-endpoints"`,
    ),
  );
  assert.ok(performance.now() - started < 3_000, "bounded by the dial timeout");
});

Deno.test("EtcdMetadataStore: etcd killed -> bounded MetadataStoreErrors; restarted -> works again", async () => {
  const server = await startEtcd();
  const store = await EtcdMetadataStore.open(settingsFor(server));
  try {
    const lease = await store.grantLease(60_000);
    const r1 = await store.put("k", bytes("durable"));
    const events: WatchEvent[] = [];
    const stop = store.watch("", (event) => events.push(event));
    await server.kill();

    const bound = REQUEST_TIMEOUT_MS + 1_500;
    const operations: [string, () => Promise<unknown>][] = [
      ["get", () => store.get("k")],
      ["list", () => store.list("")],
      ["put", () => store.put("k2", bytes("x"))],
      ["delete", () => store.delete("k")],
      ["deletePrefix", () => store.deletePrefix("")],
      ["txn", () => store.txn([{ key: "k", target: "modRevision", equals: r1 }], [])],
      ["grantLease", () => store.grantLease(5_000)],
      ["keepAlive", () => store.keepAlive(lease.id)],
      ["revokeLease", () => store.revokeLease(lease.id)],
    ];
    for (const [name, operation] of operations) {
      const started = performance.now();
      const error = await operation().then(() => null, (e) => e);
      const elapsed = performance.now() - started;
      assert.ok(error instanceof MetadataStoreError, `${name}: ${error}`);
      assert.ok(!(error instanceof LeaseExpiredError), name);
      assert.ok(elapsed < bound, `${name} took ${elapsed} ms`);
      assert.match(error.message, /in etcd at "http:\/\/127\.0\.0\.1:\d+"/, name);
    }

    await server.restart();
    await waitFor("etcd to answer again", async () => {
      try {
        return text((await store.get("k"))!.value) === "durable";
      } catch (error) {
        assert.ok(error instanceof MetadataStoreError, String(error));
        return false;
      }
    });
    await store.keepAlive(lease.id);
    // The watch reconnected and resumes after what it delivered: the next write arrives once.
    const r2 = await store.put("k", bytes("after restart"));
    await waitFor("the event of the write after the restart", () => events.length >= 1);
    assert.deepEqual(
      events.map((e) => (e.type === "put" ? `${e.entry.key}@${e.entry.modRevision}` : "")),
      [`k@${r2}`],
    );
    stop();
    await store.revokeLease(lease.id);
  } finally {
    await store.close();
    await server.stop();
  }
});

Deno.test("EtcdMetadataStore: a watch connection that went silent is reopened", async () => {
  // A middlebox dropped the watch connection's state without a reset: etcd's events never
  // arrive on it, and nothing tells the client. The stream is replaced after it said nothing
  // for watchSilenceMaxMs (15 s by default; 1 s here) and resumes after what it delivered.
  const server = await startEtcd();
  await using proxy = FaultProxy.start(server.endpoint);
  const reader = await EtcdMetadataStore.open(
    settingsFor(server, {
      endpoints: [proxy.endpoint],
      keyPrefix: "/silent/",
      watchSilenceMaxMs: 1_000,
    }),
  );
  const writer = await EtcdMetadataStore.open(settingsFor(server, { keyPrefix: "/silent/" }));
  try {
    const events: WatchEvent[] = [];
    const stop = reader.watch("", (event) => events.push(event));
    const r1 = await writer.put("a", bytes("before"));
    await waitFor("the event before the connection goes silent", () => events.length >= 1);
    proxy.freeze();
    const r2 = await writer.put("b", bytes("while silent"));
    await waitFor(
      "the event written while the old connection was silent",
      () => events.length >= 2,
    );
    assert.deepEqual(
      events.map((e) => (e.type === "put" ? `${e.entry.key}@${e.entry.modRevision}` : "")),
      [`a@${r1}`, `b@${r2}`],
    );
    stop();
  } finally {
    await writer.deletePrefix("");
    await writer.close();
    await reader.close();
    await server.stop();
  }
});

Deno.test("EtcdMetadataStore: an auth token etcd no longer accepts is replaced", async () => {
  // Simple tokens expire after --auth-token-ttl seconds without use.
  const server = await startEtcd({ extraArgs: ["--auth-token-ttl=1"] });
  try {
    await enableEtcdAuth(server.endpoint, "root", "secret");
    const wrong = await EtcdMetadataStore.open(
      settingsFor(server, { username: "root", password: "wrong" }),
    ).then(() => null, (e) => e);
    assert.ok(wrong instanceof MetadataStoreError, String(wrong));
    const store = await EtcdMetadataStore.open(
      settingsFor(server, { username: "root", password: "secret" }),
    );
    try {
      const events: WatchEvent[] = [];
      const stop = store.watch("", (event) => events.push(event));
      const lease = await store.grantLease(60_000);
      await store.put("k", bytes("one"));
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      // A keep-alive (a streaming call) after the token expired still keeps the lease.
      await store.keepAlive(lease.id);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      await store.put("k", bytes("two"));
      assert.equal(text((await store.get("k"))!.value), "two");
      // The watch stream holds its own token: when it breaks it must reopen with a new one.
      await waitFor("both events", () => events.length >= 2);
      stop();
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("EtcdMetadataStore: https with a private CA and a client certificate (mutual TLS)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-etcd-tls-" });
  await makeCerts(dir);
  const server = await startEtcd({
    tls: {
      certFile: `${dir}/server.pem`,
      keyFile: `${dir}/server.key`,
      caFile: `${dir}/ca.pem`,
      clientCertFile: `${dir}/alice.pem`,
      clientKeyFile: `${dir}/alice.key`,
    },
  });
  const endpoint = server.endpoint;
  try {
    const tls = {
      caFile: `${dir}/ca.pem`,
      certFile: `${dir}/alice.pem`,
      keyFile: `${dir}/alice.key`,
    };
    const store = await EtcdMetadataStore.open({ endpoints: [endpoint], tls });
    try {
      const events: WatchEvent[] = [];
      const stop = store.watch("", (event) => events.push(event));
      await store.put("k", bytes("over tls"));
      assert.equal(text((await store.get("k"))!.value), "over tls");
      await waitFor("the watch event", () => events.length >= 1);
      stop();
    } finally {
      await store.close();
    }
    // Without the client certificate, or trusting another CA, etcd is not usable.
    for (
      const bad of [
        { caFile: `${dir}/ca.pem` },
        { caFile: `${dir}/ca2.pem`, certFile: `${dir}/alice.pem`, keyFile: `${dir}/alice.key` },
      ]
    ) {
      const error = await EtcdMetadataStore.open({
        endpoints: [endpoint],
        tls: bad,
        dialTimeoutMs: 2_000,
      }).then(() => null, (e) => e);
      assert.ok(error instanceof MetadataStoreError, `${JSON.stringify(bad)}: ${error}`);
    }
    const unreadable = await EtcdMetadataStore.open({
      endpoints: [endpoint],
      tls: { caFile: `${dir}/missing.pem` },
    }).then(() => null, (e) => e);
    assert.ok(unreadable instanceof MetadataStoreError, String(unreadable));
    assert.match(unreadable.message, /cannot read the etcd TLS CA file/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EtcdMetadataStore: calls after close fail with MetadataStoreError", async () => {
  const server = await startEtcd();
  try {
    const store = await EtcdMetadataStore.open(settingsFor(server));
    await store.close();
    await store.close();
    await assert.rejects(() => store.get("a"), MetadataStoreError);
    await assert.rejects(() => store.put("a", bytes("a")), MetadataStoreError);
    await assert.rejects(() => store.grantLease(1_000), MetadataStoreError);
    assert.throws(() => store.watch("", () => {}), MetadataStoreError);
  } finally {
    await server.stop();
  }
});

// ---- Helpers ------------------------------------------------------------------------------------

function unusedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitFor(what: string, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = performance.now() + POLL_DEADLINE_MS;
  while (!(await condition())) {
    if (performance.now() > deadline) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
