import { eegModel } from './model';
import type { EegBandPower } from '../../schemas/types';

const frame = (seq: number): EegBandPower => ({
  event_id: `00000000-0000-4000-8000-00000000000${seq}`,
  tenant_id: 't',
  session_id: 's1',
  device_id: 'd',
  seq,
  ts: Date.UTC(2026, 0, 1) + seq * 100,
  channels: [{ channel: 'Fz', delta_uv2: 1, theta_uv2: 2, alpha_uv2: 3, beta_uv2: 4, gamma_uv2: 5, quality: 0.9 }],
});

describe('eeg read model', () => {
  it('turns a batch of any size into one multi-row statement with one array per column', () => {
    const records = [1, 2, 3].map((seq) => ({
      topic: 'eeg' as const,
      partition: 0,
      offset: String(seq),
      value: frame(seq),
    }));
    const statements = eegModel.project(records);
    expect(statements).toHaveLength(1);
    const [ids, ts, tenants, sessions, devices, seqs, channels] = statements[0]!.values as unknown[][];
    expect(ids).toEqual(records.map((r) => r.value.event_id));
    expect(ts).toEqual(['2026-01-01T00:00:00.100Z', '2026-01-01T00:00:00.200Z', '2026-01-01T00:00:00.300Z']);
    expect([tenants, sessions, devices, seqs]).toEqual([
      ['t', 't', 't'],
      ['s1', 's1', 's1'],
      ['d', 'd', 'd'],
      [1, 2, 3],
    ]);
    // jsonb travels as one JSON array text of the batch's documents (see columnValues).
    expect(JSON.parse(channels as unknown as string)).toEqual(records.map((r) => r.value.channels));
    expect(statements[0]!.text).toContain('ON CONFLICT DO NOTHING');
    expect(statements[0]!.text).toContain('first_ts = LEAST(sessions.first_ts, EXCLUDED.first_ts)');
    expect(statements[0]!.text).toContain('last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at)');
  });

  it('returns no statement for an empty batch', () => {
    expect(eegModel.project([])).toEqual([]);
  });
});
