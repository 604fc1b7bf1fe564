/**
 * A real Chromium (Debian's /usr/bin/chromium) driven by playwright-core for the web console
 * tests: headless, a fresh profile, no background traffic. Every request the page makes is
 * recorded; `offsite` lists those that went anywhere but the server under test (the console must
 * never load anything from a third-party host).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM } from './peers.js';

export interface ConsoleBrowser {
  context: BrowserContext;
  page: Page;
  /** Every URL the page requested. */
  requests: string[];
  /** Requests to any origin but `origin`. */
  offsite: () => string[];
}

/** Launches Chromium with a fresh profile (closed after the test); pages go to `origin`. */
export async function openBrowser(
  t: TestContext,
  origin: string,
  o: { viewport?: { width: number; height: number } } = {},
): Promise<ConsoleBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'scepter-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: o.viewport ?? { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  const offsite = () =>
    requests.filter((u) => {
      if (u.startsWith('data:') || u === 'about:blank') return false;
      return new URL(u).origin !== origin;
    });
  return { context, page, requests, offsite };
}
