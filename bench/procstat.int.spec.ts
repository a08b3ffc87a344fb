import { spawn } from 'node:child_process';
import { ProcSampler } from './procstat';

const busyChild = () => spawn(process.execPath, ['-e', 'const end = Date.now() + 3000; while (Date.now() < end);']);

describe('ProcSampler (reads /proc)', () => {
  it('charges a busy process to its name when named, and to `outside` when not', async () => {
    const child = busyChild();
    const named = busyChild();
    const sampler = new ProcSampler(() => ({ spinner: [named.pid!] }), 500);
    sampler.start();
    await new Promise((r) => setTimeout(r, 2_200));
    sampler.stop();
    child.kill();
    named.kill();
    const s = sampler.summary(0.4, 2.2);
    // Each child spins one core; on 2 cores shared with the test runner each gets a good part of one.
    expect(s.spinner!.cores_mean).toBeGreaterThan(0.4);
    expect(s.outside!.cores_mean).toBeGreaterThan(0.4);
    expect(s.outside!.cores_mean).toBeLessThan(s.machine!.cores_mean);
    for (const name of ['kernel', 'other', 'steal']) expect(s[name]!.cores_mean).toBeGreaterThanOrEqual(0);
  });
});
