/** Registers how to undo one set-up step; steps are undone in the reverse order of registration. */
type OnClose = (undo: () => Promise<unknown>) => void;

/**
 * Runs a fixture's set-up, whose steps each register their undo, and returns what it built with a
 * `close()` that undoes every step in reverse order (all of them, even when one fails; the first
 * failure is thrown at the end). A set-up that throws half-way undoes what it had done, then rethrows.
 */
export async function setUp<T extends object>(
  steps: (onClose: OnClose) => Promise<T>,
): Promise<T & { close(): Promise<void> }> {
  const undos: (() => Promise<unknown>)[] = [];
  const close = async () => {
    let failure: unknown;
    for (const undo of undos.splice(0).reverse()) {
      try {
        await undo();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  };
  try {
    return { ...(await steps((undo) => undos.push(undo))), close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}
