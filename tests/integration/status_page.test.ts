/**
 * The admin status page (`GET /`) in a real headless Chromium against a running pgrelay with real sessions
 * on a real PostgreSQL: the page asks for the admin token (form or URL fragment), then shows the cluster's
 * host with its role and health, "pooling not configured" (no /pools yet), and each session with its user,
 * database, application_name, route, state and bytes; names a client chose (`<script>`, `<img onerror>`)
 * show as text and run nothing; the tables follow sessions that open and close without a reload. Screenshots
 * go to test-artifacts/ (gitignored).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { Page } from "playwright-core";
import { ARTIFACTS, type HeadlessChromium, launchChromium } from "../support/chromium.ts";
import { type ObservedPgrelay, startObservedPgrelay } from "../support/observed_pgrelay.ts";
import { RUNTIME } from "../support/pgrelay.ts";
import { waitFor } from "../support/wait.ts";

const SCRIPT_NAME = "tx-<script>window.__pwned = 1</script>";
const IMG_NAME = `<img src=x onerror="window.__pwned = 2">`;

type Row = string[];

const rowsOf = (page: Page, table: string): Promise<Row[]> =>
  page.$$eval(`#${table} tbody tr`, (trs) =>
    trs.map((tr) => Array.from((tr as unknown as { cells: ArrayLike<{ textContent: string | null }> }).cells, (td) => td.textContent ?? "")));

/**
 * A cell of `table` whose whole text is `text`. Waiting goes through locators, never a string predicate:
 * the page's CSP forbids eval, which is what Playwright's string waitForFunction needs.
 */
const cellOf = (page: Page, table: string, text: string) => page.locator(`#${table} tbody td`).getByText(text, { exact: true });

/** Columns of the sessions table. */
const S = { id: 0, user: 1, database: 2, application: 3, client: 4, route: 5, host: 6, state: 7, fromClient: 8, fromServer: 9 } as const;

describe("admin status page in headless Chromium", () => {
  let observed: ObservedPgrelay;
  let browser: HeadlessChromium;
  const clients: pg.Client[] = [];
  const consoleErrors: string[] = [];

  const connect = async (applicationName: string) => {
    const client = new pg.Client({
      host: "127.0.0.1",
      port: observed.relay.address.port,
      ...observed.pg.users.superuser,
      database: "postgres",
      application_name: applicationName,
      ssl: { rejectUnauthorized: false },
    });
    client.on("error", () => {});
    await client.connect();
    clients.push(client);
    return client;
  };

  const newPage = async () => {
    const page = await browser.context.newPage();
    page.on("console", (message) => {
      // The browser logs each answer that is not 2xx: 401 before the token is given, 404 for /pools (not here yet).
      if (message.type() === "error" && !/status of (401|404)/.test(message.text())) consoleErrors.push(message.text());
    });
    page.on("response", (response) => {
      const path = new URL(response.url()).pathname;
      if (response.status() === 404 && path !== "/pools") consoleErrors.push(`404 for ${path}`);
    });
    page.on("pageerror", (error) => consoleErrors.push(error.message));
    return page;
  };

  const sessionRow = (rows: Row[], application: string) => rows.find((row) => row[S.application] === application);

  before(async () => {
    observed = await startObservedPgrelay();
    await waitFor(async () => (await observed.get("/readyz")).status === 200, "the route's host to pass its health check", 30_000);
    const tx = await connect(SCRIPT_NAME);
    await tx.query("BEGIN");
    await tx.query("SELECT repeat('x', 100000)");
    await connect(IMG_NAME);
    const sleeper = await connect("sleeper");
    void sleeper.query("SELECT pg_sleep(600)").catch(() => {});
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await observed?.stop();
    await Promise.all(clients.map((client) => client.end().catch(() => {})));
  });

  it("GET / is served without the token, with a CSP that allows only its own script; the data still needs the token", async () => {
    const page = await fetch(observed.adminUrl + "/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+=*'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    const html = await page.text();
    assert.ok(!html.includes("sleeper") && !html.includes(observed.token), "the page itself holds no data and no token");
    assert.equal((await fetch(observed.adminUrl + "/sessions")).status, 401);
  });

  it("without a token the page asks for one and shows no data; with it (form) the tables fill", async () => {
    const page = await newPage();
    await page.goto(observed.adminUrl + "/");
    await page.waitForSelector("body[data-state=unauthorized]", { timeout: 30_000 });
    assert.match(await page.textContent("#error") ?? "", /needs its admin token/);
    assert.ok(await page.isVisible("#login"));
    assert.deepEqual(await rowsOf(page, "sessions"), []);
    await page.fill("#token", "wrong-token-0123456789");
    await page.click("#login button");
    await page.locator("#error", { hasText: "refused" }).waitFor({ timeout: 30_000 });
    await page.fill("#token", observed.token);
    await page.click("#login button");
    await page.waitForSelector("body[data-state=ok]", { timeout: 30_000 });
    assert.ok(!(await page.isVisible("#login")));
    assert.ok(sessionRow(await rowsOf(page, "sessions"), "sleeper"), "the sleeper session is listed");
    await page.close();
  });

  it("with the token in the URL fragment: clusters, pools and sessions, names escaped, fragment removed", async () => {
    const page = await newPage();
    await page.goto(`${observed.adminUrl}/#token=${encodeURIComponent(observed.token)}`);
    await page.waitForSelector("body[data-state=ok]", { timeout: 30_000 });
    assert.equal(new URL(page.url()).hash, "", "the token is taken out of the address bar");
    for (const name of [SCRIPT_NAME, IMG_NAME, "sleeper"]) await cellOf(page, "sessions", name).waitFor({ timeout: 30_000 });

    const clusters = await rowsOf(page, "clusters");
    assert.deepEqual(clusters.map((row) => row.slice(0, 4)), [["main", `127.0.0.1:${observed.pg.port}`, "primary", "up"]]);
    assert.deepEqual(await rowsOf(page, "pools"), [["pooling not configured"]]);

    const sessions = await rowsOf(page, "sessions");
    const { user } = observed.pg.users.superuser;
    const tx = sessionRow(sessions, SCRIPT_NAME);
    const img = sessionRow(sessions, IMG_NAME);
    const sleeper = sessionRow(sessions, "sleeper");
    assert.ok(tx && img && sleeper, `sessions shown: ${JSON.stringify(sessions)}`);
    for (const row of [tx, img, sleeper]) {
      assert.equal(row[S.user], user);
      assert.equal(row[S.database], "postgres");
      assert.equal(row[S.route], "default");
      assert.equal(row[S.host], `127.0.0.1:${observed.pg.port}`);
      assert.match(row[S.fromClient]!, /^\d+(\.\d)? (B|KiB)$/);
      assert.match(row[S.fromServer]!, /^\d+(\.\d)? (B|KiB|MiB)$/);
    }
    assert.equal(tx[S.state], "idle in transaction");
    assert.equal(img[S.state], "idle");
    assert.equal(sleeper[S.state], "active");
    assert.match(tx[S.fromServer]!, /KiB$/, "the 100 kB result counts");
    // The same numbers as /sessions: the page shows what the API says.
    const api = (await (await observed.get("/sessions")).json()) as { sessions: { id: string; application_name: string }[] };
    assert.equal(tx[S.id], api.sessions.find((s) => s.application_name === SCRIPT_NAME)?.id);

    // Names from clients are text: no element was made from them, no script ran.
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator("img").count(), 0);
    assert.equal(await page.locator("script").count(), 1);
    await page.screenshot({ path: join(ARTIFACTS, `status_page-${RUNTIME}.png`), fullPage: true });
    assert.deepEqual(consoleErrors, [], "no script error, CSP violation or missing resource");
    await page.close();
  });

  it("refreshes on its own: a new session appears and an ended one goes, without a reload", async () => {
    const page = await newPage();
    await page.goto(`${observed.adminUrl}/#token=${encodeURIComponent(observed.token)}`);
    await page.waitForSelector("body[data-state=ok]", { timeout: 30_000 });
    assert.equal(sessionRow(await rowsOf(page, "sessions"), "latecomer"), undefined);
    const late = await connect("latecomer");
    await cellOf(page, "sessions", "latecomer").waitFor({ timeout: 30_000 });
    await late.end();
    await cellOf(page, "sessions", "latecomer").waitFor({ state: "detached", timeout: 30_000 });
    await page.close();
  });

  it("renders /pools when pgrelay has it (the agreed shape, served by the browser here), escaped", async () => {
    const page = await newPage();
    const pool = {
      route: "default", cluster: "main", host: `127.0.0.1:${observed.pg.port}`, database: "<b>app</b>", user: "alice",
      mode: "transaction", clients_active: 3, clients_waiting: 2, servers_active: 3, servers_idle: 1, servers_used: 0, servers_login: 0,
    };
    await page.route(/\/pools$/, (route) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ pools: [pool] }) }));
    await page.goto(`${observed.adminUrl}/#token=${encodeURIComponent(observed.token)}`);
    await page.waitForSelector("body[data-state=ok]", { timeout: 30_000 });
    assert.deepEqual(await rowsOf(page, "pools"), [[
      "default", "main", `127.0.0.1:${observed.pg.port}`, "<b>app</b>", "alice", "transaction", "3", "2", "3", "1", "0", "0",
    ]]);
    assert.equal(await page.locator("#pools b").count(), 0);
    await page.screenshot({ path: join(ARTIFACTS, `status_page_pools-${RUNTIME}.png`), fullPage: true });
    await page.close();
  });
});
