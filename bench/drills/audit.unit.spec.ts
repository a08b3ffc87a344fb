import { publishedCounts, withAcknowledged, type AuditReport } from './audit';

const clean: AuditReport = {
  ok: true,
  lost: 0,
  duplicated: 0,
  input_events: { sessions: 40, eeg: 11992, face: 18000 },
  input_duplicates: {},
  poison_records: 0,
  checks: [],
};

describe('drill audit against what the simulator had acknowledged', () => {
  it('reads the per-topic counts of the simulator’s closing line', () => {
    const out =
      'sessions: a b\n{"level":"warn"}\npublished 30040 events in 61.2 s (491/s): {"sessions":40,"eeg":12000,"face":18000}\n';
    expect(publishedCounts(out)).toEqual({ sessions: 40, eeg: 12000, face: 18000 });
    expect(publishedCounts('sessions: a b\n')).toBeUndefined();
  });

  it('counts acknowledged events missing from a topic as lost and fails the audit', () => {
    const r = withAcknowledged(clean, { sessions: 40, eeg: 12000, face: 17999 });
    expect(r.ok).toBe(false);
    expect(r.lost).toBe(8);
    expect(r.duplicated).toBe(1);
    const eeg = r.checks.find((c) => c.name.startsWith('topic eeg'))!;
    expect([eeg.expected, eeg.actual, eeg.lost, eeg.ok]).toEqual([12000, 11992, 8, false]);
    const face = r.checks.find((c) => c.name.startsWith('topic face'))!;
    expect(face.note).toBe('1 distinct events more than acknowledged');
  });

  it('passes when every topic holds exactly what was acknowledged', () => {
    const r = withAcknowledged(clean, { sessions: 40, eeg: 11992, face: 18000, game: 0 });
    expect(r.ok).toBe(true);
    expect(r.checks.map((c) => c.expected)).toEqual([40, 11992, 18000]);
  });
});
