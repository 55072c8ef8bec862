// Prometheus metrics (prom-client): requests by operation and status, latency, bytes, drive
// states and heal queue length. Drive and heal gauges are read from storage at scrape time.
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';
import type { ObjectStore } from '../storage';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'kiln_requests_total', help: 'S3 requests by operation and HTTP status', labelNames: ['op', 'status'], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'kiln_request_duration_seconds', help: 'S3 request latency until the last byte is sent', labelNames: ['op'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry],
  });
  readonly bytesIn = new Counter({ name: 'kiln_bytes_received_total', help: 'payload bytes received', registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'kiln_bytes_sent_total', help: 'payload bytes sent', registers: [this.registry] });

  /** `storeGauges` false in an HTTP worker process: drives and heal are the index owner's to report. */
  constructor(store: ObjectStore, storeGauges = true) {
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
