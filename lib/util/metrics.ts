/**
 * A tiny Prometheus-style metrics registry: counters and gauges with labels,
 * rendered in the text exposition format. Injected, never global.
 */

type Labels = Record<string, string | number>;

interface Series {
  help: string;
  type: "counter" | "gauge";
  values: Map<string, number>;
}

/** Named limit: distinct label sets per metric, so a bad label cannot grow memory without bound. */
const MAX_SERIES_PER_METRIC = 10_000;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  return Object.keys(labels).sort().map((k) =>
    `${k}="${String(labels[k]).replace(/["\\\n]/g, "_")}"`
  ).join(",");
}

export class Metrics {
  #series = new Map<string, Series>();
  #collectors: (() => void)[] = [];

  /** Runs `collect` before every render, to copy gauges from their owners. */
  addCollector(collect: () => void): void {
    this.#collectors.push(collect);
  }

  #get(name: string, type: Series["type"], help: string): Series {
    let s = this.#series.get(name);
    if (!s) {
      s = { help, type, values: new Map() };
      this.#series.set(name, s);
    }
    return s;
  }

  #bump(s: Series, key: string, fn: (old: number) => number): void {
    if (!s.values.has(key) && s.values.size >= MAX_SERIES_PER_METRIC) return;
    s.values.set(key, fn(s.values.get(key) ?? 0));
  }

  inc(name: string, help: string, labels?: Labels, by = 1): void {
    this.#bump(this.#get(name, "counter", help), labelKey(labels), (v) => v + by);
  }

  set(name: string, help: string, value: number, labels?: Labels): void {
    this.#bump(this.#get(name, "gauge", help), labelKey(labels), () => value);
  }

  /** Sets a counter to a total kept by its owner (copied by a collector). */
  setCounter(name: string, help: string, value: number, labels?: Labels): void {
    this.#bump(this.#get(name, "counter", help), labelKey(labels), () => value);
  }

  /** Drops every series of `name`, for a collector that rebuilds them on each render. */
  reset(name: string): void {
    this.#series.get(name)?.values.clear();
  }

  value(name: string, labels?: Labels): number {
    return this.#series.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    for (const collect of this.#collectors) collect();
    const lines: string[] = [];
    for (const [name, s] of this.#series) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      for (const [key, v] of s.values) lines.push(key ? `${name}{${key}} ${v}` : `${name} ${v}`);
    }
    return lines.join("\n") + "\n";
  }
}
