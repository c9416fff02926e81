import { describe, expect, it } from 'vitest';
import { submissionNetworkProblem } from './submission-networks.js';

describe('submission networks', () => {
  it.each([
    '203.0.113.0/24', '198.51.0.0/16', '192.0.2.7/32', '127.0.0.1/32', '10.20.0.0/16',
    '2001:db8:1::/48', '2001:db8::5/128', '2001:db8:0:1::/64', '::1/128', '::ffff:192.0.2.1/128', '2001:DB8:a:b:c:d:e:f/128',
  ])('takes %s', (cidr) => {
    expect(submissionNetworkProblem(cidr)).toBeNull();
  });

  it.each<[string, RegExp]>([
    ['0.0.0.0/0', /wider than \/16/],
    ['::/0', /wider than \/48/],
    ['10.0.0.0/8', /wider than \/16/],
    ['128.0.0.0/1', /wider than \/16/],
    ['172.16.0.0/15', /wider than \/16/],
    ['2001:db8::/32', /wider than \/48/],
    ['203.0.113.5/24', /host bits/],
    ['2001:db8::1/64', /host bits/],
    ['203.0.113.0', /CIDR/],
    ['203.0.113.0/33', /CIDR/],
    ['256.0.0.0/32', /CIDR/],
    ['010.0.0.0/32', /CIDR/],
    ['1.2.3/24', /CIDR/],
    ['2001:db8::1::/128', /CIDR/],
    ['2001:db8:1:2:3:4:5:6:7/128', /CIDR/],
    ['12345::/64', /CIDR/],
    ['2001:db8::/129', /CIDR/],
    ['::ffff:300.0.0.1/128', /CIDR/],
    ['2001:db8::1/128x', /CIDR/],
  ])('refuses %s', (cidr, why) => {
    expect(submissionNetworkProblem(cidr)).toMatch(why);
  });
});
