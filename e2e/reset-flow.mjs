// Password reset by mail in a real browser: headless Chromium asks for a link on a small reset
// page, the mail is read from the Maildir of the SMTP server Tollgate sends through, the browser
// opens the link and sets a new password, then logs in with it (the old one refused); the link
// works once.
//
// The pages are served as in cookie-flow.mjs (page-server.mjs: page and API on one origin), on
// E2E_PAGE_PORT, which Tollgate's PASSWORD_RESET_URL names:
// http://127.0.0.1:E2E_PAGE_PORT/password/reset/confirm/{uid}/{token}. Run it with
// scripts/browser-test.sh, which also starts the SMTP server (aiosmtpd, into E2E_MAILDIR).

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { launchChromium, startPageServer } from "./page-server.mjs";

const tollgate = new URL(process.env.E2E_TOLLGATE_URL ?? "http://127.0.0.1:8000");
const username = process.env.E2E_USERNAME ?? "e2e";
const password = process.env.E2E_PASSWORD ?? "e2e-password";
const email = process.env.E2E_EMAIL ?? "e2e@example.com";
const newPassword = process.env.E2E_NEW_PASSWORD ?? "e2e-new-passphrase-42";
const maildir = process.env.E2E_MAILDIR;
const pagePort = Number(process.env.E2E_PAGE_PORT);
assert.ok(maildir && pagePort, "E2E_MAILDIR and E2E_PAGE_PORT are set (scripts/browser-test.sh)");

// Mail, as aiosmtpd's Mailbox handler stores it: one file per message in new/ (or cur/).

/// Header lines with their continuation lines joined, as [lower-case name, value] pairs.
function headers(head) {
  const lines = [];
  for (const line of head.split("\n")) {
    if (/^[ \t]/.test(line) && lines.length) lines[lines.length - 1] += " " + line.trim();
    else lines.push(line);
  }
  return lines.map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  });
}

function header(list, name) {
  return (list.find(([key]) => key === name) ?? [])[1] ?? "";
}

function quotedPrintable(text) {
  const joined = text.replace(/=\n/g, "");
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    const hex = joined.slice(i + 1, i + 3);
    if (joined[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i], "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/// A part's content, decoded by its Content-Transfer-Encoding.
function decode(list, content) {
  const encoding = header(list, "content-transfer-encoding").toLowerCase();
  if (encoding === "quoted-printable") return quotedPrintable(content);
  if (encoding === "base64") return Buffer.from(content.replace(/\s/g, ""), "base64").toString("utf8");
  return content;
}

/// A message's recipient, subject and text/plain part.
function parseMail(raw) {
  const text = raw.replace(/\r\n/g, "\n");
  const split = text.indexOf("\n\n");
  const head = headers(text.slice(0, split));
  const body = text.slice(split + 2);
  const mail = { to: header(head, "to"), subject: header(head, "subject"), text: null };
  const boundary = header(head, "content-type").match(/boundary="?([^";]+)"?/);
  if (!boundary) {
    mail.text = decode(head, body);
    return mail;
  }
  for (const part of body.split(`--${boundary[1]}`)) {
    const trimmed = part.replace(/^\n+/, "");
    const end = trimmed.indexOf("\n\n");
    if (end < 0) continue;
    const partHead = headers(trimmed.slice(0, end));
    if (header(partHead, "content-type").toLowerCase().startsWith("text/plain")) {
      mail.text = decode(partHead, trimmed.slice(end + 2));
      break;
    }
  }
  return mail;
}

async function delivered() {
  const mails = [];
  for (const sub of ["new", "cur"]) {
    const dir = join(maildir, sub);
    const names = await readdir(dir).catch(() => []);
    for (const name of names.sort()) mails.push(parseMail(await readFile(join(dir, name), "utf8")));
  }
  return mails;
}

/// Waits for a mail to `email` with `subject`.
async function mailWith(subject) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = (await delivered()).find((m) => m.to.includes(email) && m.subject === subject);
    if (found) return found;
    assert.ok(Date.now() < deadline, `no mail "${subject}" to ${email} in ${maildir}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const server = await startPageServer({
  tollgate,
  pages: { "/": "page.html", "/password/reset/": "reset.html" },
  port: pagePort,
});
const origin = server.origin;
const browser = await launchChromium(chromium);

let failed = false;
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(10_000);
  const tab = await context.newPage();
  const statusIs = (text) => tab.waitForFunction(
    (expected) => document.getElementById("status").textContent === expected, text);

  console.log(`pages at ${origin}, Tollgate at ${tollgate.origin}, mail in ${maildir}`);
  await tab.goto(origin + "/password/reset/");
  await statusIs("forgot your password?");
  await tab.fill("#email", email);
  await tab.click("#ask-reset");
  await statusIs("link sent");
  console.log("asked for a reset link");

  const mail = await mailWith("Reset your password");
  const prefix = `${origin}/password/reset/confirm/`;
  const start = mail.text.indexOf(prefix);
  assert.ok(start >= 0, `the mail links to the reset page: ${mail.text}`);
  const link = mail.text.slice(start).split(/\s/)[0];
  console.log("the mail arrived with a link to the reset page");

  await tab.goto(link);
  await statusIs("choose a new password");
  await tab.fill("#new-password", newPassword);
  await tab.click("#set-password");
  await statusIs("password set");
  console.log("the link's page set a new password");

  // The old password is refused, the new one logs in.
  await tab.goto(origin + "/");
  await statusIs("signed out");
  await tab.fill("#username", username);
  await tab.fill("#password", password);
  await tab.click("#log-in");
  await statusIs("login failed 401");
  await tab.fill("#password", newPassword);
  await tab.click("#log-in");
  await statusIs(`signed in as ${username}`);
  console.log("the old password is refused; the new one logs in");

  // The link works once.
  await tab.goto(link);
  await statusIs("choose a new password");
  await tab.fill("#new-password", "yet-another-passphrase-7");
  await tab.click("#set-password");
  await statusIs("reset failed 400");
  const spent = await tab.evaluate(() => window.lastConfirm.body);
  assert.deepEqual(spent, { token: ["Invalid token for given user."] });
  const notice = await mailWith("Your password was changed");
  assert.ok(!notice.text.includes(link), "the notice does not repeat the link");
  console.log("the link is spent; the notice of the change arrived");
  console.log("reset test passed");
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
