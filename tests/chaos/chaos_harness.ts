/**
 * The chaos suite's cluster and load (issue 17).
 *
 * Cluster: a real etcd and MinIO, and two `kafscale serve` processes, each reaching etcd and
 * MinIO through its own FaultProxy, so one broker can be cut off, slowed or partitioned from
 * either store while the other is not.
 *
 * Load: an idempotent acks=all producer (confluent-kafka) at a steady rate, a consumer group of
 * two members that commit, and an admin loop (DescribeGroups and the group's committed offsets
 * through confluent-kafka's admin client). `finish()` stops the load and checks Kafka's promise:
 * every acknowledged record is readable exactly once at the offset it was acknowledged at, no
 * record is duplicated, and the group's committed offsets never moved backwards.
 */
import assert from "node:assert/strict";
import type { BrokerProcess } from "../e2e/broker_process.ts";
import { verifyAcked } from "../e2e/client_runner.ts";
import { GroupAdmin, GroupMember } from "../e2e/groups_support.ts";
import {
  AckedProducer,
  type Backends,
  startBackends,
  startDistributedBroker,
} from "../support/distributed.ts";
import { FaultProxy } from "./fault_proxy.ts";

export const PARTITIONS = 4;
/** The producer's pace: enough to be under load through every fault, small enough for 2 cores. */
export const RATE = 400;
/** Admin calls and committed-offset checks, this often. */
const ADMIN_INTERVAL_MS = 500;

export interface ChaosBroker {
  id: number;
  process: BrokerProcess;
  etcd: FaultProxy;
  s3: FaultProxy;
}

export class ChaosCluster implements AsyncDisposable {
  readonly backends: Backends;
  readonly brokers: ChaosBroker[];

  private constructor(backends: Backends, brokers: ChaosBroker[]) {
    this.backends = backends;
    this.brokers = brokers;
  }

  static async start(count = 2): Promise<ChaosCluster> {
    const backends = await startBackends();
    const brokers: ChaosBroker[] = [];
    try {
      for (let id = 1; id <= count; id++) {
        const etcd = FaultProxy.start(backends.etcd.endpoint);
        const s3 = FaultProxy.start(backends.s3.endpoint);
        brokers.push({ id, etcd, s3, process: await startBehind(backends, id, etcd, s3) });
      }
    } catch (err) {
      for (const b of brokers) await b.process.cleanup();
      await backends.stop();
      throw err;
    }
    return new ChaosCluster(backends, brokers);
  }

  /** Every broker's Kafka address, for clients' bootstrap lists. */
  bootstrap(): string {
    return this.brokers.map((b) => b.process.bootstrap).join(",");
  }

  /**
   * Starts broker `id` again behind its proxies (after a kill) on the same Kafka port, as a
   * service manager would, so clients that knew it find it again.
   */
  async restart(id: number): Promise<void> {
    const b = this.brokers[id - 1];
    const port = b.process.port;
    await b.process.cleanup();
    b.process = await startBehind(this.backends, id, b.etcd, b.s3, [
      "--listen",
      `127.0.0.1:${port}`,
    ]);
  }

  logs(): string {
    return this.brokers.map((b) => `--- broker ${b.id} ---\n${b.process.logs()}`).join("\n");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const b of this.brokers) {
      await b.process.cleanup();
      await b.etcd.close();
      await b.s3.close();
    }
    await this.backends.stop();
  }
}

function startBehind(
  backends: Backends,
  id: number,
  etcd: FaultProxy,
  s3: FaultProxy,
  args: string[] = [],
): Promise<BrokerProcess> {
  return startDistributedBroker(backends, {
    brokerId: id,
    args,
    env: { KAFSCALE_ETCD_ENDPOINTS: etcd.endpoint, KAFSCALE_S3_ENDPOINT: s3.endpoint },
  });
}

/** One scenario's figures (the README's reliability table). */
export interface ChaosFigures {
  scenario: string;
  acked: number;
  lost: number;
  duplicated: number;
  /**
   * Time to recover as the producer saw it: the longest pause between two acknowledgements of
   * one partition (the producer sends RATE records a second throughout).
   */
  recoverMs: number;
  consumed: number;
  offsetRegressions: number;
  adminCalls: number;
}

export class MixedLoad {
  readonly topic: string;
  readonly group: string;
  readonly producer: AckedProducer;
  readonly members: GroupMember[];
  #admin: GroupAdmin;
  readonly #bootstrap: string;
  readonly #adminLoop: Promise<void>;
  #stopping = false;
  #lastCommitted: number[] = [];
  offsetRegressions: string[] = [];
  adminCalls = 0;
  adminErrors = 0;
  lastAdminError = "";

  private constructor(
    topic: string,
    group: string,
    producer: AckedProducer,
    members: GroupMember[],
    admin: GroupAdmin,
    bootstrap: string,
  ) {
    this.topic = topic;
    this.group = group;
    this.producer = producer;
    this.members = members;
    this.#admin = admin;
    this.#bootstrap = bootstrap;
    this.#adminLoop = this.#runAdmin();
  }

  /** Starts producing `count` records at RATE/s, two group members and the admin loop. */
  static async start(cluster: ChaosCluster, name: string, count: number): Promise<MixedLoad> {
    const topic = `chaos-${name}-${Date.now()}`;
    const group = `${topic}-group`;
    const bootstrap = cluster.bootstrap();
    const producer = await AckedProducer.start({
      bootstrap,
      topic,
      partitions: PARTITIONS,
      count,
      rate: RATE,
      deadlineS: count / RATE + 120,
      settings: ["enable.idempotence=true"],
    });
    await producer.until(() => producer.acks.length > 0, {
      timeoutMs: 60_000,
      what: "a first ack",
    });
    const members = [];
    for (const n of ["c1", "c2"]) {
      members.push(
        await GroupMember.start("confluent", `${name}-${n}`, { bootstrap, topic, group }),
      );
    }
    const admin = await GroupAdmin.start(bootstrap);
    return new MixedLoad(topic, group, producer, members, admin, bootstrap);
  }

  /** The first acknowledgement after `sinceMs` (performance.now()), waiting up to `timeoutMs`. */
  async ackAfter(sinceMs: number, timeoutMs: number): Promise<number> {
    // Acks are appended as they arrive, so the newest is the last: O(1) per report (a scan of
    // every ack per report would starve this process, and the fault proxies in it, on a soak).
    const acks = this.producer.acks;
    await this.producer.until(() => acks.length > 0 && acks[acks.length - 1].atMs > sinceMs, {
      timeoutMs,
      what: "an acknowledgement after the fault",
    });
    let i = acks.length - 1;
    while (i > 0 && acks[i - 1].atMs > sinceMs) i--;
    return acks[i].atMs;
  }

  async #runAdmin(): Promise<void> {
    while (!this.#stopping) {
      try {
        const { committed } = await this.#admin.offsets(this.group, this.topic, PARTITIONS);
        committed.forEach((o, p) => {
          const before = this.#lastCommitted[p] ?? -1;
          if (o >= 0 && o < before) {
            this.offsetRegressions.push(`partition ${p}: ${before} -> ${o}`);
          }
          if (o >= 0) this.#lastCommitted[p] = o;
        });
        await this.#admin.describe(this.group);
        this.adminCalls++;
      } catch (err) {
        this.adminErrors++; // expected while a store or broker is down
        this.lastAdminError = String(err);
        // The admin helper (librdkafka) may have given up; a fresh one reconnects.
        await this.#admin[Symbol.asyncDispose]().catch(() => {});
        this.#admin = await GroupAdmin.start(this.#bootstrap);
      }
      await new Promise((r) => setTimeout(r, ADMIN_INTERVAL_MS));
    }
  }

  /**
   * Lets the producer finish, waits for the group to commit up to the end, stops everything,
   * and checks every acknowledged record. Returns the scenario's figures.
   */
  async finish(
    cluster: ChaosCluster,
    scenario: string,
    faultEndMs: number,
  ): Promise<ChaosFigures> {
    await this.ackAfter(faultEndMs, 90_000);
    const code = await this.producer.exited;
    assert.equal(code, 0, `the producer failed.\n${this.producer.describe()}\n${cluster.logs()}`);
    const end = new Map<number, number>();
    for (const a of this.producer.acks) {
      end.set(a.partition, Math.max(end.get(a.partition) ?? 0, a.offset + 1));
    }
    // The group catches up: its committed offsets reach every partition's last acked offset.
    const deadline = performance.now() + 90_000;
    for (;;) {
      const caughtUp = [...end].every(([p, o]) => (this.#lastCommitted[p] ?? -1) >= o);
      if (caughtUp) break;
      if (performance.now() > deadline) {
        throw new Error(
          `the group did not commit up to the end: ${JSON.stringify(this.#lastCommitted)} vs ` +
            `${JSON.stringify([...end])} (admin: ${this.adminCalls} calls, ${this.adminErrors} ` +
            `errors, last: ${this.lastAdminError})\n${
              this.members.map((m) => m.describe()).join("\n")
            }`,
        );
      }
      await new Promise((r) => setTimeout(r, ADMIN_INTERVAL_MS));
    }
    this.#stopping = true;
    await this.#adminLoop;
    for (const m of this.members) await m.stop().catch(() => m.kill());
    await this.#admin[Symbol.asyncDispose]();
    const acks = this.producer.acks.map((a) => `${a.partition} ${a.offset} ${a.i}`);
    const { summary, describe } = await verifyAcked(
      cluster.bootstrap(),
      this.topic,
      PARTITIONS,
      acks,
    );
    assert.ok(summary, `the verifier printed no summary.\n${describe}`);
    const figures: ChaosFigures = {
      scenario,
      acked: acks.length,
      lost: Number(summary.lost),
      duplicated: Number(summary.duplicates),
      recoverMs: Math.round(longestPausePerPartition(this.producer.acks)),
      consumed: this.members.reduce((n, m) => n + m.records.length, 0),
      offsetRegressions: this.offsetRegressions.length,
      adminCalls: this.adminCalls,
    };
    console.log(`chaos: ${JSON.stringify(figures)}`);
    assert.equal(figures.lost, 0, `acknowledged records were lost.\n${describe}`);
    assert.equal(figures.duplicated, 0, `records were duplicated.\n${describe}`);
    assert.equal(summary.ok, true, describe);
    assert.deepEqual(this.offsetRegressions, [], "committed offsets moved backwards");
    assert.ok(this.adminCalls > 0, "no admin call succeeded");
    return figures;
  }

  /** Kills everything (a failed scenario). */
  async abort(): Promise<void> {
    this.#stopping = true;
    await this.producer.kill();
    for (const m of this.members) await m.kill();
    await this.#admin[Symbol.asyncDispose]().catch(() => {});
    await this.#adminLoop;
  }
}

/**
 * The longest gap between consecutive acknowledgements of one partition (ms): a partition whose
 * owner is cut off stalls while the others go on.
 */
function longestPausePerPartition(acks: { partition: number; atMs: number }[]): number {
  const byPartition = new Map<number, number[]>();
  for (const a of acks) {
    let times = byPartition.get(a.partition);
    if (!times) byPartition.set(a.partition, times = []);
    times.push(a.atMs);
  }
  let longest = 0;
  for (const times of byPartition.values()) {
    times.sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i] - times[i - 1]);
  }
  return longest;
}
