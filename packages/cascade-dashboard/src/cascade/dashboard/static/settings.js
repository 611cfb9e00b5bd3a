// The Settings place (admins only): the webhooks a team's dashboard posts its notifications to,
// over its admin API (GET, POST and DELETE /api/settings/webhooks): the list (each URL shown
// shortened: it is a secret), a form that adds one with its format, events and filters, and a
// remove button per webhook. Whoever is not an admin is told the place is for admins (the API
// refuses them too); a
// dashboard without a team (no --roles) has no such settings, and says so. Every string from
// the dashboard reaches the page through textContent or setAttribute only.
import { ask, bearer, control } from "./api.js";
import { $, el, fillTable, row } from "./dom.js";

const NO_TEAM = "Settings are a team's dashboard's (cascade dashboard --roles FILE): this one has none.";
let started = false;

function said(text, className = "note") {
  $("st-note").textContent = text;
  $("st-note").className = className;
}

// The webhooks, read again (when Settings is shown, and after each change).
async function loadWebhooks() {
  let answer;
  try {
    answer = await ask("GET", "/api/settings/webhooks");
  } catch (error) {
    $("st-body").hidden = true;
    if (error.status === 404) said(NO_TEAM);
    else if (error.status === 403) said("Settings are for admins: " + error.message, "error");
    else if (error.status === 401) said("Sign in to see the settings (they are for admins).", "error");
    else said("settings: " + error.message, "error");
    return;
  }
  $("st-body").hidden = false;
  said(answer.available ? "" : answer.why || "");
  $("st-add-button").disabled = !answer.available;
  fillTable($("st-webhooks"), answer.webhooks.map((webhook) => {
    const remove = el("button", "remove");
    remove.type = "button";
    remove.setAttribute("aria-label", "remove webhook " + webhook.id);
    remove.addEventListener("click", () => removeWebhook(webhook));
    const tr = row([webhook.id, webhook.url, webhook.format, (webhook.events || []).join(", "),
      (webhook.filters || []).join(", ") || "every run", webhook.created_by || "-", remove]);
    tr.setAttribute("data-webhook", String(webhook.id));
    return tr;
  }));
}

function removeWebhook(webhook) {
  const url = "/api/settings/webhooks/" + encodeURIComponent(webhook.id);
  control($("st-status"), { sending: "removing webhook " + webhook.id + "…", method: "DELETE", url },
    (answer) => "removed webhook " + answer.webhook.id + " (" + answer.webhook.url + ")")
    .then(loadWebhooks);
}

function addWebhook(event) {
  event.preventDefault();
  const events = [...$("st-events").querySelectorAll("input:checked")].map((box) => box.value);
  const filters = $("st-filters").value.split(",").map((text) => text.trim()).filter(Boolean);
  const body = { url: $("st-url").value.trim(), format: $("st-format").value, events, filters };
  control($("st-status"), { sending: "adding the webhook…", method: "POST", url: "/api/settings/webhooks", body },
    (answer) => {
      $("st-url").value = "";
      return "added webhook " + answer.webhook.id + " (" + answer.webhook.url + ")";
    }).then(loadWebhooks);
}

// Who is asking (/api/me): a team's admin gets the webhooks; anyone else is told why not, the
// webhooks' API not asked (it would refuse them, and count the refusal).
async function whoAsks() {
  try {
    const response = await fetch("/api/me", { headers: bearer(), cache: "no-store" });
    return { status: response.status, me: await response.json() };
  } catch (error) {
    return { status: 0, me: {} };
  }
}

// Settings shown: its webhooks read, if the asker is an admin (the form's handler set once).
export async function showSettings() {
  if (!started) {
    started = true;
    $("st-add").addEventListener("submit", addWebhook);
  }
  const { status, me } = await whoAsks();
  $("st-body").hidden = true;
  if (status === 401) {
    said("Sign in to see the settings (they are for admins).", "error");
  } else if (status === 200 && !("role" in me)) {
    said(NO_TEAM);
  } else if (status === 200 && me.role !== "admin") {
    said("Settings are for admins: you are signed in as " + me.name + " (" + (me.role || "no role") + ").",
      "error");
  } else {
    loadWebhooks();
  }
}
