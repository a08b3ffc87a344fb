import { execSync } from 'node:child_process';
import * as fs from 'node:fs';

/**
 * The one place the benches read /proc (Linux): CPU ticks (utime+stime) from /proc/<pid>/stat, VmRSS
 * and VmHWM from /proc/<pid>/status, the machine's busy ticks from /proc/stat, pids by command name or
 * listening port, and `ProcSampler`, which samples named processes every `everyMs`. A name may stand
 * for several pids (all PostgreSQL backends, say): their CPU is summed, their RSS too (shared memory
 * counted once per backend). Pids come from a function so a restarted process is followed under its
 * name. Five names are the sampler's own: `machine` holds the busy cores of the whole machine (every
 * process, steal time left out), `steal` the time the hypervisor ran other guests while ours waited
 * (not our work, but a sign the figures were taken on a crowded host), `kernel` the kernel's own
 * threads (kworkers, ksoftirqd, kdamond...) plus interrupt time no process is charged with,
 * `outside` every other user-space process on the box (a shell, an agent, another build), and
 * `other` what is left of `machine` after all of them (processes that lived between two samples,
 * rounding).
 */

/** Clock ticks per second of the CPU times in /proc (USER_HZ; 100 on common Linux builds). */
export const CLK_TCK = (() => {
  try {
    return Number(execSync('getconf CLK_TCK', { stdio: ['ignore', 'pipe', 'ignore'] }).toString()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** Seconds since the sampler started. */
  t: number;
  /** CPU cores used since the previous sample, per name. */
  cores: Record<string, number>;
  rss_mib: Record<string, number>;
}

/** Every pid in /proc now. */
export function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

/** PF_KTHREAD in the flags field of /proc/<pid>/stat: the process is a kernel thread. */
const PF_KTHREAD = 0x00200000;

/**
 * Command name, CPU ticks (utime+stime) and whether it is a kernel thread, of a process, from
 * /proc/<pid>/stat; undefined once it exited.
 */
export function procStat(pid: number): { comm: string; ticks: number; kernel: boolean } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      ticks: Number(f[11]) + Number(f[12]),
      kernel: (Number(f[6]) & PF_KTHREAD) !== 0,
    };
  } catch {
    return undefined;
  }
}

export function cpuTicks(pid: number): number | undefined {
  return procStat(pid)?.ticks;
}

/** Current (VmRSS) or peak (VmHWM) resident set size of a process, MiB; undefined if unreadable. */
export function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/** Command line of a process (at most 120 characters), or undefined once it exited. */
export function cmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 120);
  } catch {
    return undefined;
  }
}

/** Busy CPU ticks of the machine so far (all cores; /proc/stat minus idle and iowait; CLK_TCK per second). */
export function machineBusyTicks(): number {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  return cpu.reduce((a, b) => a + b, 0) - cpu[3]! - cpu[4]!;
}

/**
 * CPU ticks of the machine so far from the first line of /proc/stat: `busy` is user + nice + system +
 * irq + softirq (guest time is already inside user), `interrupts` the irq + softirq part of it (no
 * process's ticks include it), `steal` apart.
 */
export function machineTicks(): { busy: number; interrupts: number; steal: number } {
  const c = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = c;
  return { busy: user + nice + system + irq + softirq, interrupts: irq + softirq, steal };
}

/** Pids whose command name (/proc/<pid>/comm) is `comm`, e.g. every `postgres` or `redis-server`. */
export function pidsByComm(comm: string): number[] {
  const out: number[] = [];
  for (const pid of allPids()) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) out.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Pid of the process listening on a local TCP port (from /proc/net/tcp and the fd links), if any. */
export function pidListeningOn(port: number): number | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
        const c = line.trim().split(/\s+/);
        if (c.length > 9 && c[1]!.endsWith(`:${hex}`) && c[3] === '0A') inodes.add(c[9]!);
      }
    } catch {
      // no IPv6
    }
  }
  if (!inodes.size) return undefined;
  for (const pid of allPids()) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m && inodes.has(m[1]!)) return pid;
      }
    } catch {
      // not ours to read, or exited
    }
  }
  return undefined;
}

export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer?: NodeJS.Timeout;
  private last = new Map<number, number>();
  /** Ticks of every process no name holds, at the previous sample (kernel threads and `outside`). */
  private lastUnnamed = new Map<number, number>();
  private lastMachine = { busy: 0, interrupts: 0, steal: 0 };
  private lastT = 0;
  private t0 = 0;

  constructor(
    private readonly pids: () => Record<string, number[]>,
    private readonly everyMs = 1_000,
  ) {}

  start(): void {
    this.t0 = performance.now();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(first: boolean): void {
    const now = performance.now();
    const seconds = (now - this.lastT) / 1000;
    const cores: Record<string, number> = {};
    const rss: Record<string, number> = {};
    const seen = new Map<number, number>();
    for (const [name, pids] of Object.entries(this.pids())) {
      let ticks = 0;
      let mem = 0;
      for (const pid of pids) {
        const t = cpuTicks(pid);
        if (t === undefined) continue;
        seen.set(pid, t);
        // A pid first seen counts from its start only when it is new since the previous sample.
        ticks += t - (this.last.get(pid) ?? (first ? t : 0));
        mem += rssMiB(pid) ?? 0;
      }
      cores[name] = Math.round((ticks / CLK_TCK / seconds) * 100) / 100;
      rss[name] = mem;
    }
    // Every process no name holds: kernel threads, and user-space processes outside the stack.
    const unnamed = new Map<number, number>();
    let kernelTicks = 0;
    let outsideTicks = 0;
    for (const pid of allPids()) {
      if (seen.has(pid)) continue;
      const st = procStat(pid);
      if (!st) continue;
      unnamed.set(pid, st.ticks);
      const delta = st.ticks - (this.lastUnnamed.get(pid) ?? (first ? st.ticks : 0));
      if (st.kernel) kernelTicks += delta;
      else outsideTicks += delta;
    }
    // The whole machine (every process, ours or not), steal apart, and what no name accounts for.
    const m = machineTicks();
    const toCores = (ticks: number) => Math.round((ticks / CLK_TCK / seconds) * 100) / 100;
    const named = Object.values(cores).reduce((a, b) => a + b, 0);
    cores.machine = toCores(m.busy - this.lastMachine.busy);
    cores.steal = toCores(m.steal - this.lastMachine.steal);
    cores.kernel = toCores(kernelTicks + m.interrupts - this.lastMachine.interrupts);
    cores.outside = toCores(outsideTicks);
    cores.other = Math.max(0, Math.round((cores.machine - named - cores.kernel - cores.outside) * 100) / 100);
    rss.machine = rss.steal = rss.kernel = rss.outside = rss.other = 0;
    this.lastMachine = m;
    this.lastUnnamed = unnamed;
    this.last = seen;
    this.lastT = now;
    if (!first) this.samples.push({ t: Math.round((now - this.t0) / 100) / 10, cores, rss_mib: rss });
  }

  /** Mean cores and max RSS per name over the samples taken between two times (seconds since start). */
  summary(from = 0, to = Infinity): Record<string, { cores_mean: number; cores_max: number; rss_max_mib: number }> {
    const inRange = this.samples.filter((s) => s.t >= from && s.t <= to);
    const names = [...new Set(inRange.flatMap((s) => Object.keys(s.cores)))];
    return Object.fromEntries(
      names.map((n) => {
        const c = inRange.map((s) => s.cores[n] ?? 0);
        const r = inRange.map((s) => s.rss_mib[n] ?? 0);
        return [
          n,
          {
            cores_mean: Math.round((c.reduce((a, b) => a + b, 0) / Math.max(1, c.length)) * 100) / 100,
            cores_max: Math.max(0, ...c),
            rss_max_mib: Math.max(0, ...r),
          },
        ];
      }),
    );
  }

  elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }
}
