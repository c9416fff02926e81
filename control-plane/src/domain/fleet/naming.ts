/**
 * Names shared by the control plane and the generated KumoMTA policy. The egress source name of an IP
 * appears in every log record (`egress_source`), which is how events are traced back to IPs.
 */
/** PostgreSQL's inet prints a host address with /32 or /128 in some contexts; the API and kumod want it bare. */
export const bareAddress = (address: string): string => address.replace(/\/(32|128)$/, '');

export function egressSourceName(address: string): string {
  return `ip-${bareAddress(address).toLowerCase().replace(/[.:]/g, '-')}`;
}

export const MAILBOX_PROVIDERS = ['gmail', 'microsoft', 'yahoo', 'other'] as const;
export type MailboxProvider = (typeof MAILBOX_PROVIDERS)[number];

/**
 * KumoMTA's shaping data names the provider of an MX site (`[provider."google"]` in the shaping.toml
 * it ships, matched by MX suffix); these are the ones whose sites take a warm-up class of their own.
 * Any other site is `other`. Sent to the nodes as data, so the node runtime holds no provider table.
 */
export const KUMO_SHAPING_PROVIDER_CLASSES: Readonly<Record<string, Exclude<MailboxProvider, 'other'>>> = {
  google: 'gmail',
  outlook: 'microsoft',
  office365: 'microsoft',
  'office365-dane': 'microsoft',
  yahoo: 'yahoo',
};

const PROVIDER_DOMAINS: Record<Exclude<MailboxProvider, 'other'>, RegExp> = {
  gmail: /^(gmail\.com|googlemail\.com)$/,
  microsoft: /^(outlook|hotmail|live|msn)\.[a-z.]+$|^passport\.com$/,
  yahoo: /^(yahoo|ymail|rocketmail|aol|aim)\.[a-z.]+$/,
};

/** The big mailbox provider a recipient domain belongs to, by well-known consumer domains. */
export function providerOf(recipientDomain: string | null): MailboxProvider {
  const d = (recipientDomain ?? '').toLowerCase();
  for (const p of ['gmail', 'microsoft', 'yahoo'] as const) if (PROVIDER_DOMAINS[p].test(d)) return p;
  return 'other';
}
