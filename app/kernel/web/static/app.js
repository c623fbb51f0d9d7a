// encurta's own script: small enhancements of pages that work without it. No inline
// handlers anywhere (the CSP refuses them): behaviour hangs on data- attributes.
"use strict";

// <button data-copy="text" hidden>: shown where the clipboard can be written (https or
// localhost), copies its text.
function revealCopyButtons(root) {
  if (!navigator.clipboard) return;
  root.querySelectorAll("button[data-copy][hidden]").forEach((button) => {
    button.hidden = false;
  });
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const text = button.textContent;
  const name = button.getAttribute("aria-label");
  const say = (words) => {
    button.textContent = words;
    button.setAttribute("aria-label", words);
  };
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
    say("Copied");
  } catch {
    say("Not copied");
  }
  setTimeout(() => {
    button.textContent = text;
    if (name) button.setAttribute("aria-label", name);
  }, 2000);
});

document.addEventListener("DOMContentLoaded", () => revealCopyButtons(document));
// htmx swapped new content in (the list, after a search).
document.addEventListener("htmx:load", (event) => revealCopyButtons(event.detail.elt));
