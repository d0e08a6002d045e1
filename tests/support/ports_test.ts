import assert from "node:assert/strict";
import { bindable, freePort, freePortPair, freePorts } from "./ports.ts";

const ephemeralLow = Number(
  Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0],
);

Deno.test("ports: free ports come from below the ephemeral range and can be bound", () => {
  const one = freePort();
  const many = freePorts(5);
  const pair = freePortPair();
  for (const port of [one, ...many, pair, pair + 1]) {
    assert.ok(port < ephemeralLow, `${port} is below ${ephemeralLow}`);
    assert.ok(bindable(port), `${port} is free`);
  }
  assert.equal(new Set(many).size, 5, "distinct");
});
