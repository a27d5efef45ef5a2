// The console's one script. Every page works without it, and the server checks every form on
// its own; it adds what only a script can do:
// - asks before a form with `data-confirm` does something hard to undo;
// - signs in with a passkey as the second factor (second_factor.html): the form with
//   `data-passkey-begin` begins the ceremony there (a same-origin POST with the form's CSRF
//   token and mfa_token), asks the browser for the passkey, and sends its answer with the form.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// WebAuthn's binary fields travel as base64url text, as the server's options carry them.
const decode = (text) => Uint8Array.from(
  atob(text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=")),
  (c) => c.charCodeAt(0));
const encode = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function requestOptions(publicKey) {
  return {
    ...publicKey,
    challenge: decode(publicKey.challenge),
    allowCredentials: (publicKey.allowCredentials ?? []).map((c) => ({ ...c, id: decode(c.id) })),
  };
}

function assertionJson(credential) {
  const response = credential.response;
  return {
    id: credential.id,
    rawId: encode(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: encode(response.authenticatorData),
      clientDataJSON: encode(response.clientDataJSON),
      signature: encode(response.signature),
      userHandle: response.userHandle ? encode(response.userHandle) : null,
    },
    extensions: credential.getClientExtensionResults(),
  };
}

/// The words of a refusal the server answered in JSON: its `detail`, or its field messages.
function refusal(body) {
  if (body && typeof body.detail === "string") return body.detail;
  const messages = Object.values(body ?? {}).flat().filter((m) => typeof m === "string");
  return messages.length ? messages.join(" ") : "The passkey could not be used: reload the page.";
}

async function signInWithPasskey(form, status, button) {
  button.disabled = true;
  status.textContent = "Waiting for your passkey…";
  try {
    const fields = new URLSearchParams(new FormData(form));
    fields.delete("credential");
    const begun = await fetch(form.dataset.passkeyBegin, {
      method: "POST",
      body: fields,
      credentials: "same-origin",
    });
    const options = await begun.json().catch(() => null);
    if (!begun.ok || !options?.publicKey) throw new Error(refusal(options));
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
    form.elements.credential.value = JSON.stringify(assertionJson(credential));
    status.textContent = "Signing in…";
    form.submit();
  } catch (err) {
    status.textContent = err.name === "NotAllowedError"
      ? "No passkey was used. Try again, or use another factor."
      : err.message;
    button.disabled = false;
  }
}

if (window.PublicKeyCredential) {
  for (const form of document.querySelectorAll("form[data-passkey-begin]")) {
    const status = form.querySelector("[data-passkey-status]");
    const button = form.querySelector("button");
    form.hidden = false;
    for (const note of document.querySelectorAll("[data-passkey-unavailable]")) note.hidden = true;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      signInWithPasskey(form, status, button);
    });
  }
}
