import { assignCoPartitioned } from './copartition';

describe('co-partitioning assignor', () => {
  const topics = { face: [0, 1, 2, 3, 4], eeg: [0, 1, 2, 3, 4], game: [0, 1, 2, 3, 4] };

  it('gives one member partition p of every topic', () => {
    const a = assignCoPartitioned(['m-b', 'm-a'], topics);
    for (const member of Object.values(a)) {
      expect(member.face).toEqual(member.eeg);
      expect(member.eeg).toEqual(member.game);
    }
    expect(a['m-a']!.face).toEqual([0, 2, 4]);
    expect(a['m-b']!.face).toEqual([1, 3]);
  });

  it('assigns every partition exactly once across members', () => {
    const a = assignCoPartitioned(['x', 'y', 'z'], topics);
    const faces = Object.values(a).flatMap((m) => m.face ?? []);
    expect(faces.sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('gives a lone member everything and leaves extra members idle', () => {
    expect(assignCoPartitioned(['solo'], { t: [0, 1] })).toEqual({ solo: { t: [0, 1] } });
    const many = assignCoPartitioned(['a', 'b', 'c'], { t: [0] });
    expect(many).toEqual({ a: { t: [0] }, b: {}, c: {} });
  });
});
