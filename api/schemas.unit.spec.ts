import { z } from 'zod';
import { Cursor, Instant, Limit, TimeIdKey, encodeCursor } from './schemas';
import { openApiPath } from './openapi';
import { presentedKey } from './auth';

describe('API request schemas', () => {
  const cursor = Cursor(TimeIdKey);

  it('round-trips a cursor it issued', () => {
    const key = ['2026-03-01T08:00:00.000Z', 'sess-1'];
    expect(cursor.parse(encodeCursor(key))).toEqual(key);
    expect(cursor.parse(encodeCursor([null, 'sess-4']))).toEqual([null, 'sess-4']);
  });

  it.each([
    ['not base64url', 'a b'],
    ['not JSON', Buffer.from('{oops').toString('base64url')],
    ['another shape', encodeCursor({ ts: 1 })],
    ['a bad time', encodeCursor(["1' OR '1'='1", 'x'])],
    ['too long', 'A'.repeat(513)],
  ])('refuses a cursor that is %s', (_what, value) => {
    const r = z.object({ cursor: cursor }).safeParse({ cursor: value });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.'))).toEqual(['cursor']);
  });

  it('takes ISO-8601 instants with a zone only', () => {
    const t = Instant('t');
    expect(t.parse('2026-03-01T08:00:00Z')).toEqual(new Date(Date.UTC(2026, 2, 1, 8)));
    expect(t.parse('2026-03-01T09:00:00+01:00')).toEqual(new Date(Date.UTC(2026, 2, 1, 8)));
    expect(t.safeParse('2026-03-01 08:00').success).toBe(false);
    expect(t.safeParse('1709280000000').success).toBe(false);
  });

  it('bounds page sizes and defaults them', () => {
    const l = Limit(500, 50);
    expect(l.parse(undefined)).toBe(50);
    expect(l.parse('20')).toBe(20);
    for (const bad of ['0', '501', '1.5', 'ten', ['1', '2']]) expect(l.safeParse(bad).success).toBe(false);
  });

  it('writes express paths in OpenAPI form', () => {
    expect(openApiPath('/v1/sessions/:id/scores')).toBe('/v1/sessions/{id}/scores');
    expect(openApiPath('/v1/sessions')).toBe('/v1/sessions');
  });

  it('reads the key from Authorization: Bearer, else X-API-Key', () => {
    expect(presentedKey('Bearer abc', 'def')).toBe('abc');
    expect(presentedKey('bearer  abc ', undefined)).toBe('abc');
    expect(presentedKey('Basic abc', ' def ')).toBe('def');
    expect(presentedKey(undefined, '')).toBeUndefined();
  });
});
