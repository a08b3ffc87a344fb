import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (no browser download: this machine's network is closed):
 * the browser spec (test/board.e2e.spec.ts) and `npm run bench -- ui` use it. `VIGIL_CHROMIUM` points
 * at another binary. The flags keep it from calling home (without them it stalls on a closed network)
 * and from needing a GPU or a sandbox (CI runs as root in a container). Each launch gets a fresh
 * profile folder (playwright makes a temporary one and removes it on close).
 */
export const CHROMIUM = process.env.VIGIL_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export interface LaunchedBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches Chromium; throws saying how to install it when it is missing. */
export async function launchChromium(extraArgs: string[] = []): Promise<LaunchedBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (.ci/run does), or set VIGIL_CHROMIUM to its path`,
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...FLAGS, ...extraArgs],
    timeout: 60_000,
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
    },
  };
}
