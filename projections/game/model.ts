import type { GameEvent } from '../../schemas/types';
import { telemetryColumns, telemetryModelSql, telemetrySeedSql, telemetryStatements, type Column } from '../columns';
import type { ProjectedRecord, ReadModel } from '../model';

/** The fields of a game event's kind without its `type`: what `game_events.details` holds. */
function detailsOf(e: GameEvent): Record<string, unknown> {
  const { type: _type, ...details } = e.event;
  return details;
}

/** `game_events` columns, in table order, from GameEvent (game.events.v1). */
const gameColumns: Column<GameEvent>[] = [
  ...telemetryColumns,
  { name: 'kind', type: 'text', of: (e) => e.event.type },
  { name: 'details', type: 'jsonb', of: (e) => JSON.stringify(detailsOf(e)) },
];

const sql = telemetryModelSql('game_events', gameColumns, 'game_event_count');

/**
 * `game_events` rows from `game.events.v1` (kind = the union branch: LaneDeparture, Collision,
 * StimulusShown, StimulusResponse, StimulusMissed; details = its fields), and the session's game
 * event count and last_seen_at: one multi-row statement per batch.
 */
export const gameModel: ReadModel = {
  name: 'game',
  topics: ['game'],
  writes: {
    tables: [{ name: 'game_events', timeColumn: 'ts' }],
    sessionColumns: ['game_event_count'],
    seed: [telemetrySeedSql('game_events', 'game_event_count')],
  },
  project(records) {
    return telemetryStatements(
      sql,
      gameColumns,
      (records as ProjectedRecord<GameEvent>[]).map((r) => r.value),
    );
  },
};
