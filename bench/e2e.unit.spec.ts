import { idleSentence, nextSessions, slope } from './e2e';

describe('e2e bench step plan', () => {
  const step = (sessions: number, passed: boolean) => ({ sessions, passed });

  it('walks the planned steps while every step passes', () => {
    expect(nextSessions([100, 200, 400], [], 25)).toBe(100);
    expect(nextSessions([100, 200, 400], [step(100, true)], 25)).toBe(200);
    expect(nextSessions([100, 200, 400], [step(100, true), step(200, true), step(400, true)], 25)).toBeUndefined();
  });

  it('bisects between the largest pass and the smallest failure down to the resolution', () => {
    const tried = [step(100, true), step(200, true), step(400, false)];
    expect(nextSessions([100, 200, 400, 800], tried, 25)).toBe(300);
    tried.push(step(300, false));
    expect(nextSessions([100, 200, 400, 800], tried, 25)).toBe(250);
    tried.push(step(250, true));
    expect(nextSessions([100, 200, 400, 800], tried, 25)).toBe(275);
    tried.push(step(275, false));
    expect(nextSessions([100, 200, 400, 800], tried, 25)).toBeUndefined();
  });

  it('bisects below the first planned step when it already fails', () => {
    expect(nextSessions([100, 200], [step(100, false)], 25)).toBe(50);
  });
});

describe('lag growth fit', () => {
  it('gives the least-squares slope of a noisy rising series', () => {
    expect(slope([0, 2, 4, 6], [10, 30, 50, 70])).toBe(10);
    expect(slope([0, 2, 4, 6], [100, 90, 110, 100])).toBeCloseTo(1, 5);
  });

  it('is 0 for one point or a flat series', () => {
    expect(slope([3], [5])).toBe(0);
    expect(slope([0, 1, 2], [7, 7, 7])).toBe(0);
  });
});

describe('idle step summary', () => {
  it("counts only the stack's processes as its fixed cost, and names the rest of the machine", () => {
    const idle = {
      processor: 0.03,
      projector: 0.03,
      api: 0.02,
      gateway: 0.5,
      kafka: 0.04,
      registry: 0.01,
      zipkin: 0,
      postgres: 0.01,
      redis: 0,
      load: 0.4,
      bench: 0.05,
      kernel: 0.1,
      outside: 0.04,
      other: 0.02,
      machine: 0.35,
    };
    expect(idleSentence(idle, 'producer')).toBe(
      "**0.14 cores** for the stack's processes, of **0.35 cores** busy on the machine (bench 0.05, kernel 0.1, outside 0.04, other 0.02)",
    );
    expect(idleSentence(idle, 'gateway')).toMatch(/^\*\*0\.64 cores\*\* for the stack's processes/);
  });
});
