// Debian's headless Chromium driven by playwright-core, against an app listening on a real
// socket: every request the page makes is recorded, and an error on the page fails the test.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { ManualClock } from "../src/clock.ts";
import { type Answer, makeApp, type TestApp } from "./harness.ts";

export const CHROMIUM = Bun.which("chromium");

/** Screenshots a person looks at before calling the dashboard done. */
export const ARTIFACTS = join(import.meta.dir, "..", "test-artifacts");

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM ?? "",
    // Without the background-networking flags Chromium tries hosts it cannot reach; playwright
    // gives it a fresh profile of its own.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface Dashboard {
  app: TestApp;
  /** http://127.0.0.1:<port>/ */
  base: string;
  page: Page;
  /** Every URL the page asked for, in order. */
  requests: string[];
  /** Errors thrown on the page or logged to its console. */
  errors: string[];
  /** Calls the API as a script would, with the token when there is one. */
  api(method: string, path: string, body?: unknown): Promise<Answer>;
  screenshot(name: string): Promise<void>;
}

export async function openDashboard(
  browser: Browser,
  options: { env?: Record<string, string>; width?: number; height?: number } = {},
): Promise<Dashboard> {
  const app = makeApp({ env: options.env, clock: new ManualClock(Date.now()) });
  app.app.listen({ hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${app.app.server?.port}/`;
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
  });
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on("request", (request) => requests.push(request.url()));
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  const token = options.env?.ERRANDS_TOKEN;
  return {
    app,
    base,
    page,
    requests,
    errors,
    async api(method, path, body) {
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      return app.call(method, path, body, headers);
    },
    async screenshot(name) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });
    },
  };
}
