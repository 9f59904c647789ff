/** The gateway's Prometheus metrics (served at /metrics): requests, latencies, submits, retries. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'evpay_gateway_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'evpay_gateway_http_request_duration_seconds',
    help: 'HTTP request latency by route and method',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly submitLatency = new Histogram({
    name: 'evpay_gateway_submit_duration_seconds',
    help: 'Endorse, order and commit of one transaction, by transaction name and outcome',
    labelNames: ['tx', 'outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
    registers: [this.registry],
  });
  readonly evaluateLatency = new Histogram({
    name: 'evpay_gateway_evaluate_duration_seconds',
    help: 'Evaluation of one query, by transaction name',
    labelNames: ['tx'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly mvccConflicts = new Counter({
    name: 'evpay_gateway_mvcc_conflicts_total',
    help: 'Transactions invalidated by a read conflict (each one is endorsed again, up to the limit)',
    labelNames: ['tx'] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'evpay_gateway_retries_total',
    help: 'Retries by kind: mvcc (endorsed again), resolve (an unknown outcome resolved by transaction id), replay (an Idempotency-Key answered from the store), stale-endorser (a refusal from a peer a block behind, endorsed again)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly batchCalls = new Histogram({
    name: 'evpay_gateway_session_batch_calls',
    help: 'Session calls sent together in one SessionBatch transaction (a call sent alone is not counted)',
    buckets: [2, 3, 5, 8, 12, 20, 30, 50],
    registers: [this.registry],
  });

  readonly driverSignaturesRefused = new Counter({
    name: 'evpay_gateway_driver_signatures_refused_total',
    help: "Requests refused by the gateway because a driver's SM2 signature did not verify (before any endorsement)",
    registers: [this.registry],
  });

  readonly ocppRefusedAfterAnswer = new Counter({
    name: 'evpay_gateway_ocpp_refused_after_answer_total',
    help: 'OCPP readings (START, PROGRESS, STOP) the ledger refused after the charger was answered: each needs an operator (alert on it)',
    labelNames: ['kind', 'code'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'evpay_gateway_' });
  }
}
