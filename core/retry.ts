/**
 * Runs `fn`, again (up to `attempts` in all, 50 ms × attempt apart) while it fails with an error
 * `transient` accepts; any other error, or the last attempt's, is thrown. For short races a retry
 * settles (a deadlock victim, a catalogue read that saw two row versions), not for outages.
 */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  transient: (err: unknown) => boolean,
  attempts: number,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !transient(err)) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}
