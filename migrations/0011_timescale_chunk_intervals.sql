-- Up Migration
-- Chunk intervals by rate (TimescaleDB path; nothing on the plain path). 0002-0007 gave every
-- hypertable 1-day chunks. TimescaleDB's rule of thumb: the newest chunk of each busy hypertable,
-- with its indexes, should fit in about a quarter of the server's memory, and chunks should not be
-- so small that a query or a policy has to touch thousands of them. Rates per live session
-- (DESIGN section 3) and what one chunk then holds, sized for ~100 concurrent sessions on a 16 GB
-- node (rows ~150-250 bytes with their two indexes):
--   eeg_frames ~10/s, face_frames 10-30/s, vehicle_frames ~10/s: at 100 sessions up to 3,000 rows/s,
--     a 1-day chunk would be ~260 M rows (~50 GB): far past memory. 6 hours: ~65 M rows at the face
--     peak, ~3 GB per table at the usual rate; 360 chunks per table over the 90-day retention.
--   game_events (bursts; tens per minute): 1 day stays (a few M rows per day).
--   fatigue_scores, fatigue_scores_whatif (1 per 5 s): 1.7 M rows per day at 100 sessions; 7 days
--     (~12 M rows, ~2.5 GB) keeps a year's retention at 52 chunks and matches the 7-day compression.
--   alert_events (rare): 30 days; 1-day chunks would be nearly empty.
-- New intervals apply to chunks created from now on; existing chunks keep theirs.
DO $$
BEGIN
  IF vigil_timescale() THEN
    PERFORM set_chunk_time_interval('eeg_frames', INTERVAL '6 hours');
    PERFORM set_chunk_time_interval('face_frames', INTERVAL '6 hours');
    PERFORM set_chunk_time_interval('vehicle_frames', INTERVAL '6 hours');
    PERFORM set_chunk_time_interval('fatigue_scores', INTERVAL '7 days');
    PERFORM set_chunk_time_interval('fatigue_scores_whatif', INTERVAL '7 days');
    PERFORM set_chunk_time_interval('alert_events', INTERVAL '30 days');
  END IF;
END $$;

-- Down Migration
DO $$
DECLARE
  t text;
BEGIN
  IF vigil_timescale() THEN
    FOREACH t IN ARRAY ARRAY['eeg_frames', 'face_frames', 'vehicle_frames', 'fatigue_scores', 'fatigue_scores_whatif', 'alert_events'] LOOP
      PERFORM set_chunk_time_interval(t::regclass, INTERVAL '1 day');
    END LOOP;
  END IF;
END $$;
