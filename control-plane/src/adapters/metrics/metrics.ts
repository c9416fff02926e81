/**
 * Every Prometheus metric the control plane and the gateway export, defined in one place (prom-client,
 * one registry per process) so the alert rules and the dashboard have a single list to agree with.
 * Names follow Prometheus conventions: a `kcp_` prefix, base units in the name, `_total` counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({ name: 'kcp_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status code.', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  readonly httpDuration = new Histogram({ name: 'kcp_http_request_duration_seconds', help: 'HTTP request latency.', labelNames: ['method', 'route'], buckets: LATENCY, registers: [this.registry] });

  readonly smtpTransactions = new Counter({ name: 'kcp_smtp_transactions_total', help: 'Messages submitted to the gateway, by outcome: accepted (relayed, 250), refused (5xx), deferred (4xx).', labelNames: ['outcome'], registers: [this.registry] });
  readonly smtpDuration = new Histogram({ name: 'kcp_smtp_transaction_duration_seconds', help: 'Submission latency from MAIL FROM to the reply to the data.', labelNames: ['outcome'], buckets: LATENCY, registers: [this.registry] });
  readonly smtpRecipients = new Counter({ name: 'kcp_smtp_recipients_total', help: 'Recipients in messages the gateway relayed.', registers: [this.registry] });
  readonly smtpBytes = new Counter({ name: 'kcp_smtp_message_bytes_total', help: 'Bytes of messages the gateway relayed.', registers: [this.registry] });
  readonly smtpAuth = new Counter({ name: 'kcp_smtp_auth_total', help: 'SMTP AUTH attempts, by outcome (ok, invalid, locked_out, unavailable).', labelNames: ['outcome'], registers: [this.registry] });
  readonly gateDecisions = new Counter({ name: 'kcp_gate_decisions_total', help: 'Per-recipient gate decisions, by reason (accepted_external, accepted_warming, suppressed, locked, budget, warming_schedule, unavailable).', labelNames: ['reason'], registers: [this.registry] });
  readonly gateDuration = new Histogram({ name: 'kcp_gate_decision_duration_seconds', help: 'Gate decision latency, lookups included.', buckets: LATENCY, registers: [this.registry] });
  readonly relayErrors = new Counter({ name: 'kcp_relay_errors_total', help: 'Relay failures towards kumod nodes, by stage (recipient, data).', labelNames: ['stage'], registers: [this.registry] });
  readonly relayNodeUp = new Gauge({ name: 'kcp_relay_node_up', help: '1 when the gateway considers a node reachable for relaying, 0 while it is passed over.', labelNames: ['node'], registers: [this.registry] });

  readonly eventsIngested = new Counter({ name: 'kcp_events_ingested_total', help: 'Delivery and engagement events received, by source (kumo, returned_mail, engagement) and result (accepted, duplicate, rejected).', labelNames: ['source', 'result'], registers: [this.registry] });
  readonly trustRecomputations = new Counter({ name: 'kcp_trust_recomputations_total', help: 'Tenant trust scores recomputed.', registers: [this.registry] });
  readonly policyPublishes = new Counter({ name: 'kcp_policy_publishes_total', help: 'Policy publishes per node, by result (changed, unchanged, reload_failed).', labelNames: ['result'], registers: [this.registry] });
  readonly dbQueryDuration = new Histogram({ name: 'kcp_db_query_duration_seconds', help: 'PostgreSQL query latency as the process sees it.', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30], registers: [this.registry] });
  readonly dependencyLatency = new Histogram({ name: 'kcp_dependency_latency_seconds', help: 'Round trip of a health probe to a dependency (postgresql, redis), every 15 s.', labelNames: ['dependency'], buckets: LATENCY, registers: [this.registry] });
  readonly dependencyUp = new Gauge({ name: 'kcp_dependency_up', help: '1 when the last probe of a dependency (postgresql, redis) succeeded.', labelNames: ['dependency'], registers: [this.registry] });
  readonly jobRuns = new Counter({ name: 'kcp_worker_job_runs_total', help: 'Worker job runs, by job and outcome (ran, skipped_locked, failed).', labelNames: ['job', 'outcome'], registers: [this.registry] });

  // read from the database when scraped (at most every 15 s): see fleet-gauges.ts
  readonly pendingWork = new Gauge({ name: 'kcp_pending_work', help: 'Work waiting: warming sends due, DKIM keys to re-seal, tenants never scored.', labelNames: ['kind'], registers: [this.registry] });
  readonly eventLag = new Gauge({
    name: 'kcp_event_ingest_lag_seconds',
    help: 'Seconds between now and the newest delivery event this process ingested from each node: grows when a node falls behind posting its logs.',
    labelNames: ['node'],
    registers: [this.registry],
    collect: () => {
      const now = Date.now();
      for (const [node, at] of this.newestEvent) this.eventLag.set({ node }, Math.max(0, (now - at) / 1000));
    },
  });
  private readonly newestEvent = new Map<string, number>();

  noteNewestEvent(nodeId: string, atMs: number): void {
    if (atMs > (this.newestEvent.get(nodeId) ?? 0)) this.newestEvent.set(nodeId, atMs);
  }
  readonly nodePolicyVersion = new Gauge({ name: 'kcp_node_policy_version', help: 'The policy version each node last reported applying.', labelNames: ['node'], registers: [this.registry] });
  readonly nodePolicyLatestVersion = new Gauge({ name: 'kcp_node_policy_latest_version', help: 'The newest published policy version for each node.', labelNames: ['node'], registers: [this.registry] });
  readonly nodeLastSeen = new Gauge({ name: 'kcp_node_last_seen_timestamp_seconds', help: 'When each node last pulled its policy (unix seconds).', labelNames: ['node'], registers: [this.registry] });
  readonly tenantBounceRate = new Gauge({ name: 'kcp_tenant_bounce_rate_ratio', help: 'Hard-bounce rate of each tenant over the trust window (tenants with at least the minimum sample).', labelNames: ['tenant'], registers: [this.registry] });
  readonly tenantBounceThreshold = new Gauge({ name: 'kcp_tenant_bounce_threshold_ratio', help: 'The bounce rate a tenant should stay under (settings trust.bounce_target_pct).', registers: [this.registry] });
  readonly poolBounceRate = new Gauge({ name: 'kcp_pool_bounce_rate_ratio', help: 'Hard-bounce rate of each IP pool over the last 24 h.', labelNames: ['pool'], registers: [this.registry] });
  readonly poolBounceThreshold = new Gauge({ name: 'kcp_pool_bounce_threshold_ratio', help: 'The pool bounce rate that triggers a reputation review (settings placement.bounce_review_pct).', registers: [this.registry] });
  readonly tenantsLocked = new Gauge({ name: 'kcp_tenants_locked', help: 'Tenants whose external sending is locked.', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kcp_process_' });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
