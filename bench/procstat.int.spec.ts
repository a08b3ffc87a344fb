import { spawn } from 'node:child_process';
import { ProcSampler } from './procstat';

const busyChild = () => spawn(process.execPath, ['-e', 'const end = Date.now() + 3000; while (Date.now() < end);']);

describe('ProcSampler (reads /proc)', () => {
  it('charges a busy process to its name when named, and to `outside` when not', async () => {
    const a = busyChild();
    const b = busyChild();
    // Two samplers over the same seconds: one names both spinners, the other only `a`.
    const both = new ProcSampler(() => ({ a: [a.pid!], b: [b.pid!] }), 500);
    const onlyA = new ProcSampler(() => ({ a: [a.pid!] }), 500);
    both.start();
    onlyA.start();
    await new Promise((r) => setTimeout(r, 2_200));
    both.stop();
    onlyA.stop();
    a.kill();
    b.kill();
    const named = both.summary(0.4, 2.2);
    const unnamed = onlyA.summary(0.4, 2.2);
    // Each spinner gets a share of a core well above 0.1, even with other test workers on 2 cores.
    expect(named.b!.cores_mean).toBeGreaterThan(0.1);
    // Unnamed, `b` moves into `outside` (everything else on the box is in both samplers' `outside`).
    const moved = unnamed.outside!.cores_mean - named.outside!.cores_mean;
    expect(moved).toBeGreaterThan(named.b!.cores_mean * 0.5);
    expect(moved).toBeLessThan(named.b!.cores_mean * 1.5 + 0.05);
    for (const s of [named, unnamed])
      for (const name of ['kernel', 'other', 'steal']) expect(s[name]!.cores_mean).toBeGreaterThanOrEqual(0);
  });
});
