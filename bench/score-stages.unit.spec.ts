import { ScoreStages } from './score-stages';

describe('ScoreStages', () => {
  const LATENESS = 2_000;

  it('splits a sampled score into processor, commit, project and api stages', () => {
    const st = new ScoreStages(['s1'], LATENESS, 0);
    // Window ends at 10 000: closes at 12 000; sent at 12 150; visible at 12 230.
    st.inKafka('s1', 10_000, 12_150, 12_230);
    st.seenInRedis('s1', 10_000, 12_300);
    st.seenInRedis('s1', 10_000, 12_400); // a later sighting of the same score is not a new sample
    st.seenThroughApi('s1', 10_000, 12_420);
    expect(st.all).toEqual({ processor: [150], commit: [80], project: [70], api: [120] });
  });

  it('counts every session in Kafka but follows only the sampled ones into Redis and the API', () => {
    const st = new ScoreStages(['s1'], LATENESS, 0);
    st.inKafka('s2', 10_000, 12_100, 12_200);
    st.seenInRedis('s2', 10_000, 12_300);
    st.seenThroughApi('s2', 10_000, 12_400);
    expect(st.all).toEqual({ processor: [100], commit: [100], project: [], api: [] });
  });

  it('leaves out scores visible during the warm-up', () => {
    const st = new ScoreStages(['s1'], LATENESS, 20_000);
    st.inKafka('s1', 10_000, 12_100, 12_200);
    st.seenInRedis('s1', 10_000, 12_300);
    st.seenThroughApi('s1', 10_000, 12_400);
    expect(st.all).toEqual({ processor: [], commit: [], project: [], api: [] });
  });

  it('forgets a session\u2019s older scores once the API shows a newer one, so a skipped score is never matched late', () => {
    const st = new ScoreStages(['s1'], LATENESS, 0);
    st.inKafka('s1', 10_000, 12_100, 12_200);
    st.inKafka('s1', 15_000, 17_100, 17_200);
    st.seenInRedis('s1', 15_000, 17_300);
    st.seenThroughApi('s1', 15_000, 17_350); // the API went straight to the newer score
    st.seenInRedis('s1', 10_000, 17_400); // the older one is no longer pending
    expect(st.all.project).toEqual([100]);
    expect(st.all.api).toEqual([50]);
  });
});
