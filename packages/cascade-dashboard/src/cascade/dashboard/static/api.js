// Asking the dashboard's API as the page's reader: with the token typed in (or none).
import { $ } from "./dom.js";

// A header value is bytes: the token goes as its UTF-8 bytes, which the server compares.
export function bearer() {
  const token = $("token").value;
  return token ? { "Authorization": "Bearer " + String.fromCharCode(...new TextEncoder().encode(token)) } : {};
}
