// The web console in a real browser: an ordinary user is refused; a staff member signs in,
// finds a user by search, revokes one of their sessions and deactivates them (the API then
// refuses their tokens: checked with fetch), and reads both actions in the audit log. Every
// page is watched for Content-Security-Policy violations, and the console's pages are
// photographed into docs/images/ for docs/admin.md.
//
// The console is served by Tollgate itself (E2E_TOLLGATE_URL/admin/). Run it with
// scripts/browser-test.sh, which creates the accounts with the command line and starts Tollgate.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { chromium } from "playwright-core";
import { launchChromium } from "./page-server.mjs";

const tollgate = new URL(process.env.E2E_TOLLGATE_URL ?? "http://127.0.0.1:8000");
const staff = process.env.E2E_CONSOLE_STAFF ?? "console-staff";
const target = process.env.E2E_CONSOLE_TARGET ?? "console-target";
const password = process.env.E2E_PASSWORD ?? "e2e-password";
const images = new URL("../docs/images/", import.meta.url);

/// Logs `username` in through the API, as a client with `userAgent`: the access token. With
/// the refresh cookie on, the login names Tollgate's own origin, as a browser would.
async function apiLogin(username, userAgent) {
  const answer = await fetch(new URL("/api/token/", tollgate), {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Origin: tollgate.origin,
      "User-Agent": userAgent,
    },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(answer.status, 200, `API login of ${username}`);
  return (await answer.json()).access;
}

/// What the API answers to a request with `access`: its status and body.
async function apiIndex(access) {
  const answer = await fetch(new URL("/api/index/", tollgate), {
    headers: { Authorization: `Bearer ${access}` },
  });
  return { status: answer.status, body: await answer.json() };
}

const browser = await launchChromium(chromium);
let failed = false;
try {
  await mkdir(images, { recursive: true });
  // Two sessions of the target: one to revoke, one whose token shows the deactivation.
  const kept = await apiLogin(target, "e2e laptop");
  const revoked = await apiLogin(target, "e2e phone");

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(10_000);
  // Every CSP violation on any page, reported from the page to this process.
  const violations = [];
  await context.exposeFunction("reportViolation", (violation) => violations.push(violation));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      window.reportViolation({
        page: location.href,
        directive: event.violatedDirective,
        blocked: event.blockedURI,
      });
    });
  });
  const tab = await context.newPage();
  tab.on("console", (message) => {
    if (message.type() === "error" && /Content.Security.Policy/i.test(message.text())) {
      violations.push({ page: tab.url(), console: message.text() });
    }
  });
  const confirmations = [];
  tab.on("dialog", async (dialog) => {
    confirmations.push(dialog.message());
    await dialog.accept();
  });
  const heading = () => tab.getByRole("heading", { level: 1 }).textContent();
  const flash = () => tab.getByRole("status").textContent();

  /// Submits the sign-in form: the status of the answer to the password.
  async function signIn(username) {
    await tab.goto(new URL("/admin/login/", tollgate).href);
    await tab.getByLabel("Username").fill(username);
    await tab.getByLabel("Password").fill(password);
    const [answer] = await Promise.all([
      tab.waitForResponse((r) => r.url().endsWith("/admin/login/") && r.request().method() === "POST"),
      tab.getByRole("button", { name: "Sign in" }).click(),
    ]);
    await tab.waitForLoadState();
    return answer.status();
  }

  // An ordinary user knows their password, and is refused all the same.
  assert.equal(await signIn(target), 403);
  assert.equal(await heading(), "You cannot use the console");
  assert.equal((await context.cookies()).filter((c) => c.name === "tollgate_console").length, 0);
  console.log("an ordinary user is refused (403)");

  // A staff member signs in: the session lives in an HttpOnly cookie scoped to the console.
  assert.equal(await signIn(staff), 303);
  assert.equal(await heading(), "Users");
  assert.match(await flash(), /You have signed in/);
  const session = (await context.cookies()).find((c) => c.name === "tollgate_console");
  assert.ok(session, "the session cookie is set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.equal(session.path, "/admin/");
  assert.equal(await tab.evaluate(() => document.cookie), "", "pages cannot read the cookie");
  await tab.screenshot({ path: new URL("admin-users.png", images).pathname, fullPage: true });
  console.log(`${staff} signed in`);

  // From the keyboard: the first Tab reaches the skip link, which leads to the main content.
  await tab.reload();
  await tab.keyboard.press("Tab");
  assert.equal(await tab.evaluate(() => document.activeElement.textContent), "Skip to content");
  await tab.keyboard.press("Enter");
  assert.equal(await tab.evaluate(() => document.activeElement.id), "main");

  // Finds the target by search and opens their page.
  await tab.getByLabel("Search").fill(target);
  await tab.getByRole("button", { name: "Find" }).click();
  await tab.waitForURL(/search=/);
  const rows = tab.locator("tbody tr");
  assert.equal(await rows.count(), 1, "the search finds the one account");
  await tab.getByRole("link", { name: target, exact: true }).click();
  assert.equal(await heading(), `User ${target}`);
  const sessions = tab.getByRole("table", { name: /Live sessions/ }).locator("tbody tr");
  assert.equal(await sessions.count(), 2);
  await tab.screenshot({ path: new URL("admin-user.png", images).pathname, fullPage: true });

  // Revokes the phone's session: its access token is refused, the laptop's still works.
  await sessions.filter({ hasText: "e2e phone" }).getByRole("button", { name: /^Revoke/ }).click();
  await tab.waitForLoadState();
  assert.match(await flash(), /The session is revoked/);
  assert.equal(await sessions.count(), 1);
  assert.equal((await apiIndex(revoked)).status, 401);
  assert.equal((await apiIndex(kept)).status, 200);
  console.log("revoked one session; its access token is refused");

  // Deactivates the target (the page asks first): the API refuses their token at once.
  await tab.getByRole("button", { name: "Deactivate the account" }).click();
  await tab.waitForLoadState();
  assert.deepEqual(confirmations, [`Deactivate ${target}?`], "the console's script asked");
  assert.match(await flash(), /The account is deactivated/);
  const refused = await apiIndex(kept);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, "user_inactive");
  console.log("deactivated; the API answers user_inactive");

  // Both actions are in the audit log, under the staff member's name.
  await tab.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Audit log" }).click();
  assert.equal(await heading(), "Audit log");
  const entries = tab.getByRole("table", { name: /Administrative actions/ }).locator("tbody tr");
  const texts = await entries.allTextContents();
  const about = (action) => texts.find((t) => t.includes(action) && t.includes(target));
  assert.ok(about("session.revoke")?.includes(staff), `session.revoke by ${staff}: ${texts}`);
  assert.ok(about("user.update")?.includes("is_active: false"), `user.update: ${texts}`);
  await tab.screenshot({ path: new URL("admin-audit.png", images).pathname, fullPage: true });
  console.log("the audit log lists both actions");

  // Signing out ends the console's session.
  await tab.getByRole("button", { name: "Sign out" }).click();
  await tab.waitForLoadState();
  assert.equal(await heading(), "Sign in");
  assert.match(await flash(), /You have signed out/);

  assert.deepEqual(violations, [], "no page raised a Content-Security-Policy violation");
  console.log("no Content-Security-Policy violation on any page");
  console.log("console browser test passed");
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
