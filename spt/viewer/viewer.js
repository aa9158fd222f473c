// The sample viewer's page script (viewer/page.py inlines it). Reads the page's data from the JSON
// in <script id="viewer-data">, renders one page of items, and filters by flag, variant, data model,
// tag, intervention key, export decision and free text, each choice showing how many samples it
// leaves. The filters and the page live in the URL's #hash (e.g. #flag=FAIL&page=2), so a view can be
// linked. Every text is set with textContent: nothing from the data is ever parsed as HTML.
(function () {
  "use strict";
  const holder = document.getElementById("viewer-data");
  const data = JSON.parse(holder.textContent);
  holder.remove();   // parsed once; the DOM need not keep megabytes of text (a DOM dump stays small)
  const items = data.items;
  const samples = [];
  items.forEach(function (item, n) {
    item.samples.forEach(function (sample) { sample.item = n; samples.push(sample); });
  });
  const one = function (get) { return function (s) { const v = get(s); return v === null || v === undefined ? [] : [String(v)]; }; };
  const FACETS = [
    ["flag", "flag", one(function (s) { return s.P; })],
    ["variant", "variant", one(function (s) { return s.variant; })],
    ["model", "data model", one(function (s) { return items[s.item].model; })],
    ["tag", "tag", function (s) { return s.tags; }],
    ["key", "intervention", one(function (s) { return s.key; })],
  ];
  if (data.export) FACETS.push(["decision", "export decision", one(function (s) { return s.decision ? s.decision.label : "no decision"; })]);
  const ANY = "";
  const state = {};
  const haystacks = new Map();

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    FACETS.forEach(function (f) { state[f[0]] = params.get(f[0]) || ANY; });
    state.q = params.get("q") || "";
    state.page = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
  }
  function writeHash() {
    const params = new URLSearchParams();
    FACETS.forEach(function (f) { if (state[f[0]]) params.set(f[0], state[f[0]]); });
    if (state.q) params.set("q", state.q);
    if (state.page > 1) params.set("page", String(state.page));
    history.replaceState(null, "", "#" + params.toString());
  }
  function haystack(s) {
    let text = haystacks.get(s);
    if (text === undefined) {
      const item = items[s.item];
      const answer = item.answers[s.variant] || {};
      text = [s.id, s.I, s.R, s.S || answer.S, item.T, item[s.variant], s.thought_process].join("\n").toLowerCase();
      haystacks.set(s, text);
    }
    return text;
  }
  function passes(s, skip) {
    for (const f of FACETS) {
      if (f[0] !== skip && state[f[0]] && f[2](s).indexOf(state[f[0]]) < 0) return false;
    }
    return !state.q || haystack(s).indexOf(state.q.toLowerCase()) >= 0;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function block(parent, label, text) {
    if (text === undefined || text === null || text === "") return;
    parent.appendChild(el("div", "label", label));
    const body = el("div", "text", text);
    body.addEventListener("click", function () { body.classList.toggle("open"); });
    parent.appendChild(body);
  }
  function tagList(parent, tags) {
    if (!tags || !tags.length) return;
    const box = el("div", "tags");
    tags.forEach(function (tag) {
      const chip = el("span", "tag", tag);
      chip.title = "filter by this tag";
      chip.addEventListener("click", function () { state.tag = tag; state.page = 1; update(); });
      box.appendChild(chip);
    });
    parent.appendChild(box);
  }
  const PROMPT_SHOWN = { "A": "A (as generated)", "B": "B (as generated)", "none": "none (removed)",
    "A->B": "B's (swapped)", "B->A": "A's (swapped)" };
  function decisionLine(parent, d) {
    if (!data.export) return;
    const line = el("div", "meta");
    if (!d) { line.appendChild(el("span", "decision", "no export decision")); parent.appendChild(line); return; }
    line.appendChild(el("span", "decision " + d.decision, d.label));
    if (d.system_prompt_source) line.appendChild(el("span", null, "prompt shown: " + (PROMPT_SHOWN[d.system_prompt_source] || d.system_prompt_source)));
    if (d.policy) line.appendChild(el("span", null, "policy: " + d.policy));
    if (d.task && d.task !== "review") line.appendChild(el("span", null, "task: " + d.task));
    if (d.filters_hit && d.filters_hit.length > 1) line.appendChild(el("span", null, "filters hit: " + d.filters_hit.join(", ")));
    parent.appendChild(line);
  }
  function sampleNode(s) {
    const node = el("div", "sample");
    node.setAttribute("data-sample-id", s.id);
    node.setAttribute("data-variant", s.variant);
    node.setAttribute("data-key", s.key);
    const meta = el("div", "meta");
    meta.appendChild(el("span", "flag " + (s.P || "none"), s.P || "no flag"));
    meta.appendChild(el("b", null, s.key));
    meta.appendChild(el("span", null, "confidence " + (s.confidence === null || s.confidence === undefined ? "–" : s.confidence)));
    if (s.focus) meta.appendChild(el("span", null, "focus " + s.focus));
    if (s.difficulty_internal || s.difficulty_external)
      meta.appendChild(el("span", null, "difficulty int/ext " + (s.difficulty_internal || "–") + "/" + (s.difficulty_external || "–")));
    if (s.faulty_data) meta.appendChild(el("span", null, "faulty data"));
    node.appendChild(meta);
    decisionLine(node, s.decision);
    tagList(node, s.tags);
    if (s.S !== undefined) block(node, "S shown (" + (s.S_source_model || "?") + ")", s.S);
    block(node, "I", s.I);
    block(node, "R", s.R);
    block(node, "error", s.error);
    if (s.thought_process) {
      const more = el("details");
      more.appendChild(el("summary", null, "generator's thought process"));
      block(more, "", s.thought_process);
      node.appendChild(more);
    }
    const id = el("div", "muted", s.id);
    node.appendChild(id);
    return node;
  }
  function card(n, shown) {
    const item = items[n];
    const node = el("section", "card");
    const head = el("div", "head");
    head.appendChild(el("b", null, item.model));
    head.appendChild(el("span", null, item.file + " · item " + item.index));
    if (item.difficulty) head.appendChild(el("span", null, "difficulty " + item.difficulty));
    if (item.focus) head.appendChild(el("span", null, "intended focus " + item.focus));
    node.appendChild(head);
    const task = el("div", "task");
    block(task, "T", item.T);
    if (item.notes || item.thought_process) {
      const more = el("details");
      more.appendChild(el("summary", null, "stage-1 notes and thought process"));
      block(more, "notes", item.notes);
      block(more, "thought process", item.thought_process);
      task.appendChild(more);
    }
    node.appendChild(task);
    const grid = el("div", "grid");
    ["A", "B"].forEach(function (letter) {
      const cell = el("div", "cell");
      const answer = item.answers[letter];
      if (!item[letter] && !answer) { cell.classList.add("none"); cell.textContent = "no " + letter; grid.appendChild(cell); return; }
      block(cell, "system prompt " + letter, item[letter]);
      if (answer) {
        block(cell, "S (" + letter + (answer.output_tokens ? ", " + answer.output_tokens + " tokens" : "") + ")", answer.S);
        tagList(cell, answer.tags);
      }
      grid.appendChild(cell);
    });
    const keys = [];
    shown.forEach(function (s) { if (keys.indexOf(s.key) < 0) keys.push(s.key); });
    keys.sort();
    keys.forEach(function (key) {
      ["A", "B"].forEach(function (letter) {
        const cell = el("div", "cell");
        const here = shown.filter(function (s) { return s.key === key && s.variant === letter; });
        if (!here.length) { cell.classList.add("none"); cell.textContent = "—"; }
        here.forEach(function (s) { cell.appendChild(sampleNode(s)); });
        grid.appendChild(cell);
      });
    });
    node.appendChild(grid);
    return node;
  }

  function fillFacets() {
    FACETS.forEach(function (f) {
      const counts = new Map();
      samples.forEach(function (s) {
        if (!passes(s, f[0])) return;
        f[2](s).forEach(function (v) { counts.set(v, (counts.get(v) || 0) + 1); });
      });
      if (state[f[0]] && !counts.has(state[f[0]])) counts.set(state[f[0]], 0);
      const select = document.getElementById("f-" + f[0]);
      select.textContent = "";
      let all = 0;
      samples.forEach(function (s) { if (passes(s, f[0])) all += 1; });
      const anyOption = el("option", null, "any (" + all + ")");
      anyOption.value = ANY;
      select.appendChild(anyOption);
      Array.from(counts.keys()).sort().forEach(function (v) {
        const option = el("option", null, v + " (" + counts.get(v) + ")");
        option.value = v;
        select.appendChild(option);
      });
      select.value = state[f[0]];
    });
  }
  function update() {
    const shown = samples.filter(function (s) { return passes(s, null); });
    const byItem = new Map();
    shown.forEach(function (s) { if (!byItem.has(s.item)) byItem.set(s.item, []); byItem.get(s.item).push(s); });
    const itemList = Array.from(byItem.keys());
    const pages = Math.max(1, Math.ceil(itemList.length / data.page_size));
    state.page = Math.min(state.page, pages);
    const start = (state.page - 1) * data.page_size;
    const onPage = itemList.slice(start, start + data.page_size);
    const main = document.getElementById("items");
    main.textContent = "";
    let count = 0;
    onPage.forEach(function (n) { main.appendChild(card(n, byItem.get(n))); count += byItem.get(n).length; });
    document.getElementById("count").textContent = shown.length + " of " + samples.length + " samples match, in " +
      itemList.length + " cards (an item × a data model); page " + state.page + " of " + pages + " shows " + count + " samples";
    document.getElementById("count").setAttribute("data-shown", String(count));
    document.getElementById("count").setAttribute("data-matching", String(shown.length));
    document.getElementById("prev").disabled = state.page <= 1;
    document.getElementById("next").disabled = state.page >= pages;
    fillFacets();
    document.getElementById("f-q").value = state.q;
    writeHash();
  }

  FACETS.forEach(function (f) {
    const label = el("label", null, f[1]);
    const select = el("select");
    select.id = "f-" + f[0];
    select.addEventListener("change", function () { state[f[0]] = select.value; state.page = 1; update(); window.scrollTo(0, 0); });
    label.appendChild(select);
    document.getElementById("filters").appendChild(label);
  });
  document.getElementById("f-q").addEventListener("change", function (e) { state.q = e.target.value; state.page = 1; update(); });
  document.getElementById("prev").addEventListener("click", function () { state.page -= 1; update(); window.scrollTo(0, 0); });
  document.getElementById("next").addEventListener("click", function () { state.page += 1; update(); window.scrollTo(0, 0); });
  document.getElementById("clear").addEventListener("click", function () { location.hash = ""; readHash(); update(); });
  document.getElementById("f-topic").addEventListener("change", function (e) { location.href = e.target.value + location.hash; });
  window.addEventListener("hashchange", function () { readHash(); update(); });
  document.addEventListener("keydown", function (e) {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight" && !document.getElementById("next").disabled) document.getElementById("next").click();
    if (e.key === "ArrowLeft" && !document.getElementById("prev").disabled) document.getElementById("prev").click();
  });
  readHash();
  update();
  const timing = document.getElementById("timing");
  const ms = Math.round(performance.now());
  timing.textContent = "ready " + ms + " ms after navigation start";
  timing.setAttribute("data-ready-ms", String(ms));
})();
