// amodal-agent result page. Plain DOM code, no framework: the layer panel drives the inline SVG's
// Inkscape layer groups directly, and the run's story is built from the JSON in #run-data.
// Every text from the run goes in through textContent, never as HTML.
"use strict";

const data = JSON.parse(document.getElementById("run-data").textContent);
const svg = document.querySelector("#stage > svg");
const list = document.getElementById("layer-list");
const SVG_NS = "http://www.w3.org/2000/svg";
let selectedId = null;
let soloId = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// ------------------------------------------------------------------------------------- layers

function layerGroups() {  // back to front, as in the file
  if (!svg) return [];
  return [...svg.children].filter((g) => g.localName === "g" && g.getAttribute("inkscape:groupmode") === "layer");
}

function isHidden(g) { return g.getAttribute("display") === "none"; }

function setHidden(g, hidden) {
  if (hidden) g.setAttribute("display", "none");
  else g.removeAttribute("display");
}

function thumbnail(g) {
  const thumb = document.createElementNS(SVG_NS, "svg");
  thumb.setAttribute("class", "thumb");
  thumb.setAttribute("viewBox", svg.getAttribute("viewBox"));
  const copy = g.cloneNode(true);
  copy.removeAttribute("id");
  copy.removeAttribute("display");
  thumb.append(copy);
  return thumb;
}

function meta(id) {
  const m = data.layers[id];
  if (!m) return "";
  const parts = [];
  if (m.paths != null) parts.push(`${m.paths} paths`);
  if (m.psnr != null) parts.push(`${m.psnr} dB`);
  if (m.inpaint) parts.push(`hole: ${m.inpaint}`);
  return parts.join(" · ");
}

function button(action, label, title, pressed) {
  const b = el("button", { type: "button", "data-action": action, title, text: label });
  if (pressed !== undefined) b.setAttribute("aria-pressed", String(pressed));
  return b;
}

function visibility(g) {
  const box = el("input", { type: "checkbox", "data-action": "visible", title: "Show or hide this layer" });
  box.checked = !isHidden(g);
  return el("label", { class: "visible" }, box, "visible");
}

function renderPanel() {
  list.replaceChildren();
  const groups = layerGroups();
  groups.slice().reverse().forEach((g, i) => {
    const label = g.getAttribute("inkscape:label") || g.id;
    const li = el("li", { class: "layer", "data-id": g.id });
    li.classList.toggle("selected", g.id === selectedId);
    li.classList.toggle("hidden", isHidden(g));
    const up = button("up", "up", "Move towards the front");
    const down = button("down", "down", "Move towards the back");
    up.disabled = i === 0;
    down.disabled = i === groups.length - 1;
    li.append(thumbnail(g),
      el("div", { class: "name", title: label }, label, el("small", { text: meta(g.id) })),
      el("div", { class: "buttons" },
        visibility(g),
        up, down, button("solo", "solo", "Show this layer alone", soloId === g.id)));
    list.append(li);
  });
  drawSelection();
}

function drawSelection() {
  if (!svg) return;
  let box = svg.querySelector(":scope > rect.selection");
  const g = selectedId && document.getElementById(selectedId);
  if (!g || isHidden(g)) { if (box) box.remove(); return; }
  if (!box) {
    box = document.createElementNS(SVG_NS, "rect");
    box.setAttribute("class", "selection");
  }
  svg.append(box);  // always last: drawn above every layer
  const b = g.getBBox();
  for (const [k, v] of Object.entries({ x: b.x, y: b.y, width: b.width, height: b.height })) box.setAttribute(k, v);
}

function act(action, id) {
  const g = document.getElementById(id);
  const groups = layerGroups();
  const at = groups.indexOf(g);
  if (action === "visible") {
    setHidden(g, !isHidden(g));
    soloId = null;
  } else if (action === "up" && at < groups.length - 1) {
    groups[at + 1].after(g);
  } else if (action === "down" && at > 0) {
    groups[at - 1].before(g);
  } else if (action === "solo") {
    const alone = soloId !== id;
    for (const other of groups) setHidden(other, alone && other !== g);
    soloId = alone ? id : null;
  }
  renderPanel();  // the selection stays where it was, as an editor's eye and stacking buttons leave it
}

list.addEventListener("click", (event) => {
  const li = event.target.closest("li.layer");
  if (!li) return;
  const control = event.target.closest("button, input");
  if (control) act(control.dataset.action, li.dataset.id);
  else if (event.target.closest("label")) return;  // the click reaches the checkbox next
  else { selectedId = li.dataset.id; renderPanel(); }
});

if (svg) {
  svg.addEventListener("click", (event) => {
    const groups = layerGroups();
    let node = event.target;
    while (node && !groups.includes(node)) node = node.parentNode;
    selectedId = node ? node.id : null;
    renderPanel();
    const li = selectedId && list.querySelector(`li[data-id="${CSS.escape(selectedId)}"]`);
    if (li) li.scrollIntoView({ block: "nearest" });
  });
} else {
  const stage = document.getElementById("stage");
  stage.append(el("p", { class: "empty", text: "This run wrote no result.svg." }));
  for (const png of data.layers_so_far) {
    stage.append(el("figure", {}, el("img", { src: png, alt: png }), el("figcaption", { text: png })));
  }
}

// ------------------------------------------------------------------------------------- summary

function fmt(value) {
  if (value == null) return "";
  if (typeof value !== "object") return String(value);
  if (Array.isArray(value)) return value.map(fmt).join("\n");
  const short = (v) => (typeof v === "object" && v ? (Array.isArray(v) ? v.join(", ") : JSON.stringify(v)) : v);
  return Object.entries(value).map(([k, v]) => `${k} ${short(v)}`).join("  ·  ");
}

function renderSummary() {
  const s = data.summary;
  document.getElementById("title").textContent = data.title;
  const status = document.getElementById("status");
  status.textContent = s.status || "(no manifest)";
  if (s.status === "error") status.classList.add("error");
  document.getElementById("reason").textContent = s.reason || "";
  const rows = [
    ["planner", [s.planner, s.model, s.endpoint].filter(Boolean).join(" · ")],
    ["hints", s.hints], ["hints not honoured", s.hints_not_honored], ["backends", s.backends],
    ["model turns", s.model_turns], ["result", s.result], ["joint refinement", s.stack_refine],
    ["timings (s)", s.timings_s], ["seeds", s.seeds], ["canvas", s.canvas], ["notes", s.notes],
    ["forked from", s.fork_of], ["resumed", s.resumes], ["exports", s.exports], ["versions", s.versions],
  ];
  const dl = document.getElementById("summary-list");
  for (const [name, value] of rows) {
    const text = fmt(value);
    if (text) dl.append(el("dt", { text: name }), el("dd", { text }));
  }
}

// ------------------------------------------------------------------------------------- story

function logItem(entry) {
  if (entry.type !== "call") return el("li", { class: entry.type, text: entry.text });
  const failed = entry.result && "error" in entry.result;
  const args = entry.arguments == null ? "(unparsed)" : JSON.stringify(entry.arguments);
  return el("li", { class: failed ? "call failed" : "call" },
    el("code", { text: `${entry.name}(${args})` }),
    el("pre", { text: entry.result == null ? "(no result)" : `→ ${JSON.stringify(entry.result)}` }));
}

function renderTurn(turn) {
  const extra = [];
  if (turn.latency_s != null) extra.push(`${turn.latency_s} s`);
  if (turn.attempts > 1) extra.push(`${turn.attempts} attempts`);
  extra.push(`${turn.messages_in_request} messages, ${turn.images_in_request} image(s) in the request`);
  const article = el("article", { class: "turn", "data-turn": turn.turn },
    el("h3", {}, `Turn ${turn.turn}`, el("small", { text: extra.join(" · ") })));
  const seen = el("div", { class: "seen" });
  for (const message of turn.seen) {
    if (message.text) seen.append(el("p", { text: message.text }));
    for (const image of message.images) {
      const caption = el("figcaption", { text: image.kind + (image.missing ? " (missing)" : "") });
      seen.append(el("figure", {}, image.missing ? null : el("img", { src: image.src, alt: image.kind }),
        caption));
    }
  }
  if (turn.seen.length) article.append(seen);
  if (turn.reasoning) article.append(el("p", { class: "reasoning", text: turn.reasoning }));
  if (turn.text) article.append(el("p", { class: "answer", text: turn.text }));
  if (turn.quirks && turn.quirks.length) article.append(el("p", { class: "quirks", text: `parsed: ${turn.quirks.join(", ")}` }));
  const log = el("ul", { class: "log" });
  turn.log.forEach((entry) => log.append(logItem(entry)));
  article.append(log);
  return article;
}

function renderStory() {
  const story = data.story;
  const system = document.getElementById("system");
  if (story.system) system.querySelector("pre").textContent = story.system;
  else system.remove();
  story.before.forEach((entry) => document.getElementById("before").append(logItem(entry)));
  const turns = document.getElementById("turns");
  story.turns.forEach((turn) => turns.append(renderTurn(turn)));
  if (!story.turns.length) turns.append(el("p", { class: "empty", text: "No model turns in this trace." }));
  const after = document.getElementById("after");
  story.after.forEach((entry) => after.append(logItem(entry)));
  if (story.end) after.append(logItem({ type: "note", text: `run ended: ${story.end.status} (${story.end.reason}), ${story.end.seconds} s` }));
  if (!after.children.length) document.getElementById("after-title").remove();
}

renderSummary();
renderPanel();
renderStory();
