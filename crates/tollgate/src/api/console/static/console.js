// The console's one script: asks before a form with `data-confirm` does something hard to undo.
// Every page works without it; the server checks every form on its own.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
