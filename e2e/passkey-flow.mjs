// Passkeys in a real browser: headless Chromium with a virtual authenticator (the DevTools
// WebAuthn domain: a platform authenticator that keeps discoverable credentials and verifies its
// user) registers a passkey after a password login, logs out, signs in with the passkey alone
// (PASSKEY_LOGIN), then answers a password login's second step with it.
//
// WebAuthn needs a secure context and a domain for its relying party, so the page is served at
// http://localhost:E2E_PAGE_PORT (PASSKEY_RP_ID=localhost, PASSKEY_ORIGINS names that origin),
// with /api/ passed through to Tollgate as in the other flows. Run it with
// scripts/browser-test.sh.

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { launchChromium, startPageServer } from "./page-server.mjs";

const tollgate = new URL(process.env.E2E_TOLLGATE_URL ?? "http://127.0.0.1:8000");
const username = process.env.E2E_PASSKEY_USERNAME ?? "passkey-user";
const password = process.env.E2E_PASSWORD ?? "e2e-password";
const pagePort = Number(process.env.E2E_PAGE_PORT);
assert.ok(pagePort, "E2E_PAGE_PORT is set (scripts/browser-test.sh)");

const claims = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());

const server = await startPageServer({ tollgate, pages: { "/": "passkey.html" }, port: pagePort });
const origin = `http://localhost:${pagePort}`;
const browser = await launchChromium(chromium);
let failed = false;
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(10_000);
  const tab = await context.newPage();
  const devtools = await context.newCDPSession(tab);
  await devtools.send("WebAuthn.enable");
  const { authenticatorId } = await devtools.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await tab.goto(origin + "/");
  await tab.waitForFunction(() => document.getElementById("status").textContent === "loaded");
  console.log(`page at ${origin}, Tollgate at ${tollgate.origin}`);

  // A password login, then a passkey registered: the first factor comes with recovery codes.
  const login = await tab.evaluate(([u, p]) => window.logIn(u, p), [username, password]);
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.deepEqual(claims(login.body.access).amr, ["pwd"]);
  const registered = await tab.evaluate(([access]) => window.registerPasskey(access, "Laptop"), [login.body.access]);
  assert.equal(registered.status, 200, JSON.stringify(registered.body));
  assert.equal(registered.body.recovery_codes.length, 10);
  const { credentials } = await devtools.send("WebAuthn.getCredentials", { authenticatorId });
  assert.equal(credentials.length, 1, "the authenticator holds one credential");
  assert.equal(credentials[0].isResidentCredential, true, "a discoverable credential (PASSKEY_LOGIN)");
  console.log("registered a discoverable passkey; recovery codes shown");

  // Logged out (the page forgets its token); the passkey alone signs in.
  const signedIn = await tab.evaluate(() => window.signInWithPasskey());
  assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
  assert.deepEqual(claims(signedIn.body.access).amr, ["hwk"]);
  const me = await tab.evaluate(([access]) => window.me(access), [signedIn.body.access]);
  assert.equal(me.status, 200);
  assert.equal(me.body.username, username);
  console.log("signed in with the passkey alone: amr [\"hwk\"], /api/user/ answers");

  // The password alone no longer signs in; the passkey answers the second step.
  const first = await tab.evaluate(([u, p]) => window.logIn(u, p), [username, password]);
  assert.equal(first.status, 401, JSON.stringify(first.body));
  assert.equal(first.body.code, "mfa_required");
  assert.deepEqual(first.body.methods, ["passkey", "recovery_code"]);
  const second = await tab.evaluate(([t]) => window.secondFactorWithPasskey(t), [first.body.mfa_token]);
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.deepEqual(claims(second.body.access).amr, ["pwd", "hwk"]);
  console.log("password login: mfa_required, then the passkey as second factor: amr [\"pwd\", \"hwk\"]");

  // Without the authenticator's user, the assertion fails and nothing is issued.
  await devtools.send("WebAuthn.removeCredential", { authenticatorId, credentialId: credentials[0].credentialId });
  const refused = await tab.evaluate(() => window.signInWithPasskey().catch((err) => ({ status: 0, body: String(err) })));
  assert.notEqual(refused.status, 200, "no credential, no sign-in");
  console.log("passkey browser test passed");
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
