// Asking for the page to be drawn again: at most once per animation frame, however many
// changes came in between. The entry module names what draws it (render.js's paint()).

let painter = () => {};
let asked = false;

export function paintWith(paint) { painter = paint; }

export function schedule() {
  if (asked) return;
  asked = true;
  requestAnimationFrame(() => {
    asked = false;
    painter();
  });
}
