/**
 * `deno task soak --minutes N`: the chaos suite's invariants under a continuous mixed load with
 * periodic faults, for N minutes (issue 17). Two brokers on a real etcd and MinIO, each behind
 * its own fault proxies (tests/chaos/chaos_harness.ts); an idempotent acks=all producer at a
 * steady rate, a consumer group committing, an admin loop. Every `--fault-every-s` seconds
 * (default 45) one fault, in rotation:
 *
 *   etcd cut-off of one broker past its lease (15 s) · etcd SIGKILLed and restarted ·
 *   S3 latency of 2 s per chunk (10 s) · S3 black-hole (20 s) ·
 *   SIGKILL of one broker and a restart · SIGSTOP of one broker past its lease, then SIGCONT
 *
 * At the end: every acknowledged record readable exactly once at its offset, none duplicated,
 * committed offsets never moved backwards; the figures (records, faults, the longest pause in
 * acknowledgements, the brokers' peak RSS) are printed, and the exit code is 1 on a violation.
 * Needs what the test suite installs (scripts/setup.sh, scripts/setup_backends.sh).
 */
import { parseArgs } from "node:util";
import { ChaosCluster, MixedLoad, RATE } from "../tests/chaos/chaos_harness.ts";

const LEASE_MS = 10_000;
const MINUTES_MAX = 24 * 60;
const RSS_SAMPLE_MS = 1_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Fault = { name: string; run: (cluster: ChaosCluster, victim: number) => Promise<void> };

const FAULTS: Fault[] = [
  {
    name: "etcd cut-off past the lease",
    async run(cluster, victim) {
      const proxy = cluster.brokers[victim - 1].etcd;
      proxy.set({ kind: "blackhole" });
      await sleep(LEASE_MS + 5_000);
      proxy.set({ kind: "pass" });
    },
  },
  {
    name: "etcd restart",
    async run(cluster) {
      await cluster.backends.etcd.kill();
      await sleep(3_000);
      await cluster.backends.etcd.restart();
    },
  },
  {
    name: "S3 latency 2 s",
    async run(cluster) {
      for (const b of cluster.brokers) b.s3.set({ kind: "delay", delayMs: 2_000 });
      await sleep(10_000);
      for (const b of cluster.brokers) b.s3.set({ kind: "pass" });
    },
  },
  {
    name: "S3 black-hole 20 s",
    async run(cluster) {
      for (const b of cluster.brokers) b.s3.set({ kind: "blackhole" });
      await sleep(20_000);
      for (const b of cluster.brokers) b.s3.set({ kind: "pass" });
    },
  },
  {
    name: "SIGKILL and restart",
    async run(cluster, victim) {
      await cluster.brokers[victim - 1].process.kill();
      await sleep(LEASE_MS + 2_000);
      await cluster.restart(victim);
    },
  },
  {
    name: "SIGSTOP past the lease, SIGCONT",
    async run(cluster, victim) {
      const pid = cluster.brokers[victim - 1].process.pid;
      Deno.kill(pid, "SIGSTOP");
      await sleep(LEASE_MS + 3_000);
      Deno.kill(pid, "SIGCONT");
    },
  },
];

function rssKiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10" },
      "fault-every-s": { type: "string", default: "45" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log("Usage: deno task soak [--minutes 10] [--fault-every-s 45]");
    return 0;
  }
  const minutes = Number(values.minutes);
  const every = Number(values["fault-every-s"]);
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > MINUTES_MAX) {
    console.error(`soak: "--minutes" must be in (0, ${MINUTES_MAX}]`);
    return 2;
  }
  if (!Number.isFinite(every) || every < 30) {
    console.error(`soak: "--fault-every-s" must be at least 30`);
    return 2;
  }
  const started = performance.now();
  const endAt = started + minutes * 60_000;
  await using cluster = await ChaosCluster.start();
  const load = await MixedLoad.start(cluster, "soak", Math.ceil(RATE * minutes * 60));
  let peakRssKiB = 0;
  const sampler = setInterval(() => {
    for (const b of cluster.brokers) peakRssKiB = Math.max(peakRssKiB, rssKiB(b.process.pid));
  }, RSS_SAMPLE_MS);
  const applied: string[] = [];
  try {
    for (let i = 0; performance.now() + every * 1000 < endAt; i++) {
      await sleep(every * 1000);
      const fault = FAULTS[i % FAULTS.length];
      const victim = 1 + (i % cluster.brokers.length);
      const at = Math.round((performance.now() - started) / 1000);
      console.error(`soak: ${at} s: ${fault.name} (broker ${victim})`);
      await fault.run(cluster, victim);
      applied.push(`${at} s ${fault.name} (broker ${victim})`);
    }
    const figures = await load.finish(cluster, "soak", performance.now());
    clearInterval(sampler);
    console.log(
      JSON.stringify(
        {
          minutes,
          faults: applied.length,
          ...figures,
          peakBrokerRssMiB: Math.round(peakRssKiB / 1024),
          appliedFaults: applied,
        },
        null,
        2,
      ),
    );
    return 0;
  } catch (err) {
    clearInterval(sampler);
    await load.abort();
    console.error(`soak: FAILED: ${err instanceof Error ? err.message : err}`);
    // Each broker's tail: the tail of both logs together showed only broker 2's.
    for (const b of cluster.brokers) {
      const tail = b.process.logs().split("\n").slice(-120).join("\n");
      console.error(`--- broker ${b.id} (last 120 lines) ---\n${tail}`);
    }
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
