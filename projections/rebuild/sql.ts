/**
 * The SQL of a projection rebuild, as pure functions of names (identifiers are checked, then quoted).
 * A rebuild writes a read model into a shadow schema holding copies of the tables it owns and of
 * `sessions`, then swaps them into `public` in one transaction.
 */

const IDENT = /^[a-z_][a-z0-9_]*$/;

/** A checked, double-quoted identifier: the names here come from code and catalogs, never from users. */
export function ident(name: string): string {
  if (!IDENT.test(name)) throw new Error(`not a plain SQL identifier: ${name}`);
  return `"${name}"`;
}

/** The shadow schema of one rebuild run. */
export const shadowSchemaOf = (model: string, runId: string): string =>
  `vigil_rebuild_${model.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_${runId}`;

/** A regular expression matching the shadow schemas of every run of `model` (and of no other model). */
export const shadowPatternOf = (model: string): string => `^${shadowSchemaOf(model, '')}[a-z0-9]+$`;

/** The projection name the rebuild keeps its own checkpoints under (beside the live ones). */
export const rebuildProjectionOf = (model: string, runId: string): string => `${model}@rebuild_${runId}`;

/** Whether a `projection_checkpoints.projection` is a rebuild's own (not a live projection's). */
export const isRebuildProjection = (projection: string): boolean => projection.includes('@rebuild_');

/** Empty copies of the tables, with their columns, defaults, constraints and indexes. */
export function createShadowSql(shadow: string, tables: readonly string[]): string[] {
  return [
    `CREATE SCHEMA ${ident(shadow)}`,
    ...tables.map((t) => `CREATE TABLE ${ident(shadow)}.${ident(t)} (LIKE public.${ident(t)} INCLUDING ALL)`),
  ];
}

/** Makes the model's unqualified table names resolve to the shadow copies for the rest of the transaction. */
export const searchPathSql = (shadow: string): string => `SET LOCAL search_path TO ${ident(shadow)}, public`;

/** `rebuild --from`: the live event rows older than `from` ($1), copied into the shadow. */
export function copyOlderSql(shadow: string, table: string, timeColumn: string, columns: readonly string[]): string {
  const columnList = columns.map(ident).join(', ');
  return `INSERT INTO ${ident(shadow)}.${ident(table)} (${columnList}) SELECT ${columnList} FROM public.${ident(table)} WHERE ${ident(timeColumn)} < $1`;
}

/**
 * Swap by rename (plain tables nothing depends on): the live table goes, the shadow takes its place.
 * O(1) whatever the size; the indexes are renamed to the canonical names afterwards (`renameIndexSql`).
 */
export function renameSwapSql(shadow: string, table: string): string[] {
  return [`DROP TABLE public.${ident(table)}`, `ALTER TABLE ${ident(shadow)}.${ident(table)} SET SCHEMA public`];
}

export const renameIndexSql = (from: string, to: string): string =>
  `ALTER INDEX public.${ident(from)} RENAME TO ${ident(to)}`;

/**
 * Swap by copy (hypertables, whose chunks and continuous aggregate cannot be moved, and tables views
 * depend on): the live table is emptied and refilled from the shadow in the same transaction.
 * Emptied by DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe (a reader whose snapshot predates the
 * swap's commit, e.g. one queued behind its lock, reads the new, empty-to-it table: 0 rows), while
 * DELETE leaves the old rows to older snapshots and takes no lock that stops readers. The price is
 * O(rows) dead tuples, which autovacuum reclaims; a whole rebuild is rare.
 */
export function copySwapSql(shadow: string, table: string, columns: readonly string[]): string[] {
  const columnList = columns.map(ident).join(', ');
  return [
    `DELETE FROM public.${ident(table)}`,
    `INSERT INTO public.${ident(table)} (${columnList}) SELECT ${columnList} FROM ${ident(shadow)}.${ident(table)}`,
  ];
}

/**
 * The owned columns of `sessions` from the shadow into the live table, in one upsert over both sides
 * matched by the session's key (tenant_id, session_id), in (session_id, tenant_id) byte order (the
 * order every read model locks sessions in, so no deadlock with the other projections): a session
 * the rebuild computed gets its values; a live session the model has no row for gets the columns'
 * defaults; `last_seen_at`, which every model moves forward, merges
 * with GREATEST. Rows whose values do not change are not rewritten.
 * `defaults` maps each owned column to its default expression (`NULL` when it has none).
 */
export function sessionsSwapSql(shadow: string, owned: readonly string[], defaults: Record<string, string>): string {
  const columns = owned.map(ident);
  const values = owned.map(
    (c) => `CASE WHEN s.session_id IS NULL THEN ${defaults[c] ?? 'NULL'} ELSE s.${ident(c)} END`,
  );
  const eitherSide = (c: string) => `COALESCE(s.${c}, p.${c})`;
  const changed = [...columns.map((c) => `l.${c}`), 'l.last_seen_at'];
  const incoming = [...columns.map((c) => `EXCLUDED.${c}`), 'GREATEST(l.last_seen_at, EXCLUDED.last_seen_at)'];
  return `INSERT INTO public.sessions AS l (session_id, tenant_id, ${columns.join(', ')}, last_seen_at)
SELECT ${eitherSide('session_id')}, ${eitherSide('tenant_id')}, ${values.join(', ')}, s.last_seen_at
FROM ${ident(shadow)}.sessions s FULL JOIN public.sessions p ON p.tenant_id = s.tenant_id AND p.session_id = s.session_id
ORDER BY ${eitherSide('session_id')} COLLATE "C", ${eitherSide('tenant_id')} COLLATE "C"
ON CONFLICT (tenant_id, session_id) DO UPDATE SET
  ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(',\n  ')},
  last_seen_at = GREATEST(l.last_seen_at, EXCLUDED.last_seen_at),
  updated_at = now()
WHERE (${changed.join(', ')}) IS DISTINCT FROM (${incoming.join(', ')})`;
}

/**
 * Matches the shadow's index names to the live ones by definition (what `LIKE ... INCLUDING ALL`
 * names `eeg_frames_session_id_ts_idx` was created as `eeg_frames_session_ts_idx`), so migrations
 * that name an index still find it after the swap. Returns the renames needed, shadow name → live name.
 */
export function indexRenames(
  live: readonly { name: string; def: string }[],
  shadow: readonly { name: string; def: string }[],
): { from: string; to: string }[] {
  // `CREATE [UNIQUE] INDEX <name> ON <schema>.<table> USING ...`: compare uniqueness and what follows USING.
  const shape = (def: string) => `${/^CREATE UNIQUE/.test(def) ? 'unique ' : ''}${def.slice(def.indexOf(' USING '))}`;
  const renames: { from: string; to: string }[] = [];
  const taken = new Set<string>();
  for (const index of shadow) {
    const match = live.find((candidate) => !taken.has(candidate.name) && shape(candidate.def) === shape(index.def));
    if (!match) throw new Error(`index ${index.name} (${index.def}) has no live counterpart`);
    taken.add(match.name);
    if (match.name !== index.name) renames.push({ from: index.name, to: match.name });
  }
  return renames;
}
