/**
 * Consumer groups across brokers in the distributed deployment (issue 5: "ownership leases for
 * partitions and groups"; issue 3: "group state loads from the MetadataStore when a broker takes
 * the group over"). Two broker processes share a real MinIO and etcd; two confluent-kafka
 * members bootstrap through different brokers and must form ONE group (FindCoordinator gives
 * the same coordinator on both). The coordinator broker is then SIGKILLed: once etcd expires its
 * session lease (and the group's owner key with it), the other broker takes the group over,
 * loads it from the store, and the members resume from their committed offsets — no record
 * lost, none processed twice beyond what was not committed when the broker died.
 *
 * The same with the KIP-848 consumer protocol (librdkafka, `group.protocol=consumer`; issue 15):
 * the new coordinator reads the group's record (members, epochs, assignments) from etcd, so the
 * members carry on with their partitions: none is revoked or lost across the failover.
 */
import assert from "node:assert/strict";
import { type Assignment, GroupAdmin, GroupMember, produce, until } from "./groups_support.ts";
import { startBackends, startDistributedBroker } from "../support/distributed.ts";

const PARTITIONS = 4;
const COUNT_BEFORE_KILL = 2_000;
const COUNT_AFTER_KILL = 2_000;
/** Bound on the group forming: joins, the initial rebalance delay (3 s) and slack. */
const FORM_TIMEOUT_MS = 30_000;
/**
 * Bound on the take-over and catching up: the dead broker's session lease (10 s,
 * lib/cli/node.ts), etcd's whole-second rounding, the members' rediscovery and slack.
 */
const TAKEOVER_TIMEOUT_MS = 45_000;

/** The group's owner key in etcd, read through etcd's JSON gateway (not the broker's code). */
async function groupOwner(endpoint: string, group: string): Promise<number | null> {
  const key = `/kafscale/group-owners/${encodeURIComponent(group)}`;
  const response = await fetch(`${endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: btoa(key) }),
    signal: AbortSignal.timeout(5_000),
  });
  const body = await response.json();
  const kv = body.kvs?.[0];
  return kv ? JSON.parse(atob(kv.value)).brokerId : null;
}

type Protocol = "classic" | "consumer";

for (const protocol of ["classic", "consumer"] as const) {
  Deno.test({
    name: `distributed (${protocol} protocol): members bootstrapping at different brokers form ` +
      "one group; it survives its coordinator's SIGKILL",
    fn: () => failover(protocol),
  });
}

/** The partitions a member holds, as numbers. */
function held(a: Assignment | null, topic: string): number[] {
  return a?.[topic] ?? [];
}

async function failover(protocol: Protocol): Promise<void> {
  await using backends = await startBackends();
  const brokers = [
    await startDistributedBroker(backends, { brokerId: 1 }),
    await startDistributedBroker(backends, { brokerId: 2 }),
  ];
  const members: GroupMember[] = [];
  const topic = `dgroups-${Date.now()}`;
  const group = `dgroup-${Date.now()}`;
  const bootstrapAll = brokers.map((b) => b.bootstrap).join(",");
  await using admin = await GroupAdmin.start(bootstrapAll);
  const context = async () => {
    let described;
    try {
      described = JSON.stringify(await admin.describe(group));
    } catch (err) {
      described = String(err);
    }
    return [
      `group: ${described}`,
      ...members.map((m) => m.describe()),
      ...brokers.map((b, i) =>
        `--- broker ${i + 1} (last lines) ---\n${b.logs().split("\n").slice(-30).join("\n")}`
      ),
    ].join("\n");
  };
  try {
    await admin.request({ op: "create", topic, partitions: PARTITIONS });
    const before = await produce(bootstrapAll, topic, PARTITIONS, 0, COUNT_BEFORE_KILL);
    for (const [i, b] of brokers.entries()) {
      members.push(
        await GroupMember.start("confluent", `member-${i + 1}`, {
          bootstrap: b.bootstrap,
          topic,
          group,
          extra: protocol === "consumer" ? ["--group-protocol", "consumer"] : [],
        }),
      );
    }

    // One group: both members in it, whichever broker they bootstrapped through.
    if (protocol === "classic") {
      await until(async () => {
        const d = await admin.describe(group);
        return d.state === "Stable" && d.members.length === 2 &&
          members.every((m) => d.members.some((x) => x.member_id === m.memberId));
      }, { timeoutMs: FORM_TIMEOUT_MS, what: "one Stable group with both members", context });
      const described = await admin.describe(group);
      assert.deepEqual(
        described.members.map((m) => m.client_id).sort(),
        ["member-1", "member-2"],
      );
    } else {
      // The broker assigns: every partition held by exactly one of the two members.
      await until(() => {
        const all = members.flatMap((m) => held(m.assignment, topic)).sort();
        return members.every((m) => held(m.assignment, topic).length > 0) &&
          JSON.stringify(all) === JSON.stringify([...Array(PARTITIONS).keys()]);
      }, { timeoutMs: FORM_TIMEOUT_MS, what: "both members sharing every partition", context });
    }
    const processed = () => members.flatMap((m) => m.records.map(([p, o]) => `${p}:${o}`));
    await until(async () => {
      const offsets = await admin.offsets(group, topic, PARTITIONS);
      return offsets.end.every((e, p) => e > 0 && offsets.committed[p] === e);
    }, { timeoutMs: FORM_TIMEOUT_MS, what: "the first records committed", context });

    const coordinatorId = await groupOwner(backends.etcd.endpoint, group);
    assert.ok(coordinatorId === 1 || coordinatorId === 2, `owner key: ${coordinatorId}`);
    const survivor = brokers[coordinatorId === 1 ? 1 : 0];
    // What was committed when the coordinator died: anything below may not be processed again.
    const committedAtKill = new Map<number, number>();
    for (const m of members) {
      for (const [p, o] of m.commits) {
        committedAtKill.set(p, Math.max(committedAtKill.get(p) ?? 0, o));
      }
    }
    const heldAtKill = members.map((m) => held(m.assignment, topic));
    const reportsAtKill = members.map((m) => m.assignments.length);
    const killedAt = performance.now();
    await brokers[coordinatorId - 1].kill();

    const after = await produce(
      survivor.bootstrap,
      topic,
      PARTITIONS,
      COUNT_BEFORE_KILL,
      COUNT_AFTER_KILL,
    );
    const expected = new Set([...before, ...after].map(([p, o]) => `${p}:${o}`));
    await until(() => new Set(processed()).size >= expected.size, {
      timeoutMs: TAKEOVER_TIMEOUT_MS,
      what: "the members processing the records produced after the SIGKILL",
      context,
    });
    const resumedMs = performance.now() - killedAt;
    assert.equal(
      await groupOwner(backends.etcd.endpoint, group),
      survivor === brokers[0] ? 1 : 2,
      "the surviving broker owns the group",
    );
    if (protocol === "classic") {
      const d = await admin.describe(group);
      assert.equal(d.members.length, 2, `both members in the group again: ${JSON.stringify(d)}`);
      assert.match(survivor.logs(), /Loaded group/);
    } else {
      // Carried on from the stored record: no partition was taken from a member (a member
      // the new coordinator did not know would have lost all of them and joined again).
      assert.match(survivor.logs(), /Loaded consumer group .*members=2/);
      for (const [i, m] of members.entries()) {
        for (const a of m.assignments.slice(reportsAtKill[i])) {
          const now = held(a, topic);
          assert.ok(
            heldAtKill[i].every((p) => now.includes(p)),
            `${m.name} lost partitions across the failover: held ${heldAtKill[i]}, then ` +
              `${now}\n${await context()}`,
          );
        }
      }
    }

    const seen = new Map<string, number>();
    for (const key of processed()) seen.set(key, (seen.get(key) ?? 0) + 1);
    const lost = [...expected].filter((k) => !seen.has(k));
    assert.deepEqual(lost, [], `records never processed\n${await context()}`);
    const twice = [...seen].filter(([key, n]) => {
      const [p, o] = key.split(":").map(Number);
      return n > 1 && o < (committedAtKill.get(p) ?? 0);
    });
    assert.deepEqual(twice, [], `committed records processed again\n${await context()}`);
    console.log(
      `groups across brokers (${protocol}): coordinator ${coordinatorId} SIGKILLed; the group resumed on ` +
        `the other broker and processed ${after.length} more records within ` +
        `${Math.round(resumedMs)} ms`,
    );
    for (const m of members) await m.stop();
  } finally {
    await Promise.all(members.map((m) => m.kill()));
    for (const b of brokers) await b.cleanup();
  }
}
