import { gameModel } from './model';
import type { GameEvent, GameEventKind } from '../../schemas/types';

const T0 = Date.UTC(2026, 0, 1, 8);
const game = (seq: number, event: GameEventKind): GameEvent => ({
  event_id: `00000000-0000-4000-8000-00000000000${seq}`,
  tenant_id: 't',
  session_id: 's1',
  device_id: 'sim',
  seq,
  ts: T0 + seq * 1000,
  event,
});

describe('game read model', () => {
  it('stores the kind and its fields as details, for every kind, in one multi-row insert', () => {
    const events = [
      game(1, { type: 'LaneDeparture', side: 'LEFT', lane_offset_m: -1.9 }),
      game(2, { type: 'Collision', object: 'cone', speed_kmh: 42 }),
      game(3, { type: 'StimulusShown', stimulus_id: 'p1' }),
      game(4, { type: 'StimulusResponse', stimulus_id: 'p1', reaction_ms: 312 }),
      game(5, { type: 'StimulusMissed', stimulus_id: 'p2', timeout_ms: 1500 }),
    ];
    const statements = gameModel.project(
      events.map((value, i) => ({ topic: 'game' as const, partition: 1, offset: String(i), value })),
    );
    expect(statements).toHaveLength(1);
    const values = statements[0]!.values as unknown[][];
    expect(values).toHaveLength(8);
    expect(values.slice(0, 6)).toEqual([
      events.map((e) => e.event_id),
      [
        '2026-01-01T08:00:01.000Z',
        '2026-01-01T08:00:02.000Z',
        '2026-01-01T08:00:03.000Z',
        '2026-01-01T08:00:04.000Z',
        '2026-01-01T08:00:05.000Z',
      ],
      ['t', 't', 't', 't', 't'],
      ['s1', 's1', 's1', 's1', 's1'],
      ['sim', 'sim', 'sim', 'sim', 'sim'],
      [1, 2, 3, 4, 5],
    ]);
    expect(values[6]).toEqual(['LaneDeparture', 'Collision', 'StimulusShown', 'StimulusResponse', 'StimulusMissed']);
    expect(JSON.parse(values[7] as unknown as string)).toEqual([
      { side: 'LEFT', lane_offset_m: -1.9 },
      { object: 'cone', speed_kmh: 42 },
      { stimulus_id: 'p1' },
      { stimulus_id: 'p1', reaction_ms: 312 },
      { stimulus_id: 'p2', timeout_ms: 1500 },
    ]);
    expect(statements[0]!.text).toContain(
      'INSERT INTO game_events (event_id, ts, tenant_id, session_id, device_id, seq, kind, details)',
    );
    expect(statements[0]!.text).toContain(
      "$7::text[], ARRAY(SELECT NULLIF(d, 'null'::jsonb) FROM jsonb_array_elements($8::jsonb) WITH ORDINALITY AS j(d, i) ORDER BY i))",
    );
    expect(statements[0]!.text).toContain('game_event_count = sessions.game_event_count + EXCLUDED.game_event_count');
  });

  it('returns no statement for an empty batch', () => {
    expect(gameModel.project([])).toEqual([]);
  });
});
