import { LRUCache } from 'lru-cache';
import type { Pool, PoolClient } from './db';
import { VigilError } from './errors';

/**
 * Session ownership (issue 11): the first tenant to claim a session id owns it for good
 * (table `session_owners`, migration 0009). `claim` inserts the unclaimed ids of a batch (the first
 * occurrence of an id in the batch wins) and answers the owner of every id. Owners never change, so
 * answers are cached in memory (bounded LRU): a warm gateway or projection runner asks PostgreSQL only
 * for ids it has not seen.
 */
export interface Claim {
  session_id: string;
  tenant_id: string;
}

type Db = Pool | PoolClient;

const CLAIM_SQL = `
WITH input AS (
  SELECT s AS session_id, t AS tenant_id, ord
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(s, t, ord)
), first AS (
  -- The first claim of each id in the batch; sorted by id so concurrent claimers lock in one order.
  SELECT DISTINCT ON (session_id) session_id, tenant_id FROM input ORDER BY session_id, ord
), ins AS (
  INSERT INTO session_owners (session_id, tenant_id)
  SELECT session_id, tenant_id FROM first ORDER BY session_id
  ON CONFLICT (session_id) DO NOTHING
  RETURNING session_id, tenant_id
)
SELECT session_id, tenant_id FROM ins
UNION ALL
SELECT o.session_id, o.tenant_id FROM session_owners o JOIN first f USING (session_id)`;

export class SessionOwners {
  private readonly cache: LRUCache<string, string>;

  constructor(
    private readonly db: Db,
    max = 100_000,
  ) {
    this.cache = new LRUCache({ max });
  }

  /** The owner of each claimed session id (claiming the unclaimed ones). Database errors are retriable. */
  async claim(claims: readonly Claim[]): Promise<Map<string, string>> {
    const owners = new Map<string, string>();
    const ask: Claim[] = [];
    for (const c of claims) {
      const known = this.cache.get(c.session_id);
      if (known !== undefined) owners.set(c.session_id, known);
      else if (!owners.has(c.session_id) && !ask.some((a) => a.session_id === c.session_id)) ask.push(c);
    }
    if (ask.length === 0) return owners;
    try {
      const found = await this.query(ask);
      // A concurrent claimer's row is invisible to this statement's snapshot: ask once more for those.
      const missing = ask.filter((a) => !found.has(a.session_id));
      if (missing.length) for (const [s, t] of await this.query(missing)) found.set(s, t);
      for (const [s, t] of found) {
        this.cache.set(s, t);
        owners.set(s, t);
      }
    } catch (cause) {
      throw new VigilError('DATABASE_UNAVAILABLE', 'cannot claim session owners', { cause, retriable: true });
    }
    return owners;
  }

  private async query(claims: readonly Claim[]): Promise<Map<string, string>> {
    const { rows } = await this.db.query<{ session_id: string; tenant_id: string }>(CLAIM_SQL, [
      claims.map((c) => c.session_id),
      claims.map((c) => c.tenant_id),
    ]);
    return new Map(rows.map((r) => [r.session_id, r.tenant_id]));
  }
}
