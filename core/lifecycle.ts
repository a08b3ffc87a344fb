import type { Logger } from './logger';

/**
 * Graceful shutdown: resources register a closer; SIGTERM/SIGINT run them in reverse order of
 * registration (so consumers stop before the pool they write to closes), then exit. A second signal,
 * or closers taking longer than `graceMs`, forces the exit.
 */
export class Lifecycle {
  private readonly closers: { name: string; close: () => Promise<unknown> | unknown }[] = [];
  private stopping?: Promise<void>;

  constructor(
    private readonly log: Logger,
    private readonly graceMs = 15_000,
  ) {}

  onClose(name: string, close: () => Promise<unknown> | unknown): void {
    this.closers.push({ name, close });
  }

  /** Runs every closer once (later calls return the same promise). Errors are logged, not thrown. */
  close(): Promise<void> {
    this.stopping ??= (async () => {
      for (const c of [...this.closers].reverse()) {
        try {
          await c.close();
        } catch (err) {
          this.log.warn({ err, resource: c.name }, 'error while closing');
        }
      }
    })();
    return this.stopping;
  }

  installSignalHandlers(): void {
    const handler = (signal: NodeJS.Signals) => {
      if (this.stopping) {
        this.log.warn({ signal }, 'second signal, exiting now');
        process.exit(1);
      }
      this.log.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        this.log.error({ graceMs: this.graceMs }, 'shutdown took too long, exiting');
        process.exit(1);
      }, this.graceMs);
      timer.unref();
      void this.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  }
}
