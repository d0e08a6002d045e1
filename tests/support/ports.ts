/**
 * Loopback ports for servers a test starts on a port it names (a child process given
 * `--listen 127.0.0.1:PORT`, a reference Kafka, a Connect REST listener).
 *
 * A port from `listen(port 0)` is an ephemeral one: once closed, any outbound connection of a
 * test running beside it can take it as its local port before the server binds it (CI saw a
 * reference Kafka exit on startup that way). These ports come from below the kernel's ephemeral
 * range instead, which only servers that name their port use, and are checked free.
 */

/** Lowest port handed out. */
const RANGE_LOW = 20_000;
/** Used when the ephemeral range cannot be read (Linux's default start). */
const DEFAULT_EPHEMERAL_LOW = 32_768;
/** Random picks before giving up. */
const ATTEMPTS = 200;

/** The first port of the kernel's ephemeral range (Linux), else its default. */
function ephemeralLow(): number {
  try {
    const text = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
    const low = Number(text.trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

/** Whether a loopback listener can take `port` now. */
export function bindable(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** `count` consecutive free loopback ports outside the ephemeral range; the first one. */
function freeRun(count: number, taken: Set<number>): number {
  const high = ephemeralLow() - count;
  if (high <= RANGE_LOW + 100) {
    // No room below the ephemeral range: fall back to an ephemeral port (racy, but works).
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      listener.close();
      const run = Array.from({ length: count }, (_, i) => port + i);
      if (run.every((p) => !taken.has(p) && (p === port || bindable(p)))) return port;
    }
  } else {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const port = RANGE_LOW + Math.floor(Math.random() * (high - RANGE_LOW));
      const run = Array.from({ length: count }, (_, i) => port + i);
      if (run.every((p) => !taken.has(p) && bindable(p))) return port;
    }
  }
  throw new Error(`No ${count} free consecutive loopback port(s) found`);
}

/** One free loopback port. */
export function freePort(): number {
  return freeRun(1, new Set());
}

/** `count` distinct free loopback ports. */
export function freePorts(count: number): number[] {
  const taken = new Set<number>();
  for (let i = 0; i < count; i++) taken.add(freeRun(1, taken));
  return [...taken];
}

/** A free loopback port whose next port is free too (Kafka's listener and its controller). */
export function freePortPair(): number {
  return freeRun(2, new Set());
}
