import { redisKeys } from './redis-keys';

describe('Redis key contract', () => {
  const keys = redisKeys('p');

  it('names the projection keys under the tenant, the tenant id URI-encoded', () => {
    expect(keys.latest('t:1', 's1')).toBe('p:tenant:t%3A1:session:s1:latest');
    expect(keys.feed('t', 's1')).toBe('p:tenant:t:session:s1:feed');
    expect(keys.feedMarks('t', 's1')).toBe('p:tenant:t:session:s1:feed:marks');
    expect(keys.live('t')).toBe('p:tenant:t:live');
    expect(keys.activeAlerts('t')).toBe('p:tenant:t:alerts:active');
    expect(keys.alert('t', 'a1')).toBe('p:tenant:t:alert:a1');
    expect(keys.checkpoints('redis')).toBe('p:projection:redis:checkpoints');
  });

  it('names the API cache keys per tenant and generation (generation 0 before the first bump)', () => {
    expect(keys.cacheGeneration('t')).toBe('p:api:cache:t:gen');
    expect(keys.cacheEntry('t', '3', 'report')).toBe('p:api:cache:t:g3:report');
    expect(keys.cacheEntry('t', null, 'report')).toBe('p:api:cache:t:g0:report');
  });

  it('names the rate counter prefixes of the API and the gateway', () => {
    expect(keys.rate).toEqual({
      apiAddress: 'p:api:addr',
      apiKey: 'p:api:rate',
      gatewayAddress: 'p:gateway:addr',
      gatewayKey: 'p:gateway:rate',
    });
  });
});
