import { describe, expect, it } from 'vitest';
import { forwardConfirmed, luaString, renderCloudInit, renderNodeSettings } from './cloud-init.js';

const enrolment = {
  control_plane_url: 'https://cp.example.net:8443',
  node_id: '5f0c6a52-9a43-4c59-8f61-0a2a8d6f2b10',
  node_token: 'node_0123456789abcdefghijABCDEFGHIJ0123456789',
  policy_public_key_hex: 'ab'.repeat(32),
};

describe('cloud-init user data', () => {
  it('renders node_settings.lua as sorted data (golden)', () => {
    expect(renderCloudInit({ ...enrolment, extra: { relay_listen: '0.0.0.0:2525', poll_interval_seconds: 5 } })).toBe(
      [
        '#cloud-config',
        'write_files:',
        '  - path: /opt/kumomta/etc/policy/cp/node_settings.lua',
        "    owner: 'root:root'",
        "    permissions: '0600'",
        '    content: |',
        '      -- written by cloud-init at provisioning (kumo control plane)',
        '      return {',
        "        control_plane_url = 'https://cp.example.net:8443',",
        "        node_id = '5f0c6a52-9a43-4c59-8f61-0a2a8d6f2b10',",
        "        node_token = 'node_0123456789abcdefghijABCDEFGHIJ0123456789',",
        `        policy_public_key_hex = '${'ab'.repeat(32)}',`,
        '        poll_interval_seconds = 5,',
        "        relay_listen = '0.0.0.0:2525',",
        '      }',
        '',
      ].join('\n'),
    );
  });

  it('escapes Lua strings and refuses names that are not Lua names', () => {
    expect(luaString("a'b\\c\nd\u0001")).toBe("'a\\'b\\\\c\\nd\\001'");
    expect(() => renderNodeSettings({ ...enrolment, extra: { 'bad-name': 'x' } })).toThrow(/not a Lua name/);
    // the four enrolment values win over extras of the same name
    expect(renderNodeSettings({ ...enrolment, extra: { node_id: 'other' } })).toContain(`node_id = '${enrolment.node_id}'`);
  });

  it('forward-confirms reverse DNS only when the PTR is ours and resolves back', () => {
    expect(forwardConfirmed('203.0.113.10', 'ip-203-0-113-10.mta.example', 'ip-203-0-113-10.mta.example.', ['203.0.113.10'])).toBe(true);
    expect(forwardConfirmed('203.0.113.10', 'ip-203-0-113-10.mta.example', 'ip-203-0-113-10.mta.example', ['198.51.100.1'])).toBe(false);
    expect(forwardConfirmed('203.0.113.10', 'ip-203-0-113-10.mta.example', 'static.example.hetzner', ['203.0.113.10'])).toBe(false);
    expect(forwardConfirmed('203.0.113.10', null, null, ['203.0.113.10'])).toBe(false);
  });
});
