// The web console in a real browser: an ordinary user is refused; a staff member signs in,
// finds a user by search, revokes one of their sessions and deactivates them (the API then
// refuses their tokens: checked with fetch), reads both actions in the audit log, and creates
// an account on the New user form. Then a staff member whose second factor is a passkey (on a
// virtual authenticator) signs in with it. Every page is watched for Content-Security-Policy
// violations, and the console's pages are photographed into docs/images/ for docs/admin.md.
//
// The console is served by Tollgate itself (E2E_TOLLGATE_URL/admin/); for passkeys, which need a
// domain, at http://localhost on the same port (PASSKEY_RP_ID=localhost, PASSKEY_ORIGINS names
// it). Run it with scripts/browser-test.sh, which creates the accounts with the command line
// and starts Tollgate.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { chromium } from "playwright-core";
import { launchChromium } from "./page-server.mjs";

const tollgate = new URL(process.env.E2E_TOLLGATE_URL ?? "http://127.0.0.1:8000");
const staff = process.env.E2E_CONSOLE_STAFF ?? "console-staff";
const target = process.env.E2E_CONSOLE_TARGET ?? "console-target";
const passkeyStaff = process.env.E2E_CONSOLE_PASSKEY_STAFF ?? "console-passkey";
const consoleAtLocalhost = new URL(`http://localhost:${tollgate.port}`);
const password = process.env.E2E_PASSWORD ?? "e2e-password";
const images = new URL("../docs/images/", import.meta.url);

/// Logs `username` in through the API with `secret`, as a client with `userAgent`: the access
/// token. With the refresh cookie on, the login names Tollgate's own origin, as a browser would.
async function apiLogin(username, userAgent, secret = password) {
  const answer = await fetch(new URL("/api/token/", tollgate), {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Origin: tollgate.origin,
      "User-Agent": userAgent,
    },
    body: JSON.stringify({ username, password: secret }),
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

  // Every CSP violation on any page, reported from the page to this process.
  const violations = [];
  /// A browser context whose every page reports its CSP violations, and a tab in it.
  async function watchedTab() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(10_000);
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
    return { context, tab };
  }
  let { context, tab } = await watchedTab();
  const confirmations = [];
  tab.on("dialog", async (dialog) => {
    confirmations.push(dialog.message());
    await dialog.accept();
  });
  const heading = () => tab.getByRole("heading", { level: 1 }).textContent();
  const flash = () => tab.getByRole("status").textContent();

  /// Submits the sign-in form at `at`: the status of the answer to the password.
  async function signIn(username, at = tollgate) {
    await tab.goto(new URL("/admin/login/", at).href);
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

  // Creates an account on the New user form: a taken username is refused on the form, as
  // filled in; then the account's page follows, and it logs in through the API.
  await tab.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Users" }).click();
  await tab.getByRole("link", { name: "New user" }).click();
  assert.equal(await heading(), "New user");
  await tab.getByLabel("Username").fill(target);
  await tab.getByLabel("Email address (optional)").fill("new@example.com");
  const newPassword = "a-new-users-password-9";
  await tab.getByLabel("Password").fill(newPassword);
  await tab.getByRole("button", { name: "Create the account" }).click();
  await tab.waitForLoadState();
  assert.equal(await heading(), "New user");
  assert.match(await tab.getByRole("alert").textContent(), /A user with that username already exists/);
  assert.equal(await tab.getByLabel("Email address (optional)").inputValue(), "new@example.com");
  await tab.getByLabel("Username").fill("console-made");
  await tab.getByLabel("Password").fill(newPassword);
  await tab.getByRole("button", { name: "Create the account" }).click();
  await tab.waitForLoadState();
  assert.equal(await heading(), "User console-made");
  assert.match(await flash(), /The account console-made is created/);
  await apiLogin("console-made", "e2e new user", newPassword);
  console.log("created an account on the New user form; it logs in");

  // Signing out ends the console's session.
  await tab.getByRole("button", { name: "Sign out" }).click();
  await tab.waitForLoadState();
  assert.equal(await heading(), "Sign in");
  assert.match(await flash(), /You have signed out/);

  // A staff member whose second factor is a passkey: registered through the API from a console
  // page (the authenticator is the browser's), then the console's second step takes it.
  await context.close();
  ({ context, tab } = await watchedTab());
  const devtools = await context.newCDPSession(tab);
  await devtools.send("WebAuthn.enable");
  await devtools.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const access = await apiLogin(passkeyStaff, "e2e passkey");
  await tab.goto(new URL("/admin/login/", consoleAtLocalhost).href);
  const registered = await tab.evaluate(async (access) => {
    const decode = (text) => Uint8Array.from(
      atob(text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=")),
      (c) => c.charCodeAt(0));
    const encode = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const post = (path, body) => fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${access}` },
      body: JSON.stringify(body),
    });
    const begun = await (await post("/api/user/mfa/passkeys/", {})).json();
    const publicKey = begun.publicKey;
    const credential = await navigator.credentials.create({ publicKey: {
      ...publicKey,
      challenge: decode(publicKey.challenge),
      user: { ...publicKey.user, id: decode(publicKey.user.id) },
      excludeCredentials: [],
    } });
    const confirmed = await post("/api/user/mfa/passkeys/confirm/", {
      registration_token: begun.registration_token,
      name: "Console",
      credential: {
        id: credential.id,
        rawId: encode(credential.rawId),
        type: credential.type,
        response: {
          attestationObject: encode(credential.response.attestationObject),
          clientDataJSON: encode(credential.response.clientDataJSON),
        },
        extensions: credential.getClientExtensionResults(),
      },
    });
    return confirmed.status;
  }, access);
  assert.equal(registered, 200, "the passkey is registered");
  assert.equal(await signIn(passkeyStaff, consoleAtLocalhost), 200);
  assert.equal(await heading(), "Second factor");
  const usePasskey = tab.getByRole("button", { name: "Use a passkey" });
  assert.ok(await usePasskey.isVisible(), "the script shows the passkey button");
  assert.equal(await tab.getByLabel("Code from your authenticator app").count(), 0);
  await Promise.all([tab.waitForURL(/\/admin\/users\/$/), usePasskey.click()]);
  assert.equal(await heading(), "Users");
  assert.match(await flash(), /You have signed in/);
  const passkeySession = (await context.cookies()).find((c) => c.name === "tollgate_console");
  assert.deepEqual(
    JSON.parse(Buffer.from(passkeySession.value.split(".")[1], "base64url")).amr,
    ["pwd", "hwk"],
  );
  console.log(`${passkeyStaff} signed in to the console with a passkey: amr ["pwd", "hwk"]`);

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
