// <section data-live="/api/stats/CODE/live" hidden>: shown where EventSource exists, lists
// the link's clicks as they happen (the newest first, the last 10) from the server-sent
// events of that URL. The browser reconnects by itself; a refusal (a 401 or 404) ends it.
"use strict";

const LIVE_KEEP = 10;

function describeClick(click) {
  const time = new Date(click.at).toLocaleTimeString();
  const from = click.referer_host === "direct" ? "direct" : `from ${click.referer_host}`;
  const who = click.bot ? "bot" : `${click.browser} on ${click.device}`;
  return `${time}: ${who}, ${click.country}, ${from}`;
}

function followLive(section) {
  if (!window.EventSource) return;
  section.hidden = false;
  const list = section.querySelector(".live-clicks");
  const status = section.querySelector("[data-live-status]");
  const source = new EventSource(section.dataset.live);
  const add = (text) => {
    const item = document.createElement("li");
    item.textContent = text;  // text, never markup: the values come from visitors
    list.prepend(item);
    while (list.children.length > LIVE_KEEP) list.lastElementChild.remove();
  };
  source.addEventListener("open", () => {
    status.textContent = "Waiting for clicks…";
  });
  source.addEventListener("click", (event) => {
    status.textContent = "Clicks as they happen:";
    add(describeClick(JSON.parse(event.data)));
  });
  source.addEventListener("missed", (event) => {
    add(`${JSON.parse(event.data).clicks} more clicks came too fast to show`);
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) status.textContent = "Live clicks stopped.";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(followLive);
});
