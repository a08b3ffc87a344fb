import { f32, projectRedis, type RedisModelOptions } from './model';
import { redisKeys } from '../../core/redis-keys';
import type { SessionEvent } from '../../schemas/types';
import { buildAlert, buildScore } from '../../test/support/build';
import type { TopicKey } from '../../schemas/catalogue';

const T0 = Date.UTC(2026, 0, 1, 8);
const options: RedisModelOptions = {
  prefix: 'p',
  sessionTtlMs: 1000,
  alertTtlMs: 2000,
  liveStaleMs: 300,
  feedMaxLen: 50,
};
const base = { tenant_id: 't', session_id: 's1' };
const started: SessionEvent = {
  ...base,
  event_id: 'e-start',
  ts: T0,
  event: { type: 'SessionStarted', driver_id: 'd', vehicle_id: 'v', devices: [] },
};
const ended: SessionEvent = {
  ...base,
  event_id: 'e-end',
  ts: T0 + 90_000,
  event: { type: 'SessionEnded', reason: 'COMPLETED' },
};
const scored = buildScore({
  ...base,
  event_id: 'e-score',
  ts: T0 + 65_000,
  score: Math.fround(71.3),
  level: 2,
  components: { ocular: Math.fround(0.7), driving: null, eeg: null, reaction: 0, yawn: 0 },
});
const raised = buildAlert('AlertRaised', {
  ...base,
  event_id: 'e-alert',
  ts: T0 + 65_000,
  alert_id: 'a1',
  level: 2,
  reason: 'severe',
  score: Math.fround(71.3),
});
const acked = buildAlert('AlertAcknowledged', {
  ...base,
  event_id: 'e-ack',
  ts: T0 + 70_000,
  alert_id: 'a1',
  acknowledged_by: 'ops',
});
const rec = (topic: TopicKey, value: unknown, offset = 0) => ({ topic, partition: 0, offset: String(offset), value });

describe('redis read model', () => {
  it('keeps a started session live and feeds it, to the session feed and the tenant feed', () => {
    expect(projectRedis([rec('sessions', started)], options)).toEqual([
      { script: 'live', keys: ['p:tenant:t:live', 'p:tenant:t:session:s1:latest'], args: ['s1', String(T0), '300'] },
      {
        script: 'feed',
        keys: ['p:tenant:t:session:s1:feed', 'p:tenant:t:session:s1:feed:marks', 'p:tenant:t:feed'],
        args: ['session', String(T0), 'e-start', '50', '1000', JSON.stringify(started), '1000'],
      },
    ]);
  });

  it('marks an ended session and takes it off the live set', () => {
    expect(projectRedis([rec('sessions', ended)], options)[0]).toEqual({
      script: 'ended',
      keys: ['p:tenant:t:live', 'p:tenant:t:session:s1:latest'],
      args: ['s1', String(T0 + 90_000), '1000', 'COMPLETED', 't'],
    });
  });

  it('writes a score as the latest (ts-guarded), keeps the session live and feeds it, floats as meant', () => {
    const ops = projectRedis([rec('scores', scored)], options);
    expect(ops.map((o) => o.script)).toEqual(['latest', 'live', 'feed']);
    expect(ops[0]).toEqual({
      script: 'latest',
      keys: ['p:tenant:t:session:s1:latest'],
      args: [
        String(T0 + 65_000),
        '1000',
        ...['session_id', 's1', 'tenant_id', 't', 'score', '71.3', 'level', '2'],
        ...['window_start_ts', String(T0 + 5_000), 'components'],
        JSON.stringify({ ocular: 0.7, driving: null, eeg: null, reaction: 0, yawn: 0 }),
        ...['model_version', 'fatigue-v1', 'event_id', 'e-score'],
      ],
    });
    const data = JSON.parse(ops[2]!.args[5]!);
    expect([data.score, data.components.ocular, data.window_end_ts]).toEqual([71.3, 0.7, T0 + 65_000]);
  });

  it('folds alert events through the alert script with each kind’s fields, and feeds them', () => {
    const ops = projectRedis([rec('alerts', raised, 1), rec('alerts', acked, 2)], options);
    expect(ops.map((o) => [o.script, o.keys])).toEqual([
      ['alert', ['p:tenant:t:alert:a1', 'p:tenant:t:alerts:active']],
      ['feed', ['p:tenant:t:session:s1:feed', 'p:tenant:t:session:s1:feed:marks', 'p:tenant:t:feed']],
      ['alert', ['p:tenant:t:alert:a1', 'p:tenant:t:alerts:active']],
      ['feed', ['p:tenant:t:session:s1:feed', 'p:tenant:t:session:s1:feed:marks', 'p:tenant:t:feed']],
    ]);
    expect(ops[0]!.args).toEqual([
      'AlertRaised',
      String(T0 + 65_000),
      '2000',
      'a1',
      's1',
      't',
      '2',
      'severe',
      '71.3',
      '',
      '',
    ]);
    expect(ops[2]!.args).toEqual([
      'AlertAcknowledged',
      String(T0 + 70_000),
      '2000',
      'a1',
      's1',
      't',
      '',
      '',
      '',
      '',
      'ops',
    ]);
    expect(JSON.parse(ops[1]!.args[5]!).event.score).toBe(71.3);
  });

  it('keys two tenants’ sessions and alerts of the same ids apart, and never reads a tenant id as two key parts', () => {
    const other = (e: { tenant_id: string }, tenant: string) => ({ ...e, tenant_id: tenant });
    const keysOf = (tenant: string) =>
      projectRedis(
        [
          rec('sessions', other(started, tenant)),
          rec('scores', other(scored, tenant)),
          rec('alerts', other(raised, tenant)),
        ],
        options,
      ).flatMap((o) => o.keys);
    const a = keysOf('t');
    const b = keysOf('u');
    expect(a.filter((k) => b.includes(k))).toEqual([]);
    expect(new Set(b)).toEqual(
      new Set([
        'p:tenant:u:live',
        'p:tenant:u:session:s1:latest',
        'p:tenant:u:session:s1:feed',
        'p:tenant:u:session:s1:feed:marks',
        'p:tenant:u:feed',
        'p:tenant:u:alert:a1',
        'p:tenant:u:alerts:active',
      ]),
    );
    // A tenant id holding ':' cannot pose as another tenant's key (it is URI-encoded).
    expect(redisKeys('p').latest('t:session:x', 's1')).toBe('p:tenant:t%3Asession%3Ax:session:s1:latest');
    expect(redisKeys('p').latest('t:session:x', 's1')).not.toBe(redisKeys('p').latest('t', 'x:session:s1'));
  });

  it('reads a float32 back as the shortest decimal that is the same float32', () => {
    expect([Math.fround(71.3), Math.fround(0.1), 0.5, Math.fround(1e-7)].map(f32)).toEqual([71.3, 0.1, 0.5, 1e-7]);
  });
});
