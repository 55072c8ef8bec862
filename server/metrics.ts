// Prometheus metrics (prom-client): requests by operation and status, latency, bytes, drive
// states and heal queue length. Drive and heal gauges are read from storage at scrape time.
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import type { ObjectStore } from '../storage';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Request latency by operation, in prom-client's histogram shape (text and the JSON the worker
 * processes' figures are summed from). Its own, because prom-client's observe() hashes the
 * label object on every call: with the request counters, 2-3 % of a 4 KiB GET's CPU.
 */
class LatencyHistogram {
  readonly name = 'kiln_request_duration_seconds';
  readonly help = 'S3 request latency until the last byte is sent';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly byOp = new Map<string, { counts: Float64Array; sum: number; count: number }>();

  observe(op: string, secs: number): void {
    let h = this.byOp.get(op);
    if (!h) this.byOp.set(op, (h = { counts: new Float64Array(LATENCY_BUCKETS.length), sum: 0, count: 0 }));
    let i = 0;
    while (i < LATENCY_BUCKETS.length && secs > LATENCY_BUCKETS[i]) i++;
    if (i < LATENCY_BUCKETS.length) h.counts[i]++;
    h.sum += secs;
    h.count++;
  }

  async get(): Promise<object> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const [op, h] of this.byOp) {
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => values.push({ labels: { le, op }, value: (acc += h.counts[i]), metricName: `${this.name}_bucket` }));
      values.push({ labels: { le: '+Inf', op }, value: h.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { op }, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { op }, value: h.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class Metrics {
  readonly registry = new Registry();
  // Counted in plain maps per request and handed to prom-client at scrape time (collect).
  private readonly counts = new Map<string, { op: string; status: string; n: number }>();
  private bytesInTotal = 0;
  private bytesOutTotal = 0;
  private readonly latency = new LatencyHistogram();
  readonly requests: Counter;

  /** One request, as finished: operation, HTTP status, seconds, payload bytes in and out. */
  record(op: string, status: number, secs: number, bytesIn: number, bytesOut: number): void {
    const k = `${op} ${status}`;
    const c = this.counts.get(k);
    if (c) c.n++;
    else this.counts.set(k, { op, status: String(status), n: 1 });
    this.latency.observe(op, secs);
    this.bytesInTotal += bytesIn;
    this.bytesOutTotal += bytesOut;
  }

  /** `storeGauges` false in an HTTP worker process: drives and heal are the index owner's to report. */
  constructor(store: ObjectStore, storeGauges = true) {
    const self = this;
    this.requests = new Counter({
      name: 'kiln_requests_total', help: 'S3 requests by operation and HTTP status', labelNames: ['op', 'status'], registers: [this.registry],
      collect() {
        this.reset();
        for (const c of self.counts.values()) this.inc({ op: c.op, status: c.status }, c.n);
      },
    });
    this.registry.registerMetric(this.latency as unknown as Counter);
    new Counter({ name: 'kiln_bytes_received_total', help: 'payload bytes received', registers: [this.registry], collect() { this.reset(); this.inc(self.bytesInTotal); } });
    new Counter({ name: 'kiln_bytes_sent_total', help: 'payload bytes sent', registers: [this.registry], collect() { this.reset(); this.inc(self.bytesOutTotal); } });
    collectDefaultMetrics({ register: this.registry, prefix: 'kiln_' });
    if (!storeGauges) return;
    new Gauge({
      name: 'kiln_drive_online', help: '1 when a drive is online, 0 when offline or faulty', labelNames: ['drive', 'state'], registers: [this.registry],
      collect() {
        this.reset();
        for (const d of store.drives) this.set({ drive: d.root, state: d.state }, d.online ? 1 : 0);
      },
    });
    new Gauge({
      name: 'kiln_heal_queue_length', help: 'parts waiting to be healed', registers: [this.registry],
      collect() { this.set(store.healer.length); },
    });
    new Gauge({
      name: 'kiln_healed_parts_total', help: 'parts healed since start', registers: [this.registry],
      collect() { this.set(store.healer.stats.healed); },
    });
  }
}
