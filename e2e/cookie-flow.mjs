// The refresh cookie in a real browser: headless Chromium logs in on a small page, calls a
// protected endpoint, reloads (the access token is lost, the cookie refreshes it), and logs out;
// then logs in from two browsers, lists the sessions and logs out everywhere.
//
// The page is served by a small server in this process (page-server.mjs) that also passes /api/
// through to Tollgate (E2E_TOLLGATE_URL), so page and API share one origin, as behind a reverse
// proxy. Run it with scripts/browser-test.sh, which installs Chromium and playwright-core and
// starts Tollgate.

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { launchChromium, startPageServer } from "./page-server.mjs";

const tollgate = new URL(process.env.E2E_TOLLGATE_URL ?? "http://127.0.0.1:8000");
const username = process.env.E2E_USERNAME ?? "e2e";
const password = process.env.E2E_PASSWORD ?? "e2e-password";
const cookieName = "tollgate_refresh";

const server = await startPageServer({ tollgate, pages: { "/": "page.html" } });
const origin = server.origin;
const browser = await launchChromium(chromium);

async function refreshCookie(context) {
  return (await context.cookies(origin + "/api/token/")).find((c) => c.name === cookieName);
}

let failed = false;
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(10_000);
  const tab = await context.newPage();
  const statusIs = (text) => tab.waitForFunction(
    (expected) => document.getElementById("status").textContent === expected, text);

  console.log(`page at ${origin}, Tollgate at ${tollgate.origin}`);
  await tab.goto(origin + "/");
  await statusIs("signed out");

  // Log in: the access token in the body, the refresh token in an HttpOnly cookie only.
  await tab.fill("#username", username);
  await tab.fill("#password", password);
  await tab.click("#log-in");
  await statusIs(`signed in as ${username}`);
  const login = await tab.evaluate(() => window.lastLogin);
  assert.deepEqual(Object.keys(login.body), ["access"], "the login body holds no refresh token");
  const first = await refreshCookie(context);
  assert.ok(first, "the browser stored the refresh cookie");
  assert.equal(first.httpOnly, true);
  assert.equal(first.secure, true);
  assert.equal(first.sameSite, "Strict");
  assert.equal(first.path, "/api/token/");
  assert.ok(!(await tab.evaluate(() => document.cookie)).includes(cookieName),
    "page scripts cannot read the refresh cookie");
  console.log("logged in; protected endpoint answered; cookie is HttpOnly, Secure, SameSite=Strict");

  // Reload: the in-memory access token is gone; the page refreshes from the cookie alone.
  await tab.reload();
  await statusIs(`signed in as ${username}`);
  const refreshed = await tab.evaluate(() => window.lastRefresh);
  assert.equal(refreshed.status, 200);
  assert.deepEqual(Object.keys(refreshed.body), ["access"]);
  const rotated = await refreshCookie(context);
  assert.ok(rotated && rotated.value !== first.value, "refresh rotated the cookie");
  console.log("reloaded; refreshed from the cookie; protected endpoint answered");

  // Log out: the cookie's token is blacklisted and the cookie cleared.
  await tab.click("#log-out");
  await statusIs("logged out");
  assert.equal(await refreshCookie(context), undefined, "logout cleared the cookie");
  await tab.reload();
  await statusIs("signed out");
  console.log("logged out; the cookie is gone and a reload stays signed out");

  // The blacklisted token itself is refused too, were it replayed from elsewhere. With the
  // cookie on, refresh checks the origin whatever the body holds (its answer sets the cookie),
  // so this request names Tollgate's own.
  const replay = await fetch(new URL("/api/token/refresh/", tollgate), {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: tollgate.origin },
    body: JSON.stringify({ refresh: rotated.value }),
  });
  assert.equal(replay.status, 401);

  // Two browsers (two contexts, two user agents): the sessions list shows both, this one
  // marked; logging out everywhere from one signs both out.
  const other = await browser.newContext({ userAgent: "e2e second browser" });
  other.setDefaultTimeout(10_000);
  const otherTab = await other.newPage();
  for (const t of [tab, otherTab]) {
    await t.goto(origin + "/");
    await t.waitForFunction(() => document.getElementById("status").textContent === "signed out");
    await t.fill("#username", username);
    await t.fill("#password", password);
    await t.click("#log-in");
    await t.waitForFunction(
      (expected) => document.getElementById("status").textContent === expected,
      `signed in as ${username}`);
  }
  await tab.click("#sessions");
  await statusIs("2 sessions");
  const listed = await tab.evaluate(() => window.lastSessions.body);
  assert.equal(listed.filter((s) => s.current).length, 1);
  assert.notEqual(listed.find((s) => s.current).user_agent, "e2e second browser");
  assert.ok(listed.some((s) => !s.current && s.user_agent === "e2e second browser"));
  console.log("two browsers: both sessions listed, this one marked current");
  await tab.click("#log-out-everywhere");
  await statusIs("logged out everywhere");
  for (const t of [tab, otherTab]) {
    await t.reload();
    await t.waitForFunction(() => document.getElementById("status").textContent === "signed out");
  }
  console.log("logged out everywhere; neither browser's cookie refreshes any more");
  console.log("browser test passed");
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
