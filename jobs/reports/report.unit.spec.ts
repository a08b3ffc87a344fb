import { computeSessionReport, type ReportInput, type StreamStats } from './report';
import { pendingOf } from './readiness';

const T0 = Date.parse('2026-01-01T08:00:00.000Z');
const at = (s: number) => T0 + s * 1000;
const none: StreamStats = { frames: 0, devices: 0, first_ts: null, last_ts: null, max_gap_ms: null };

const input: ReportInput = {
  session: {
    session_id: 's1',
    tenant_id: 'acme',
    driver_id: 'd1',
    vehicle_id: 'v1',
    started_at: at(0),
    ended_at: at(180),
    end_reason: 'COMPLETED',
  },
  scores: [
    // given out of order: the report sorts by window end
    { ts: at(125), score: 75, level: 2, model_version: 'fatigue-v1' },
    { ts: at(60), score: 10, level: 0, model_version: 'fatigue-v1' },
    { ts: at(65), score: 20, level: 0, model_version: 'fatigue-v1' },
    { ts: at(70), score: 30, level: 0, model_version: 'fatigue-v1' },
    { ts: at(120), score: 55, level: 1, model_version: 'fatigue-v1' },
    { ts: at(130), score: 80.5, level: 2, model_version: 'fatigue-v1' },
  ],
  alerts: [
    {
      alert_id: 'a1',
      reason: 'drowsy',
      level: 1,
      status: 'cleared',
      raised_at: at(120),
      escalations: 0,
      acknowledged_at: null,
      cleared_at: at(180),
      clear_reason: 'session_ended',
    },
    {
      alert_id: 'a2',
      reason: 'severe',
      level: 2,
      status: 'cleared',
      raised_at: at(125),
      escalations: 1,
      acknowledged_at: at(150),
      cleared_at: at(180),
      clear_reason: 'session_ended',
    },
    {
      alert_id: 'a3',
      reason: 'microsleep',
      level: 2,
      status: 'cleared',
      raised_at: at(100),
      escalations: 0,
      acknowledged_at: null,
      cleared_at: at(160),
      clear_reason: 'recovered',
    },
    // only an escalation was projected: no reason, no raise time; not counted
    {
      alert_id: 'a4',
      reason: null,
      level: 2,
      status: 'active',
      raised_at: null,
      escalations: 1,
      acknowledged_at: null,
      cleared_at: null,
      clear_reason: null,
    },
  ],
  telemetry: {
    eeg: { frames: 1700, devices: 1, first_ts: at(1), last_ts: at(179.9), max_gap_ms: 2500 },
    face: none,
    vehicle: { frames: 3600, devices: 2, first_ts: at(0), last_ts: at(180), max_gap_ms: 100 },
    game_events: 7,
  },
  pending: [],
};

describe('session report', () => {
  it('given the rows of an ended session, then exact columns and document', () => {
    const { row, document } = computeSessionReport(input);
    expect(row).toEqual({
      session_id: 's1',
      tenant_id: 'acme',
      driver_id: 'd1',
      vehicle_id: 'v1',
      started_at: '2026-01-01T08:00:00.000Z',
      ended_at: '2026-01-01T08:03:00.000Z',
      duration_s: 180,
      model_version: 'fatigue-v1',
      score_avg: 45.08,
      score_max: 80.5,
      level_max: 2,
      level1_s: 15,
      level2_s: 10,
      alert_count: 3,
      microsleep_count: 1,
    });
    expect(document).toEqual({
      version: 1,
      session_id: 's1',
      tenant_id: 'acme',
      driver_id: 'd1',
      vehicle_id: 'v1',
      started_at: '2026-01-01T08:00:00.000Z',
      ended_at: '2026-01-01T08:03:00.000Z',
      end_reason: 'COMPLETED',
      duration_s: 180,
      complete: true,
      pending: [],
      model_versions: ['fatigue-v1'],
      scores: { count: 6, mean: 45.08, max: 80.5, level_max: 2, seconds_at_level: { '0': 15, '1': 5, '2': 10 } },
      alerts: {
        count: 3,
        by_reason: { drowsy: 1, severe: 1, microsleep: 1, face_lost: 0 },
        level_max: 2,
        escalations: 1,
        acknowledged: 1,
        items: [
          {
            alert_id: 'a3',
            reason: 'microsleep',
            level: 2,
            status: 'cleared',
            raised_at: '2026-01-01T08:01:40.000Z',
            escalations: 0,
            acknowledged_at: null,
            cleared_at: '2026-01-01T08:02:40.000Z',
            clear_reason: 'recovered',
          },
          {
            alert_id: 'a1',
            reason: 'drowsy',
            level: 1,
            status: 'cleared',
            raised_at: '2026-01-01T08:02:00.000Z',
            escalations: 0,
            acknowledged_at: null,
            cleared_at: '2026-01-01T08:03:00.000Z',
            clear_reason: 'session_ended',
          },
          {
            alert_id: 'a2',
            reason: 'severe',
            level: 2,
            status: 'cleared',
            raised_at: '2026-01-01T08:02:05.000Z',
            escalations: 1,
            acknowledged_at: '2026-01-01T08:02:30.000Z',
            cleared_at: '2026-01-01T08:03:00.000Z',
            clear_reason: 'session_ended',
          },
        ],
      },
      microsleep_count: 1,
      data_quality: {
        eeg: { received: 1700, expected: 1800, ratio: 0.944, devices: 1, largest_gap_s: 2.5 },
        face: { received: 0, expected: 2700, ratio: 0, devices: 0, largest_gap_s: 180 },
        vehicle: { received: 3600, expected: 3600, ratio: 1, devices: 2, largest_gap_s: 0.1 },
        game_events: 7,
      },
      trend: [
        { minute: '2026-01-01T08:01:00.000Z', score_avg: 20, score_max: 30, level_max: 0, scores: 3 },
        { minute: '2026-01-01T08:02:00.000Z', score_avg: 70.17, score_max: 80.5, level_max: 2, scores: 3 },
      ],
    });
  });

  it('is the same for the same rows (no clock inside)', () => {
    expect(JSON.stringify(computeSessionReport(input))).toBe(
      JSON.stringify(computeSessionReport(structuredClone(input))),
    );
  });

  it('given no SessionStarted, then the session starts at its first frame; pending facts make it incomplete', () => {
    const { row, document } = computeSessionReport({
      ...input,
      session: { ...input.session, started_at: null, driver_id: null, vehicle_id: null },
      scores: [],
      alerts: [],
      pending: ['scores not projected up to the end'],
    });
    expect(row).toMatchObject({
      started_at: '2026-01-01T08:00:00.000Z',
      duration_s: 180,
      score_avg: null,
      score_max: null,
      level_max: null,
      level1_s: 0,
      level2_s: 0,
      alert_count: 0,
      model_version: null,
    });
    expect(document.complete).toBe(false);
    expect(document.pending).toEqual(['scores not projected up to the end']);
    expect(document.scores).toEqual({
      count: 0,
      mean: null,
      max: null,
      level_max: null,
      seconds_at_level: { '0': 0, '1': 0, '2': 0 },
    });
    expect(document.trend).toEqual([]);
  });
});

describe('report readiness', () => {
  const ended = { status: 'ended', ended_at: at(180), last_score_at: at(180), open_alert_count: 0 };

  it('is ready when SessionEnded, the last scores and the alert clears are projected', () => {
    expect(pendingOf({ session: ended, lastTelemetryTs: at(179.9) })).toEqual([]);
  });

  it('when telemetry stopped before the end, scores need only pass the last frame', () => {
    expect(pendingOf({ session: { ...ended, last_score_at: at(125) }, lastTelemetryTs: at(121) })).toEqual([]);
    expect(pendingOf({ session: { ...ended, last_score_at: at(125) }, lastTelemetryTs: at(125) })).toEqual([
      'scores not projected up to the end',
    ]);
  });

  it('names every fact still missing', () => {
    expect(pendingOf({ session: null, lastTelemetryTs: null })).toEqual(['session not projected yet']);
    expect(
      pendingOf({
        session: { status: 'active', ended_at: null, last_score_at: at(100), open_alert_count: 2 },
        lastTelemetryTs: at(179.9),
      }),
    ).toEqual(['SessionEnded not projected yet', '2 alert(s) still open', 'scores not projected up to the end']);
    expect(pendingOf({ session: { ...ended, last_score_at: null }, lastTelemetryTs: at(10) })).toEqual([
      'scores not projected up to the end',
    ]);
  });

  it('without telemetry, no score is awaited', () => {
    expect(pendingOf({ session: { ...ended, last_score_at: null }, lastTelemetryTs: null })).toEqual([]);
  });
});
