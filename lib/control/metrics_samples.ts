/**
 * What the broker does with StreamMetrics samples: it keeps the latest sample of each sender
 * (keyed by the sample's `broker_id`, e.g. a sidecar, an operator or another broker) and serves
 * them on `/metrics`, one series per value with the sender in a `broker` label:
 *
 *   kafscale_remote_gauge{broker="7",name="cpu_load"} 0.42
 *   kafscale_remote_counter{broker="7",name="bytes_out"} 123456
 *   kafscale_remote_sample_timestamp_ms{broker="7"} 1764763200000
 *   kafscale_remote_samples_received{broker="7"} 12
 *
 * so one Prometheus scrape of any broker shows what was streamed to it. A sender that stays
 * silent for `SAMPLE_TTL_MS` disappears from the view. Limits are named below; a sample over
 * them is refused (INVALID_ARGUMENT / RESOURCE_EXHAUSTED) rather than truncated.
 */
import type { Metrics } from "../util/metrics.ts";
import type { MetricsSample } from "./control_proto.ts";
import { ControlError, GRPC_STATUS } from "./control_error.ts";

/** Senders held at once. */
export const SENDERS_MAX = 256;
/** Values (gauges plus counters) in one sample. */
export const SAMPLE_VALUES_MAX = 1_000;
/** Longest sender id or value name. */
export const NAME_CHARS_MAX = 200;
/** A sender silent this long drops out of the view. */
export const SAMPLE_TTL_MS = 5 * 60_000;

export const REMOTE_METRICS = {
  gauge: "kafscale_remote_gauge",
  counter: "kafscale_remote_counter",
  timestamp: "kafscale_remote_sample_timestamp_ms",
  received: "kafscale_remote_samples_received",
} as const;

export interface SenderView {
  brokerId: string;
  timestampMs: number;
  receivedAtMs: number;
  samples: number;
  gauges: Record<string, number>;
  counters: Record<string, number>;
}

export class MetricsSamples {
  readonly #senders = new Map<string, SenderView>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Checks a sample against the limits; throws ControlError naming the problem. */
  validate(sample: MetricsSample): void {
    if (sample.brokerId === "") {
      throw new ControlError(GRPC_STATUS.INVALID_ARGUMENT, 'Sample has no "broker_id"');
    }
    const names = [sample.brokerId, ...Object.keys(sample.gauges), ...Object.keys(sample.counters)];
    const long = names.find((n) => n.length > NAME_CHARS_MAX);
    if (long !== undefined) {
      throw new ControlError(
        GRPC_STATUS.INVALID_ARGUMENT,
        `Sample name "${long.slice(0, 40)}..." is longer than ${NAME_CHARS_MAX} characters`,
      );
    }
    if (names.length - 1 > SAMPLE_VALUES_MAX) {
      throw new ControlError(
        GRPC_STATUS.INVALID_ARGUMENT,
        `Sample from "${sample.brokerId}" has ${names.length - 1} values; the limit is ` +
          SAMPLE_VALUES_MAX,
      );
    }
  }

  /** Records a sample (validated first) as its sender's latest. */
  record(sample: MetricsSample): void {
    this.validate(sample);
    this.#expire();
    const previous = this.#senders.get(sample.brokerId);
    if (!previous && this.#senders.size >= SENDERS_MAX) {
      throw new ControlError(
        GRPC_STATUS.RESOURCE_EXHAUSTED,
        `Samples from ${SENDERS_MAX} senders are held already; "${sample.brokerId}" is refused`,
      );
    }
    this.#senders.set(sample.brokerId, {
      brokerId: sample.brokerId,
      timestampMs: sample.timestampMs === 0 ? this.#now() : sample.timestampMs,
      receivedAtMs: this.#now(),
      samples: (previous?.samples ?? 0) + 1,
      gauges: { ...sample.gauges },
      counters: { ...sample.counters },
    });
  }

  /** The latest sample of every sender heard from within `SAMPLE_TTL_MS`. */
  senders(): SenderView[] {
    this.#expire();
    return [...this.#senders.values()].sort((a, b) => a.brokerId.localeCompare(b.brokerId));
  }

  /** Copies the view into `metrics` before each render (series of silent senders are dropped). */
  collectInto(metrics: Metrics): void {
    for (const name of Object.values(REMOTE_METRICS)) metrics.reset(name);
    for (const s of this.senders()) {
      const broker = { broker: s.brokerId };
      for (const [name, value] of Object.entries(s.gauges)) {
        metrics.set(REMOTE_METRICS.gauge, "Gauges streamed by StreamMetrics", value, {
          ...broker,
          name,
        });
      }
      for (const [name, value] of Object.entries(s.counters)) {
        metrics.setCounter(REMOTE_METRICS.counter, "Counters streamed by StreamMetrics", value, {
          ...broker,
          name,
        });
      }
      metrics.set(
        REMOTE_METRICS.timestamp,
        "Timestamp of the latest StreamMetrics sample per sender",
        s.timestampMs,
        broker,
      );
      metrics.setCounter(
        REMOTE_METRICS.received,
        "StreamMetrics samples received per sender",
        s.samples,
        broker,
      );
    }
  }

  #expire(): void {
    const oldest = this.#now() - SAMPLE_TTL_MS;
    for (const [id, s] of this.#senders) if (s.receivedAtMs < oldest) this.#senders.delete(id);
  }
}
