import { ident, indexRenames, sessionsSwapSql, shadowSchemaOf } from './sql';

describe('rebuild SQL', () => {
  it('quotes plain identifiers and refuses anything else', () => {
    expect(ident('eeg_frames')).toBe('"eeg_frames"');
    expect(() => ident('eeg_frames; DROP TABLE x')).toThrow('not a plain SQL identifier');
    expect(() => ident('Sessions')).toThrow();
  });

  it('names the shadow schema after the model, with characters SQL identifiers allow', () => {
    expect(shadowSchemaOf('scores-whatif', 'abc123')).toBe('vigil_rebuild_scores_whatif_abc123');
  });

  it('maps shadow indexes to the live names by definition, whatever LIKE named them', () => {
    const live = [
      {
        name: 'eeg_frames_pkey',
        def: 'CREATE UNIQUE INDEX eeg_frames_pkey ON public.eeg_frames USING btree (event_id, ts)',
      },
      {
        name: 'eeg_frames_session_ts_idx',
        def: 'CREATE INDEX eeg_frames_session_ts_idx ON public.eeg_frames USING btree (session_id, ts DESC)',
      },
    ];
    const shadow = [
      {
        name: 'eeg_frames_pkey',
        def: 'CREATE UNIQUE INDEX eeg_frames_pkey ON s.eeg_frames USING btree (event_id, ts)',
      },
      {
        name: 'eeg_frames_session_id_ts_idx',
        def: 'CREATE INDEX eeg_frames_session_id_ts_idx ON s.eeg_frames USING btree (session_id, ts DESC)',
      },
    ];
    expect(indexRenames(live, shadow)).toEqual([
      { from: 'eeg_frames_session_id_ts_idx', to: 'eeg_frames_session_ts_idx' },
    ]);
  });

  it('tells a unique index from a plain one on the same columns, and fails on an index without counterpart', () => {
    const live = [
      { name: 'a_plain', def: 'CREATE INDEX a_plain ON public.t USING btree (x)' },
      { name: 'a_unique', def: 'CREATE UNIQUE INDEX a_unique ON public.t USING btree (x)' },
    ];
    const shadow = [
      { name: 't_x_idx1', def: 'CREATE UNIQUE INDEX t_x_idx1 ON s.t USING btree (x)' },
      { name: 't_x_idx', def: 'CREATE INDEX t_x_idx ON s.t USING btree (x)' },
    ];
    expect(indexRenames(live, shadow)).toEqual([
      { from: 't_x_idx1', to: 'a_unique' },
      { from: 't_x_idx', to: 'a_plain' },
    ]);
    expect(() => indexRenames(live, [{ name: 'z', def: 'CREATE INDEX z ON s.t USING btree (y)' }])).toThrow('index z');
  });

  it('upserts only the owned sessions columns, defaults where the model has no row, last_seen_at by GREATEST, matched by (tenant, session), in lock order', () => {
    const sql = sessionsSwapSql('vigil_rebuild_eeg_x', ['eeg_frame_count', 'first_ts'], { eeg_frame_count: '0' });
    expect(sql)
      .toBe(`INSERT INTO public.sessions AS l (session_id, tenant_id, "eeg_frame_count", "first_ts", last_seen_at)
SELECT COALESCE(s.session_id, p.session_id), COALESCE(s.tenant_id, p.tenant_id), CASE WHEN s.session_id IS NULL THEN 0 ELSE s."eeg_frame_count" END, CASE WHEN s.session_id IS NULL THEN NULL ELSE s."first_ts" END, s.last_seen_at
FROM "vigil_rebuild_eeg_x".sessions s FULL JOIN public.sessions p ON p.tenant_id = s.tenant_id AND p.session_id = s.session_id
ORDER BY COALESCE(s.session_id, p.session_id) COLLATE "C", COALESCE(s.tenant_id, p.tenant_id) COLLATE "C"
ON CONFLICT (tenant_id, session_id) DO UPDATE SET
  "eeg_frame_count" = EXCLUDED."eeg_frame_count",
  "first_ts" = EXCLUDED."first_ts",
  last_seen_at = GREATEST(l.last_seen_at, EXCLUDED.last_seen_at),
  updated_at = now()
WHERE (l."eeg_frame_count", l."first_ts", l.last_seen_at) IS DISTINCT FROM (EXCLUDED."eeg_frame_count", EXCLUDED."first_ts", GREATEST(l.last_seen_at, EXCLUDED.last_seen_at))`);
  });
});
