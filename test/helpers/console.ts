/**
 * The admin console for browser specs: a console on 127.0.0.1:0 against the
 * spec's etcd, a headless Chromium page on it, and screenshots into
 * docs/console/ when UPDATE_SCREENSHOTS=1 (how docs/console.md gets its images).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { startConsole, type ConsoleOptions, type RunningConsole } from "../../console";
import { launchBrowser } from "./browser";

export const SCREENSHOT_DIR = path.resolve(__dirname, "..", "..", "docs", "console");

export interface ConsoleFixture {
  console: RunningConsole;
  browser: Awaited<ReturnType<typeof launchBrowser>>;
  page: Page;
  close(): Promise<void>;
}

export async function openConsole(options: ConsoleOptions): Promise<ConsoleFixture> {
  const running = await startConsole({ port: 0, ...options });
  const browser = await launchBrowser();
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1400, height: 900 });
  return {
    console: running,
    browser,
    page,
    async close() {
      await browser.close();
      await running.close();
    },
  };
}

/** Saves a screenshot of the page for the docs, only when asked to (UPDATE_SCREENSHOTS=1). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (!process.env.UPDATE_SCREENSHOTS) return;
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: false });
}

/** Waits until the first element matching `selector` has text that equals `text` (a string) or matches it (a RegExp). */
export async function waitForText(page: Page, selector: string, text: string | RegExp, timeout = 10_000): Promise<void> {
  const arg = typeof text === "string" ? { selector, exact: text, source: "", flags: "" } : { selector, exact: undefined, source: text.source, flags: text.flags };
  // A function, not a string: the console's CSP forbids eval.
  await page.waitForFunction(
    (a) => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document;
      const t = doc.querySelector(a.selector)?.textContent ?? "";
      return a.exact !== undefined ? t === a.exact : new RegExp(a.source, a.flags).test(t);
    },
    arg,
    { timeout },
  );
}
