// Who signed in to a team's dashboard: their name and a sign-out form, or a link to sign in.
import { bearer } from "./api.js";
import { $ } from "./dom.js";

export let signedIn = false; // by a session cookie: the controls need no token then (render.js)

// Whether the page may read, as the latest showWho found: pending until the first has answered,
// so that what a place asks for on its own (the run page's workflows) waits for it rather
// than asking a team's dashboard before anyone signed in (and being refused).
let settleFirst;
let readable = new Promise((resolve) => { settleFirst = resolve; });
export function mayRead() { return readable; }

// A team's dashboard: the name of whoever signed in and, for a session of the dashboard's own,
// a sign-out form; nobody yet, a link to the sign-in page that comes back here. Whether the
// page may read: a team's dashboard shows nothing to someone not signed in.
export async function showWho() {
  const may = await whoIsIt();
  settleFirst(may);
  readable = Promise.resolve(may);
  return may;
}

async function whoIsIt() {
  let response, answer;
  try {
    response = await fetch("/api/me", { headers: bearer() });
    answer = await response.json();
  } catch (error) {
    return true; // an older dashboard, or none: nothing to show
  }
  $("who").hidden = $("sign-in").hidden = $("sign-out").hidden = true;
  if (response.ok) {
    signedIn = answer.via !== "token";
    $("who").textContent = answer.name + (answer.role ? " (" + answer.role + ")" : "");
    $("who").hidden = false;
    $("sign-out").hidden = !answer.sign_out;
  } else if (typeof answer.sign_in === "string" && answer.sign_in.startsWith("/")) {
    $("sign-in").setAttribute("href",
      answer.sign_in + "?next=" + encodeURIComponent(location.pathname + location.search));
    $("sign-in").hidden = false;
    const badge = $("connection");
    badge.textContent = "sign in to see this dashboard";
    badge.className = "badge bad";
    return false;
  }
  return true;
}
