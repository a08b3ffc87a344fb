import { createHmac } from 'node:crypto';
import { newWebhookSecret, outcomeOf, signatureOf, verifySignature } from './signature';

describe('webhook signature', () => {
  const secret = 'whsec_0123456789abcdef';
  const body = '{"event_id":"e1"}';

  it('is t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>', () => {
    const mac = createHmac('sha256', secret).update(`1767254400.${body}`).digest('hex');
    expect(signatureOf(secret, 1767254400, body)).toBe(`t=1767254400,v1=${mac}`);
  });

  it('verifies with the secret, not with another secret, another body or a stale time', () => {
    const header = signatureOf(secret, 1767254400, body);
    expect(verifySignature(secret, header, body)).toBe(true);
    expect(verifySignature(`${secret}x`, header, body)).toBe(false);
    expect(verifySignature(secret, header, `${body} `)).toBe(false);
    expect(verifySignature(secret, header, body, { nowSeconds: 1767254400 + 301 })).toBe(false);
    expect(verifySignature(secret, header, body, { nowSeconds: 1767254400 + 299 })).toBe(true);
    expect(verifySignature(secret, 'v1=abc', body)).toBe(false);
  });

  it('new secrets are 32 random bytes in hex behind whsec_', () => {
    const a = newWebhookSecret();
    expect(a).toMatch(/^whsec_[0-9a-f]{64}$/);
    expect(newWebhookSecret()).not.toBe(a);
  });
});

describe('delivery outcome of an HTTP answer', () => {
  it.each([
    [200, 'delivered'],
    [204, 'delivered'],
    [299, 'delivered'],
    [500, 'retry'],
    [503, 'retry'],
    [408, 'retry'],
    [429, 'retry'],
    [null, 'retry'],
    [400, 'permanent'],
    [401, 'permanent'],
    [404, 'permanent'],
    [410, 'permanent'],
    [301, 'permanent'],
  ])('%p → %s', (status, outcome) => {
    expect(outcomeOf(status)).toBe(outcome);
  });
});
