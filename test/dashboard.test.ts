// The dashboard as a person uses it: headless Chromium against the real server, the page's
// every request recorded, data created and changed through the API as workers would.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Locator } from "playwright-core";
import { CHROMIUM, type Dashboard, launch, openDashboard } from "./browser.ts";

/** Long enough for a loaded machine; a view normally follows an event within milliseconds. */
const WAIT = 10_000;
const TOKEN = "dashboard-secret";

const shown = (locator: Locator) => locator.first().waitFor({ timeout: WAIT });

async function create(d: Dashboard, name: string, type: string, options?: object) {
  const answer = await d.api("POST", "/v1/errands", { name, type, options, data: { name } });
  expect(answer.status).toBe(200);
  return answer.body.results as { id: string };
}

async function claim(d: Dashboard, type: string) {
  const answer = await d.api("POST", `/v1/errands/process/${type}`);
  expect(answer.status).toBe(200);
  return answer.body.results as { id: string; attempts: number };
}

/** Every request the page made went to this server (or was a data: URL it holds itself). */
function stayedLocal(d: Dashboard) {
  const away = d.requests.filter((url) => !url.startsWith(d.base) && !url.startsWith("data:"));
  expect(away).toEqual([]);
  expect(d.requests.length).toBeGreaterThan(0);
  expect(d.errors).toEqual([]);
}

describe.skipIf(CHROMIUM === null)("the dashboard in headless Chromium", () => {
  let browser: Browser;
  const opened: Dashboard[] = [];
  const open = async (options?: Parameters<typeof openDashboard>[1]) => {
    const d = await openDashboard(browser, options);
    opened.push(d);
    return d;
  };

  beforeAll(async () => {
    browser = await launch();
  });
  afterEach(async () => {
    for (const d of opened.splice(0)) await d.page.context().close();
  });
  afterAll(async () => {
    await browser.close();
  });

  test("the overview shows the counts of errands created through the API", async () => {
    const d = await open();
    for (let i = 0; i < 3; i++) await create(d, `resize ${i}`, "images");
    await create(d, "mail", "email");
    await create(d, "later", "email", { delay: 3_600_000 });
    await claim(d, "images");
    await d.page.goto(d.base);
    const images = d.page.locator('tr[data-type="images"]');
    await shown(images.locator('td[data-status="inactive"]', { hasText: /^2$/ }));
    await shown(images.locator('td[data-status="active"]', { hasText: /^1$/ }));
    const email = d.page.locator('tr[data-type="email"]');
    await shown(email.locator('td[data-status="inactive"]', { hasText: /^1$/ }));
    await shown(email.locator('td[data-status="scheduled"]', { hasText: /^1$/ }));
    await shown(d.page.locator('.total [data-status="inactive"]', { hasText: /^3$/ }));
    await d.api("PUT", "/v1/types/email", { rateLimit: { max: 10, perMs: 1000 } });
    await create(d, "mail 2", "email");
    await shown(email.locator(".tag", { hasText: "≤ 10 per 1s" }));
    // And it follows the stream: one more errand, no reload.
    await create(d, "resize 3", "images");
    await shown(images.locator('td[data-status="inactive"]', { hasText: /^3$/ }));
    stayedLocal(d);
  });

  test("an errand created through the API joins the open Errands view, and its completion updates it, without a reload", async () => {
    const d = await open();
    await create(d, "first", "reports");
    await d.page.goto(`${d.base}#/errands`);
    await shown(d.page.locator("table.errands tbody tr", { hasText: "first" }));
    // A reload would lose this.
    await d.page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    const { id } = await create(d, "second", "reports");
    const row = d.page.locator(`tr[data-id="${id}"]`);
    await shown(row);
    expect(await row.getAttribute("data-status")).toBe("inactive");
    const claimed = await claim(d, "reports");
    const other = claimed.id === id ? claimed : await claim(d, "reports");
    await d.api("PUT", `/v1/errand/${other.id}/completed`, { results: { pages: 3 } });
    await shown(d.page.locator(`tr[data-id="${id}"][data-status="completed"]`));
    expect(
      await d.page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
    ).toBe(true);
    stayedLocal(d);
  });

  test("a failed errand is retried from its page", async () => {
    const d = await open();
    const { id } = await create(d, "flaky", "imports");
    await claim(d, "imports");
    await d.api("PUT", `/v1/errand/${id}/failed`, { reason: "the upstream timed out" });
    await d.page.goto(`${d.base}#/errand/${id}`);
    await shown(d.page.locator("h1 .status", { hasText: "failed" }));
    await shown(d.page.getByText("the upstream timed out"));
    await d.page.getByRole("button", { name: "Retry", exact: true }).click();
    // It asks first.
    const dialog = d.page.getByRole("alertdialog");
    await shown(dialog);
    await dialog.getByRole("button", { name: "Retry" }).click();
    await shown(d.page.locator("h1 .status", { hasText: "inactive" }));
    await shown(d.page.getByText("Retrying!"));
    const stored = await d.api("GET", `/v1/errand/${id}`);
    expect(stored.body.results.status).toBe("inactive");
    stayedLocal(d);
  });

  test("a type paused from the overview refuses claims; resumed, it serves them", async () => {
    const d = await open();
    await create(d, "thumb", "thumbs");
    await d.page.goto(d.base);
    const pause = d.page.getByRole("button", { name: "Pause thumbs" });
    await shown(pause);
    // By keyboard: focus and Enter.
    await pause.focus();
    await d.page.keyboard.press("Enter");
    await shown(d.page.getByRole("button", { name: "Resume thumbs" }));
    expect((await d.api("POST", "/v1/errands/process/thumbs")).status).toBe(404);
    const types = await d.api("GET", "/v1/types");
    expect(types.body.results.find((t: { type: string }) => t.type === "thumbs").paused).toBe(true);
    await d.page.getByRole("button", { name: "Resume thumbs" }).click();
    await shown(d.page.getByRole("button", { name: "Pause thumbs" }));
    expect((await d.api("POST", "/v1/errands/process/thumbs")).status).toBe(200);
    stayedLocal(d);
  });

  test("a concurrency limit is set and cleared from the overview", async () => {
    const d = await open();
    await create(d, "a", "limited");
    await d.page.goto(d.base);
    const input = d.page.getByLabel("Concurrency").first();
    await shown(input);
    await input.fill("2");
    await d.page.getByRole("button", { name: "Set the concurrency of limited" }).click();
    const limit = async () =>
      (await d.api("GET", "/v1/types")).body.results.find(
        (t: { type: string }) => t.type === "limited",
      ).concurrency;
    await waitFor(async () => (await limit()) === 2);
    await input.fill("");
    await d.page.getByRole("button", { name: "Set the concurrency of limited" }).click();
    await waitFor(async () => (await limit()) === null);
    stayedLocal(d);
  });

  test("a pipeline of four errands is drawn as four nodes and its edges, and a node opens its errand", async () => {
    const d = await open();
    const made = await d.api("POST", "/v1/pipeline", {
      name: "diamond",
      errands: [
        { name: "fetch", type: "etl" },
        { name: "left", type: "etl" },
        { name: "right", type: "etl" },
        { name: "merge", type: "etl" },
      ],
      dependencies: [
        { target: "left", dependsOn: "fetch" },
        { target: "right", dependsOn: "fetch" },
        { target: "merge", dependsOn: "left" },
        { target: "merge", dependsOn: "right" },
      ],
    });
    expect(made.status).toBe(200);
    const pipeline = made.body.results as {
      id: string;
      errands: Array<{ id: string; name: string }>;
    };
    await d.page.goto(`${d.base}#/pipelines`);
    await d.page.getByRole("link", { name: "diamond" }).click();
    await shown(d.page.locator("svg.graph a.node"));
    expect(await d.page.locator("svg.graph a.node").count()).toBe(4);
    const edges = await d.page
      .locator("svg.graph path.edge")
      .evaluateAll((paths) =>
        paths.map((p) => `${p.getAttribute("data-from")}→${p.getAttribute("data-to")}`),
      );
    expect(edges.sort()).toEqual(["fetch→left", "fetch→right", "left→merge", "right→merge"]);
    expect(await d.page.locator('a.node[data-name="fetch"]').getAttribute("data-status")).toBe(
      "inactive",
    );
    expect(await d.page.locator('a.node[data-name="merge"]').getAttribute("data-status")).toBe(
      "blocked",
    );
    // A node follows its errand's status.
    const fetch = pipeline.errands.find((e) => e.name === "fetch");
    await claim(d, "etl");
    await shown(d.page.locator('a.node[data-name="fetch"][data-status="active"]'));
    await d.page.locator('a.node[data-name="fetch"]').click();
    await shown(d.page.locator("h1", { hasText: "fetch" }));
    expect(d.page.url()).toContain(`#/errand/${fetch?.id}`);
    stayedLocal(d);
  });

  test("with a token: signed out shows the form, signed in shows the views, sign out returns to the form", async () => {
    const d = await open({ env: { ERRANDS_TOKEN: TOKEN } });
    await create(d, "secret work", "private");
    await d.page.goto(d.base);
    await shown(d.page.getByLabel("Token"));
    expect(await d.page.getByRole("navigation", { name: "Views" }).count()).toBe(0);
    expect(await d.page.content()).not.toContain("private");
    await d.page.getByLabel("Token").fill("wrong");
    await d.page.getByRole("button", { name: "Sign in" }).click();
    await shown(d.page.getByRole("alert").filter({ hasText: "refused" }));
    await d.page.getByLabel("Token").fill(TOKEN);
    await d.page.getByRole("button", { name: "Sign in" }).click();
    await shown(d.page.locator('tr[data-type="private"]'));
    // The stream is open with the token too, and a reload keeps the session.
    await shown(d.page.locator(".live-state", { hasText: "live" }));
    await d.page.reload();
    await shown(d.page.locator('tr[data-type="private"]'));
    await d.page.getByRole("button", { name: "Sign out" }).click();
    await shown(d.page.getByLabel("Token"));
    expect(await d.page.locator('tr[data-type="private"]').count()).toBe(0);
    // The bearer and ?token= were sent to this server only; the refused attempt was a 401.
    const stream = d.requests.find((url) => url.includes("/v1/errands/notifications"));
    expect(stream).toContain(`token=${TOKEN}`);
    stayedLocal({ ...d, errors: d.errors.filter((e) => !e.includes("401")) });
  });

  test("a deep link survives a reload: the filter is in the URL", async () => {
    const d = await open();
    const { id } = await create(d, "broken", "jobs");
    await create(d, "fine", "jobs");
    await claim(d, "jobs");
    await d.api("PUT", `/v1/errand/${id}/failed`, { reason: "no" });
    await d.page.goto(`${d.base}#/errands?status=failed`);
    await shown(d.page.locator(`tr[data-id="${id}"]`));
    await d.page.reload();
    await shown(d.page.locator(`tr[data-id="${id}"]`));
    expect(await d.page.locator("table.errands tbody tr").count()).toBe(1);
    expect(await d.page.getByLabel("Status").inputValue()).toBe("failed");
    stayedLocal(d);
  });

  test("the Errands view shows the newest first, or the oldest when asked, and keeps the choice in the URL", async () => {
    const d = await open();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create(d, `job ${i}`, "ordered")).id);
    const firstRow = () => d.page.locator("table.errands tbody tr").first().getAttribute("data-id");
    await d.page.goto(`${d.base}#/errands`);
    await shown(d.page.locator(`tr[data-id="${ids[0]}"]`));
    expect(await firstRow()).toBe(ids[2] ?? "");
    // A new errand comes in at the top, without a reload.
    const { id: newest } = await create(d, "job 3", "ordered");
    await shown(d.page.locator(`tr[data-id="${newest}"]`));
    expect(await firstRow()).toBe(newest);
    await d.page.getByLabel("Order").selectOption("oldest");
    await d.page.waitForURL(/order=oldest/);
    await shown(
      d.page
        .locator("table.errands tbody tr")
        .first()
        .and(d.page.locator(`tr[data-id="${ids[0]}"]`)),
    );
    await d.page.reload();
    await shown(d.page.locator(`tr[data-id="${newest}"]`));
    expect(await firstRow()).toBe(ids[0] ?? "");
    expect(await d.page.getByLabel("Order").inputValue()).toBe("oldest");
    stayedLocal(d);
  });

  test("rows selected, then every errand matching the filter, are retried after a confirmation", async () => {
    const d = await open();
    const failed: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { id } = await create(d, `batch ${i}`, "bulk");
      await claim(d, "bulk");
      await d.api("PUT", `/v1/errand/${id}/failed`, { reason: "x" });
      failed.push(id);
    }
    await d.page.goto(`${d.base}#/errands?status=failed&type=bulk`);
    await shown(d.page.locator(`tr[data-id="${failed[0]}"]`));
    await d.page.getByLabel("Select batch 0").check();
    await d.page.getByRole("button", { name: "Retry selected" }).click();
    await d.page.getByRole("alertdialog").getByRole("button", { name: "Retry" }).click();
    await shown(d.page.getByRole("status").filter({ hasText: "1 done" }));
    await d.page.getByRole("button", { name: "Retry all matching" }).click();
    await d.page.getByRole("alertdialog").getByRole("button", { name: "Retry" }).click();
    await shown(d.page.getByRole("status").filter({ hasText: "3 done" }));
    const list = await d.api("GET", "/v1/errands/list/type/bulk");
    expect(list.body.results.map((e: { status: string }) => e.status)).toEqual(
      Array(4).fill("inactive"),
    );
    stayedLocal(d);
  });

  test("the live feed resumes after the stream drops, missing nothing", async () => {
    const d = await open();
    await d.page.goto(`${d.base}#/live`);
    await shown(d.page.locator(".live-state", { hasText: "live" }));
    await create(d, "before the drop", "feed");
    await shown(d.page.locator(".feed li", { hasText: "before the drop" }));
    d.app.streams.closeAll();
    // Written while the page has no stream: it comes with the resume.
    await create(d, "during the drop", "feed");
    await shown(d.page.locator(".feed li", { hasText: "during the drop" }));
    await shown(d.page.locator(".live-state", { hasText: "live" }));
    const streams = d.requests.filter((url) => url.includes("/v1/errands/notifications"));
    expect(streams.length).toBeGreaterThanOrEqual(2);
    expect(streams.at(-1)).toMatch(/lastEventId=\d+/);
    expect(await d.page.locator(".feed li", { hasText: "during the drop" }).count()).toBe(1);
    stayedLocal(d);
  });

  test("schedules are listed, follow their ticks, and are paused, resumed and deleted from the page", async () => {
    const d = await open();
    const put = await d.api("PUT", "/v1/schedules/digest", {
      every: 60_000,
      errand: { name: "weekly digest", type: "email" },
    });
    expect(put.status).toBe(201);
    await d.page.goto(`${d.base}#/schedules`);
    const row = d.page.locator('tr[data-name="digest"]');
    await shown(row.getByText("every 1m", { exact: true }));
    expect(await row.getByRole("link", { name: "its errand" }).count()).toBe(0);
    // A tick creates an errand: its event brings the last run and a link to it.
    d.app.clock.advance(60_000);
    await d.app.sweep();
    await shown(row.getByRole("link", { name: "its errand" }));
    const made = (await d.api("GET", "/v1/schedules/digest")).body.results;
    expect(await row.getByRole("link", { name: "its errand" }).getAttribute("href")).toBe(
      `#/errand/${made.lastErrandId}`,
    );
    await d.page.getByRole("button", { name: "Pause schedule digest" }).click();
    await shown(d.page.getByRole("button", { name: "Resume schedule digest" }));
    const paused = (await d.api("GET", "/v1/schedules/digest")).body.results;
    expect(paused).toMatchObject({ paused: true, every: 60_000, nextRunAt: null });
    expect(paused.errand).toEqual(made.errand);
    await d.page.getByRole("button", { name: "Resume schedule digest" }).click();
    await shown(d.page.getByRole("button", { name: "Pause schedule digest" }));
    expect((await d.api("GET", "/v1/schedules/digest")).body.results.paused).toBe(false);
    await d.page.getByRole("button", { name: "Delete schedule digest" }).click();
    await d.page.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
    await shown(d.page.getByText("No schedules."));
    expect((await d.api("GET", "/v1/schedules/digest")).status).toBe(404);
    stayedLocal(d);
  });

  test("a screenshot of each view, at desktop and phone widths", async () => {
    const d = await open();
    for (let i = 1; i <= 6; i++)
      await create(d, `resize photo ${i}`, "images", { priority: i % 3 });
    await create(d, "send the weekly digest", "email", { delay: 3_600_000 });
    await create(d, "renew certificates", "maintenance", { delay: 600_000, ttl: 5 });
    const worked = await claim(d, "images");
    await d.api("POST", `/v1/errand/${worked.id}/log`, {
      severity: "INFO",
      message: "Fetched 2.4 MB",
    });
    await d.api("PUT", `/v1/errand/${worked.id}`, { progress: 60 });
    await d.api("POST", `/v1/errand/${worked.id}/log`, {
      severity: "WARNING",
      message: "EXIF data is malformed; skipped",
    });
    await d.api("PUT", `/v1/errand/${worked.id}/completed`, {
      results: { width: 1024, height: 768 },
    });
    const broken = await claim(d, "images");
    await d.api("PUT", `/v1/errand/${broken.id}/failed`, {
      reason: "Error: unsupported format HEIC\n    at decode (img.js:12:7)",
    });
    await claim(d, "images");
    await d.api("PUT", "/v1/types/email", { paused: true });
    await d.api("PUT", "/v1/types/images", {
      concurrency: 4,
      rateLimit: { max: 50, perMs: 60_000 },
    });
    await d.api("PUT", "/v1/schedules/nightly-report", {
      cron: "30 2 * * *",
      timezone: "Europe/London",
      errand: { name: "nightly report", type: "etl" },
    });
    await d.api("PUT", "/v1/schedules/heartbeat-check", {
      every: 300_000,
      overlap: "skip",
      errand: { name: "check the fleet", type: "maintenance" },
    });
    const pipeline = await d.api("POST", "/v1/pipeline", {
      name: "nightly report",
      errands: [
        { name: "extract orders", type: "etl" },
        { name: "extract refunds", type: "etl" },
        { name: "join", type: "etl" },
        { name: "render PDF", type: "etl" },
        { name: "email finance", type: "etl" },
      ],
      dependencies: [
        { target: "join", dependsOn: "extract orders" },
        { target: "join", dependsOn: "extract refunds" },
        { target: "render PDF", dependsOn: "join" },
        { target: "email finance", dependsOn: "render PDF" },
      ],
    });
    const etl = await claim(d, "etl");
    await d.api("PUT", `/v1/errand/${etl.id}/completed`, { results: { rows: 1200 } });
    await claim(d, "etl");
    await d.app.sweep();

    const views: Array<[string, string, Locator | null]> = [
      ["overview", "#/", d.page.locator('tr[data-type="images"]')],
      ["errands", "#/errands", d.page.locator("table.errands tbody tr")],
      ["errand", `#/errand/${worked.id}`, d.page.getByText("EXIF data is malformed")],
      ["errand-failed", `#/errand/${broken.id}`, d.page.getByText("unsupported format")],
      ["pipelines", "#/pipelines", d.page.getByRole("link", { name: "nightly report" })],
      ["pipeline", `#/pipeline/${pipeline.body.results.id}`, d.page.locator("svg.graph a.node")],
      ["scheduled", "#/scheduled", d.page.getByText("send the weekly digest")],
      ["schedules", "#/schedules", d.page.locator('tr[data-name="nightly-report"]')],
      ["live", "#/live", null],
    ];
    for (const [name, hash, ready] of views) {
      await d.page.goto(`${d.base}${hash}`);
      if (ready) await shown(ready);
      else {
        await shown(d.page.locator(".live-state", { hasText: "live" }));
        await create(d, "thumbnail 7", "images");
        await claim(d, "images");
        await shown(d.page.locator(".feed li", { hasText: "thumbnail 7" }));
      }
      await d.screenshot(name);
    }
    await d.page.setViewportSize({ width: 390, height: 844 });
    for (const [name, hash, ready] of views.slice(0, 3)) {
      await d.page.goto(`${d.base}${hash}`);
      if (ready) await shown(ready);
      await d.screenshot(`${name}-phone`);
    }
    const signIn = await open({ env: { ERRANDS_TOKEN: TOKEN } });
    await signIn.page.goto(signIn.base);
    await shown(signIn.page.getByLabel("Token"));
    await signIn.screenshot("sign-in");
    stayedLocal(d);
  });
});

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + WAIT;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error("the condition did not hold in time");
    await Bun.sleep(25);
  }
}
