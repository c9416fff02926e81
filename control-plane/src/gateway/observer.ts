/** What the gateway reports as it works: Prometheus metrics in production, a recorder in tests. */
import type { AppContext } from '../context.js';

export interface GatewayObserver {
  gate(reason: 'accepted_external' | 'accepted_warming' | 'suppressed' | 'locked' | 'budget' | 'warming_schedule' | 'unavailable', seconds: number): void;
  transaction(outcome: 'accepted' | 'refused' | 'deferred', seconds: number, recipients: number, bytes: number): void;
  auth(outcome: 'ok' | 'invalid' | 'locked_out' | 'unavailable'): void;
  relayError(kind: string): void;
}

/** The observer that feeds the process's Prometheus metrics. */
export function metricsObserver(m: AppContext['metrics']): GatewayObserver {
  return {
    gate(reason, seconds) {
      m.gateDecisions.inc({ reason });
      m.gateDuration.observe(seconds);
    },
    transaction(outcome, seconds, recipients, bytes) {
      m.smtpTransactions.inc({ outcome });
      m.smtpDuration.observe({ outcome }, seconds);
      if (outcome === 'accepted') {
        m.smtpRecipients.inc(recipients);
        m.smtpBytes.inc(bytes);
      }
    },
    auth(outcome) {
      m.smtpAuth.inc({ outcome });
    },
    relayError(stage) {
      m.relayErrors.inc({ stage });
    },
  };
}
