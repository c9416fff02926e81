/**
 * Warming mail that reads like mail: subjects and bodies from a small corpus with spin syntax
 * ({a|b|c}, nested allowed) and the partner's name, threaded replies with Re: and the references
 * receivers use to build conversations. Every message carries a Message-ID the platform recognises
 * (and can verify with its tag), so engagement with it, and replies that come back through the
 * gateway, are credited to the warming send. Pure: the caller brings the randomness and the tag.
 */
const SUBJECTS = [
  '{Quick|Short|Small} question about {next week|the schedule|Thursday}',
  '{Notes|Thoughts|Follow-up} from {our call|the meeting|yesterday}',
  '{Lunch|Coffee|A quick chat} {next week|on Friday|sometime soon}?',
  '{Draft|Updated|Revised} {proposal|plan|agenda} for {review|your eyes|comments}',
  '{Thanks|Thank you} for {the intro|your help|sending that over}',
  '{Re-scheduling|Moving} {our|the} {sync|catch-up|check-in}',
];
const OPENERS = ['Hi {name},', 'Hello {name},', 'Hey {name},', '{name},'];
const BODIES = [
  '{I hope|Hope} {your week is going well|all is well on your side|you had a good weekend}. {I wanted to|Just wanted to} {check in|follow up} on {the points we discussed|what we talked about|the open items}.',
  '{Could you|Would you be able to} {take a look at|review|glance over} the {notes|draft|plan} when you {get a chance|have a minute}? {No rush|Whenever suits you|Thanks in advance}.',
  '{Thanks again|Many thanks} for {your time|the quick reply|getting back to me}. {It was really helpful|That cleared things up|Much appreciated}.',
  '{Are you free|Would you have time|Does it work for you} {on Tuesday|later this week|early next week} for {a short call|15 minutes|a quick sync}?',
];
const REPLIES = [
  '{Thanks|Thank you}{,| -} {that works for me|sounds good|makes sense}. {Talk soon|Speak soon|Cheers}.',
  '{Good to hear from you|Great, thanks}! {I will take a look|Let me check} and {get back to you|reply properly} {shortly|tomorrow|later today}.',
  '{Yes|Sure}, {happy to|glad to}. {Let me know what time suits you|Send over a time that works}.',
];
const CLOSINGS = ['Best,', 'Thanks,', 'Cheers,', 'Kind regards,', 'All the best,'];

/** Expand {a|b|{c|d}} choices, innermost first. */
export function spin(text: string, rnd: () => number): string {
  let out = text;
  for (let guard = 0; guard < 100; guard++) {
    const m = /\{([^{}]*)\}/.exec(out);
    if (!m) break;
    if (m[1] === 'name') {
      // a variable, not a choice: mark it so the loop moves on
      out = out.slice(0, m.index) + '\u0000name\u0000' + out.slice(m.index + m[0].length);
      continue;
    }
    const options = m[1]!.split('|');
    out = out.slice(0, m.index) + options[Math.floor(rnd() * options.length)]! + out.slice(m.index + m[0].length);
  }
  return out.replace(/\u0000name\u0000/g, '{name}');
}

const pick = <T>(list: readonly T[], rnd: () => number): T => list[Math.floor(rnd() * list.length)]!;

/** A display-name-like first name from an address's local part ("jane.doe" -> "Jane"). */
export function firstNameOf(address: string): string {
  const local = address.split('@')[0] ?? '';
  const word = local.split(/[._+-]/)[0] ?? local;
  return word ? word[0]!.toUpperCase() + word.slice(1).toLowerCase() : 'there';
}

export interface WarmingMessage {
  subject: string;
  text: string;
}

export function composeWarming(input: { from: string; to: string; parentSubject: string | null }, rnd: () => number): WarmingMessage {
  const name = firstNameOf(input.to);
  const me = firstNameOf(input.from);
  const subject = input.parentSubject ? `Re: ${input.parentSubject.replace(/^(re:\s*)+/i, '')}` : spin(pick(SUBJECTS, rnd), rnd);
  const paragraphs = input.parentSubject ? [spin(pick(REPLIES, rnd), rnd)] : [spin(pick(BODIES, rnd), rnd), ...(rnd() < 0.5 ? [spin(pick(BODIES, rnd), rnd)] : [])];
  const text = [spin(pick(OPENERS, rnd), rnd).replace('{name}', name), '', ...paragraphs.flatMap((p) => [p, '']), pick(CLOSINGS, rnd), me, ''].join('\r\n');
  return { subject, text };
}

const TAG = /^<kcpw\.([0-9a-f-]{36})\.([0-9a-f]{16})@([a-z0-9.-]+)>$/;

/** The Message-ID of a warming send: its id and a tag only the platform can make. */
export const warmingMessageId = (sendId: string, tag: string, domain: string): string => `<kcpw.${sendId}.${tag}@${domain}>`;

/** The send id and tag of a warming Message-ID, or null for any other message. */
export function parseWarmingMessageId(value: string): { sendId: string; tag: string } | null {
  const m = TAG.exec(value.trim());
  return m ? { sendId: m[1]!, tag: m[2]! } : null;
}

/** Every warming Message-ID named in In-Reply-To or References, as written there. */
export function referencedWarmingIds(headerValues: readonly string[]): string[] {
  return headerValues.flatMap((v) => v.match(/<[^<>\s]+>/g) ?? []).filter((id) => parseWarmingMessageId(id) !== null);
}
