/** StreamMetrics samples: latest per sender on /metrics, expiry, and the named limits. */
import assert from "node:assert/strict";
import { Metrics } from "../../lib/util/metrics.ts";
import {
  MetricsSamples,
  SAMPLE_TTL_MS,
  SAMPLE_VALUES_MAX,
  SENDERS_MAX,
} from "../../lib/control/metrics_samples.ts";
import { ControlError, GRPC_STATUS } from "../../lib/control/control_error.ts";

Deno.test("MetricsSamples: the latest sample per sender is rendered, silent senders expire", () => {
  let now = 1_000_000;
  const samples = new MetricsSamples(() => now);
  const metrics = new Metrics();
  metrics.addCollector(() => samples.collectInto(metrics));
  samples.record({ brokerId: "a", timestampMs: 5, gauges: { cpu: 0.1 }, counters: {} });
  samples.record({ brokerId: "a", timestampMs: 6, gauges: { cpu: 0.2 }, counters: { n: 3 } });
  samples.record({ brokerId: "b", timestampMs: 0, gauges: { 'odd"name': 1 }, counters: {} });
  let text = metrics.render();
  assert.match(text, /^kafscale_remote_gauge\{broker="a",name="cpu"\} 0\.2$/m);
  assert.match(text, /^kafscale_remote_counter\{broker="a",name="n"\} 3$/m);
  assert.match(text, /^kafscale_remote_samples_received\{broker="a"\} 2$/m);
  assert.match(text, /^kafscale_remote_sample_timestamp_ms\{broker="b"\} 1000000$/m);
  assert.match(text, /^kafscale_remote_gauge\{broker="b",name="odd_name"\} 1$/m);
  now += SAMPLE_TTL_MS + 1;
  samples.record({ brokerId: "c", timestampMs: 7, gauges: {}, counters: {} });
  text = metrics.render();
  assert.doesNotMatch(text, /broker="a"/);
  assert.match(text, /kafscale_remote_samples_received\{broker="c"\} 1/);
  assert.deepEqual(samples.senders().map((s) => s.brokerId), ["c"]);
});

Deno.test("MetricsSamples: limits are refused with a status that names them", () => {
  const samples = new MetricsSamples(() => 0);
  const refused = (fn: () => void, code: number, pattern: RegExp) =>
    assert.throws(
      fn,
      (err) => err instanceof ControlError && err.code === code && pattern.test(err.message),
    );
  refused(
    () => samples.record({ brokerId: "", timestampMs: 0, gauges: {}, counters: {} }),
    GRPC_STATUS.INVALID_ARGUMENT,
    /broker_id/,
  );
  const many = Object.fromEntries(
    Array.from({ length: SAMPLE_VALUES_MAX + 1 }, (_, i) => [`g${i}`, i]),
  );
  refused(
    () => samples.record({ brokerId: "x", timestampMs: 0, gauges: many, counters: {} }),
    GRPC_STATUS.INVALID_ARGUMENT,
    /the limit is/,
  );
  for (let i = 0; i < SENDERS_MAX; i++) {
    samples.record({ brokerId: `s${i}`, timestampMs: 1, gauges: {}, counters: {} });
  }
  refused(
    () => samples.record({ brokerId: "one-too-many", timestampMs: 1, gauges: {}, counters: {} }),
    GRPC_STATUS.RESOURCE_EXHAUSTED,
    /senders/,
  );
});
