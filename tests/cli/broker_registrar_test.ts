/**
 * The broker registration follows the session lease: written at start, written again on the
 * new lease after the old one was lost (so other brokers can find this one again), not written
 * while there is no lease, retried after a store failure, and gone with the lease.
 */
import assert from "node:assert/strict";
import { BrokerRegistrar } from "../../lib/cli/broker_registrar.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";

const CHECK_MS = 1_000;
const REGISTRATION = { brokerId: 7, host: "10.0.0.7", port: 9092, rack: null, startedMs: 1 };

/** Lets the registrar's store calls settle (they resolve in microtasks and macrotasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("BrokerRegistrar: registers, follows a new lease, and is retried after a failure", async () => {
  const clock = new ManualClock();
  const store = new MemoryMetadataStore({ clock });
  const metadata = new ClusterMetadata(store);
  const session = { leaseId: (await metadata.grantLease(10_000)).id };
  const registrar = new BrokerRegistrar({
    metadata,
    session,
    clock,
    logger: silentLogger,
    registration: REGISTRATION,
    checkIntervalMs: CHECK_MS,
  });
  try {
    await registrar.start();
    assert.deepEqual(await metadata.listBrokers(), [REGISTRATION]);
    assert.equal(registrar.registeredLease, session.leaseId);

    // The lease is lost: the registration goes with it and is not written without a lease.
    await metadata.revokeLease(session.leaseId);
    session.leaseId = 0;
    clock.advance(CHECK_MS);
    await settle();
    assert.deepEqual(await metadata.listBrokers(), []);

    // A new lease: registered again on it at the next check.
    session.leaseId = (await metadata.grantLease(10_000)).id;
    clock.advance(CHECK_MS);
    await settle();
    assert.deepEqual(await metadata.listBrokers(), [REGISTRATION]);
    assert.equal(registrar.registeredLease, session.leaseId);

    // A lease the store refuses (already gone): retried on later checks, registered once valid.
    const stale = (await metadata.grantLease(10_000)).id;
    await metadata.revokeLease(stale);
    await metadata.revokeLease(session.leaseId);
    session.leaseId = stale;
    clock.advance(CHECK_MS);
    await settle();
    assert.deepEqual(await metadata.listBrokers(), []);
    session.leaseId = (await metadata.grantLease(10_000)).id;
    clock.advance(CHECK_MS);
    await settle();
    assert.deepEqual(await metadata.listBrokers(), [REGISTRATION]);
  } finally {
    await registrar.stop();
    await store.close();
  }
  assert.equal(clock.pendingTimers(), 0, "stop cancels the check timer");
});

Deno.test("BrokerRegistrar: start fails without a lease", async () => {
  const store = new MemoryMetadataStore();
  const registrar = new BrokerRegistrar({
    metadata: new ClusterMetadata(store),
    session: { leaseId: 0 },
    clock: new ManualClock(),
    logger: silentLogger,
    registration: REGISTRATION,
    checkIntervalMs: CHECK_MS,
  });
  await assert.rejects(registrar.start(), /no session lease/);
  await registrar.stop();
  await store.close();
});
