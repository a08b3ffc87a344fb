import type { Response } from 'express';

/** One Server-Sent Events message. `data` must be one line (JSON.stringify output is). */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** The wire form of a message: `id:`, `event:`, `data:` lines and a blank line. */
export function formatSse(m: SseMessage): string {
  return `${m.id !== undefined ? `id: ${m.id}\n` : ''}${m.event ? `event: ${m.event}\n` : ''}data: ${m.data}\n\n`;
}

export interface SseOptions {
  /** A comment line is written this often so proxies and clients keep the connection open. */
  heartbeatMs: number;
  /**
   * Bytes that may wait for a slow client (written while the socket pushes back). Beyond it the client
   * is dropped: it reconnects with Last-Event-ID and catches up from the stream, instead of the
   * server buffering without bound.
   */
  maxBufferedBytes: number;
}

export const defaultSseOptions: SseOptions = { heartbeatMs: 15_000, maxBufferedBytes: 1024 * 1024 };

/** Every open stream of the process, so shutdown can end them (an HTTP server waits for open responses). */
const openStreams = new Set<SseStream>();

/** Ends every open SSE response (clients reconnect elsewhere with Last-Event-ID). For shutdown. */
export function endAllSseStreams(): number {
  const n = openStreams.size;
  for (const s of [...openStreams]) s.end();
  return n;
}

/**
 * An open SSE response: writes messages, heartbeats, and tracks what the socket has not taken yet.
 * `closed` resolves once, when the client leaves, the server ends it, or it is dropped as too slow.
 */
export class SseStream {
  readonly closed: Promise<'client' | 'server' | 'slow'>;
  private resolveClosed!: (why: 'client' | 'server' | 'slow') => void;
  private heartbeat: NodeJS.Timeout;
  private open = true;

  constructor(
    private readonly res: Response,
    private readonly options: SseOptions = defaultSseOptions,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no'); // nginx: do not buffer the stream
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    // Tell EventSource how long to wait before reconnecting.
    res.write('retry: 2000\n\n');
    this.heartbeat = setInterval(() => this.comment('heartbeat'), options.heartbeatMs);
    this.heartbeat.unref();
    openStreams.add(this);
    res.once('close', () => this.finish('client'));
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Writes a message; false (and the client dropped) when too much is already waiting for it. */
  send(m: SseMessage): boolean {
    return this.write(formatSse(m));
  }

  comment(text: string): boolean {
    return this.write(`: ${text}\n\n`);
  }

  /** Ends the response from the server side. */
  end(): void {
    if (!this.open) return;
    this.res.end();
    this.finish('server');
  }

  private write(chunk: string): boolean {
    if (!this.open) return false;
    if (this.res.writableLength + chunk.length > this.options.maxBufferedBytes) {
      this.res.destroy();
      this.finish('slow');
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  private finish(why: 'client' | 'server' | 'slow') {
    if (!this.open) return;
    this.open = false;
    openStreams.delete(this);
    clearInterval(this.heartbeat);
    this.resolveClosed(why);
  }
}
