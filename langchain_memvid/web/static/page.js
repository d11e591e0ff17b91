// The lcmemvid serve page: plain JavaScript, no build step, no dependencies.
//
// Everything it shows comes from the JSON API under /api/ (docs/web.md). Document text and
// metadata are data, never markup: they reach the page through textContent and element
// attributes only (nothing is ever parsed as HTML), so a document holding <script> is shown, not run.
// The address bar holds the state (/?q=...&k=...&mode=...&filter=...&id=...), so a search or an
// open record can be bookmarked and shared; back and forward replay it.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  /** A new element with a class and text (as text, never parsed as HTML). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const DEFAULTS = { view: "search", k: "4", mode: "vector", offset: "0" };
  const PAGE = 20;
  let stats = null;
  let shown = { search: null, browse: null }; // the query each list shows, to skip refetching
  let openId = null;
  let ticket = 0; // the latest request of each kind wins
  const latest = {};

  // -- the API ---------------------------------------------------------------------------------

  async function api(path, options) {
    const response = await fetch(path, options);
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const message = body && typeof body.error === "string" ? body.error : `${response.status} ${response.statusText}`;
      throw new Error(message);
    }
    return body;
  }

  /** The value of `promise`, unless a newer request of the same `kind` started meanwhile. */
  async function fresh(kind, promise) {
    const mine = ++ticket;
    latest[kind] = mine;
    const value = await promise;
    if (latest[kind] !== mine) throw new Stale();
    return value;
  }
  class Stale extends Error {}

  // -- formatting ------------------------------------------------------------------------------

  function size(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = Number(n);
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
  }

  const count = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));
  const plural = (n, noun) => `${count(n)} ${noun}${Number(n) === 1 ? "" : "s"}`;
  const segmentName = (segment) => String(segment).replace(/^segments\//, "").replace(/\.mov$/, "");

  function placeText(location) {
    if (!location) return "not located in the video";
    const last = location.frame + location.frame_count - 1;
    const frames = last > location.frame ? `frames ${location.frame}–${last}` : `frame ${location.frame}`;
    return `${segmentName(location.segment)} · ${frames} · ${location.timestamp.toFixed(3)} s`;
  }

  const score = (value) => (typeof value === "number" ? value.toFixed(4) : "");

  // -- the address bar -------------------------------------------------------------------------

  function readState() {
    const params = new URLSearchParams(location.search);
    const state = {};
    for (const key of ["view", "q", "k", "mode", "filter", "id", "source", "offset"]) {
      state[key] = params.get(key) ?? DEFAULTS[key] ?? "";
    }
    if (!["search", "browse", "store"].includes(state.view)) state.view = "search";
    return state;
  }

  function urlOf(state) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(state)) {
      if (value !== "" && value !== null && value !== undefined && DEFAULTS[key] !== value) params.set(key, value);
    }
    const query = params.toString();
    return query ? `/?${query}` : "/";
  }

  function go(changes, { replace = false } = {}) {
    const state = { ...readState(), ...changes };
    const url = urlOf(state);
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    render();
  }

  // -- rendering the state ---------------------------------------------------------------------

  async function render() {
    const state = readState();
    for (const view of ["search", "browse", "store"]) {
      $(`view-${view}`).hidden = view !== state.view;
      const tab = $(`tab-${view}`);
      if (view === state.view) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    const storeName = stats ? stats.store : "store";
    if (state.view === "search") {
      $("q").value = state.q;
      $("k").value = state.k;
      $("filter").value = state.filter;
      setMode(state.mode);
      document.title = state.q ? `${state.q} · ${storeName}` : `Search · ${storeName}`;
      const key = JSON.stringify([state.q, state.k, state.mode, state.filter]);
      if (state.q && shown.search !== key) runSearch(state, key);
      if (!state.q) showEmptySearch();
    } else if (state.view === "browse") {
      $("source").value = state.source;
      document.title = `Browse · ${storeName}`;
      loadSources();
      const key = JSON.stringify([state.source, state.offset]);
      if (shown.browse !== key) loadPage(state, key);
    } else {
      document.title = `Store · ${storeName}`;
      showFigures();
    }
    if (state.id && state.view !== "store") openRecord(state.id);
    else closeDetail();
  }

  function setMode(mode) {
    const select = $("mode");
    if (![...select.options].some((o) => o.value === mode)) {
      // A mode this store does not offer (an old link): keep it visible so the API's error shows.
      select.append(el("option", "", mode));
      select.lastChild.value = mode;
    }
    select.value = mode;
  }

  function status(id, text, kind) {
    const node = $(id);
    node.textContent = text;
    node.className = `status${kind ? ` ${kind}` : ""}`;
  }

  // -- search ----------------------------------------------------------------------------------

  function showEmptySearch() {
    shown.search = null;
    const list = $("hits");
    list.replaceChildren();
    const hint = stats
      ? `Search ${plural(stats.records, "record")} in ${plural(stats.frames, "QR frame")} of ${plural(stats.segments, "video segment")}.`
      : "Search the store.";
    const item = el("li", "empty", hint);
    list.append(item);
    status("search-status", "");
  }

  async function runSearch(state, key) {
    shown.search = key;
    status("search-status", "Searching…");
    const params = new URLSearchParams({ q: state.q, k: state.k, mode: state.mode });
    if (state.filter) params.set("filter", state.filter);
    let result;
    try {
      result = await fresh("search", api(`/api/search?${params}`));
    } catch (e) {
      if (e instanceof Stale) return;
      shown.search = null;
      $("hits").replaceChildren();
      status("search-status", e.message, "error");
      return;
    }
    const list = $("hits");
    list.replaceChildren(...result.hits.map((hit) => hitItem(hit, true)));
    if (!result.hits.length) list.append(el("li", "empty", "No matches."));
    performance.mark("memvid:hits"); // User Timing, read by benchmarks/bench_web.py
    status(
      "search-status",
      `${plural(result.hits.length, "hit")} in ${result.took_ms} ms · ${result.mode} search · score: ${result.scores}`,
    );
    markSelected();
  }

  function hitItem(hit, withScore) {
    const item = el("li");
    const link = el("a", "hit");
    link.href = urlOf({ ...readState(), id: hit.id });
    link.dataset.id = hit.id;
    const head = el("div", "hit-head");
    head.append(el("span", "rank", `${hit.rank}.`), el("span", "where", hit.where));
    if (withScore && typeof hit.score === "number") head.append(el("span", "score", score(hit.score)));
    link.append(head, el("p", "snippet", hit.text), el("p", "place", placeText(hit.location)));
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      go({ id: hit.id });
    });
    item.append(link);
    return item;
  }

  function markSelected() {
    for (const link of document.querySelectorAll("a.hit")) {
      link.classList.toggle("selected", link.dataset.id === openId);
    }
  }

  // -- browse ----------------------------------------------------------------------------------

  let sourcesLoaded = false;

  async function loadSources() {
    if (sourcesLoaded) return;
    sourcesLoaded = true;
    try {
      const result = await api("/api/sources");
      const list = $("sources");
      list.replaceChildren(
        ...result.sources.map((s) => {
          const option = el("option");
          option.value = s.source;
          option.label = plural(s.records, "record");
          return option;
        }),
      );
    } catch (e) {
      sourcesLoaded = false;
    }
  }

  async function loadPage(state, key) {
    shown.browse = key;
    status("browse-status", "Loading…");
    const offset = Math.max(0, parseInt(state.offset, 10) || 0);
    const params = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    if (state.source) params.set("source", state.source);
    let result;
    try {
      result = await fresh("browse", api(`/api/records?${params}`));
    } catch (e) {
      if (e instanceof Stale) return;
      shown.browse = null;
      $("records").replaceChildren();
      status("browse-status", e.message, "error");
      return;
    }
    const list = $("records");
    list.replaceChildren(...result.records.map((record) => hitItem(record, false)));
    if (!result.records.length) list.append(el("li", "empty", "No records."));
    const first = result.total ? result.offset + 1 : 0;
    const last = result.offset + result.records.length;
    const where = result.source ? ` from ${result.source}` : "";
    status("browse-status", `${count(first)}–${count(last)} of ${plural(result.total, "record")}${where}, in storage order`);
    $("page-info").textContent = `Page ${count(Math.floor(result.offset / PAGE) + 1)} of ${count(Math.max(1, Math.ceil(result.total / PAGE)))}`;
    $("prev").disabled = result.offset <= 0;
    $("next").disabled = last >= result.total;
    markSelected();
  }

  // -- one record ------------------------------------------------------------------------------

  async function openRecord(id) {
    if (openId === id && !$("detail").hidden) return;
    openId = id;
    markSelected();
    const detail = $("detail");
    detail.hidden = false;
    $("main").classList.add("with-detail");
    $("detail-title").textContent = "Loading…";
    $("detail-place").textContent = "";
    $("detail-text").textContent = "";
    $("strip").replaceChildren();
    $("meta").tBodies[0].replaceChildren();
    $("frame-img").removeAttribute("src");
    $("frame-caption").textContent = "";
    let record;
    try {
      record = await fresh("record", api(`/api/records/${encodeURIComponent(id)}`));
    } catch (e) {
      if (e instanceof Stale) return;
      $("detail-title").textContent = e.message;
      return;
    }
    $("detail-title").textContent = record.where;
    const place = record.location;
    $("detail-place").textContent = place
      ? `${place.segment} · ${place.frame_count > 1 ? `frames ${place.frame}–${place.frame + place.frame_count - 1}` : `frame ${place.frame}`} of ${count(record.segment_frames)} · ${place.timestamp.toFixed(3)} s · slot ${place.slot} · id ${record.id}`
      : `id ${record.id} · not located in the video`;
    $("detail-text").textContent = record.text;
    const rows = [["id", record.id], ...Object.entries(record.metadata)].map(([key, value]) => {
      const row = el("tr");
      row.append(el("th", "", key), el("td", "", typeof value === "string" ? value : JSON.stringify(value)));
      return row;
    });
    $("meta").tBodies[0].replaceChildren(...rows);
    $("record-link").href = `/api/records/${encodeURIComponent(record.id)}`;
    if (place) {
      showFrame(record.frame_url, place.frame, segmentName(place.segment), true);
      const own = place.frame;
      $("strip").replaceChildren(
        ...(record.strip || []).map((frame) => {
          const item = el("li");
          const button = el("button", frame.holds_record ? "own" : "");
          button.type = "button";
          button.dataset.frame = String(frame.frame);
          button.title = frame.holds_record ? `frame ${frame.frame}: holds this record` : `frame ${frame.frame}`;
          const image = el("img");
          image.loading = "lazy";
          image.alt = `frame ${frame.frame}`;
          image.addEventListener("error", () => image.classList.add("missing"));
          image.src = frame.url;
          button.append(image, el("span", "", frame.frame));
          button.addEventListener("click", () =>
            showFrame(frame.url, frame.frame, segmentName(place.segment), frame.holds_record),
          );
          item.append(button);
          return item;
        }),
      );
      markFrame(own);
    } else {
      $("frame-caption").textContent = "This record is not located in the video.";
    }
  }

  function showFrame(url, frame, segment, holdsRecord) {
    const image = $("frame-img");
    image.src = url;
    image.alt = `QR code: frame ${frame} of segment ${segment}`;
    $("frame-caption").textContent = `frame ${frame} of ${segment}${holdsRecord ? "" : " (a neighbour)"}`;
    $("frame-link").href = `${url}?scale=4`;
    $("frame-link").setAttribute("download", `${segment}-frame-${frame}.png`);
    markFrame(frame);
  }

  function markFrame(frame) {
    for (const button of $("strip").querySelectorAll("button")) {
      button.classList.toggle("shown", button.dataset.frame === String(frame));
    }
  }

  function closeDetail() {
    openId = null;
    $("detail").hidden = true;
    $("main").classList.remove("with-detail");
    markSelected();
  }

  // -- the store -------------------------------------------------------------------------------

  function showFigures() {
    if (!stats) return;
    const s = stats;
    const versions = s.versions || {};
    const ratio = typeof s.video_to_text === "number" ? `${s.video_to_text.toFixed(2)}× the text` : "no text yet";
    const figures = [
      ["Store", s.store, ""],
      ["Records", count(s.records), `${size(s.text_bytes)} of text`],
      ["Video", size(s.video_bytes), `${ratio}; ${plural(s.segments, "segment")}, ${plural(s.frames, "frame")}`],
      ["Vectors", size(s.index_bytes), `${s.vector_encoding}, ${count(s.vectors_in_index)} in the index`],
      ["Catalog", size(s.catalog_bytes), "SQLite"],
      ["Model", s.model || "(none recorded)", s.dim ? `${s.dim} dimensions, ${s.metric}` : s.metric],
      ["Index", s.index_type, ""],
      ["Profile", s.profile, s.profile === "robust" ? "H.264 frames" : "1-bit PNG frames"],
      ["Search modes", (s.modes || []).join(", "), ""],
      ["Format version", versions.format ?? "–", `${plural(versions.commits ?? 0, "commit")}`],
      ["Library", versions.library ?? "–", "langchain-qrvideo"],
    ];
    $("figures").replaceChildren(
      ...figures.map(([name, value, note]) => {
        const box = el("div");
        const dd = el("dd", "", value);
        if (note) dd.append(el("small", "", note));
        box.append(el("dt", "", name), dd);
        return box;
      }),
    );
  }

  let polling = null;

  async function startVerify() {
    $("verify-button").disabled = true;
    status("verify-status", "Starting…");
    $("verify-problems").replaceChildren();
    try {
      const job = await api("/api/verify", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ cross_check: $("cross-check").checked }),
      });
      showVerify(job);
    } catch (e) {
      status("verify-status", e.message, "error");
      $("verify-button").disabled = false;
    }
  }

  async function pollVerify() {
    try {
      showVerify(await api("/api/verify"));
    } catch (e) {
      status("verify-status", e.message, "error");
      $("verify-button").disabled = false;
    }
  }

  function showVerify(job) {
    const bar = $("verify-progress");
    clearTimeout(polling);
    if (job.state === "running") {
      bar.hidden = false;
      bar.removeAttribute("value"); // the engine reports no step count: an indeterminate bar
      $("verify-button").disabled = true;
      status(
        "verify-status",
        `Checking ${plural(job.frames, "frame")} and ${plural(job.records, "record")}${job.cross_check ? " with two decoders" : ""}… ${job.elapsed_s.toFixed(1)} s`,
      );
      polling = setTimeout(pollVerify, 400);
      return;
    }
    bar.hidden = job.state === "idle";
    bar.max = 1;
    bar.value = 1;
    $("verify-button").disabled = false;
    if (job.state === "failed") {
      status("verify-status", `The check could not run: ${job.error}`, "error");
    } else if (job.state === "done") {
      const r = job.result;
      const checked = `${plural(r.records_checked, "record")} and ${plural(r.frames_checked, "frame")} (${count(r.frames_cross_checked)} cross-checked) in ${job.elapsed_s.toFixed(1)} s`;
      if (r.ok) {
        status("verify-status", `OK: no problems found. Checked ${checked}.`, "ok");
      } else {
        status("verify-status", `${plural(r.problems_total, "problem")} found. Checked ${checked}. \`lcmemvid verify\` says what to do next.`, "error");
        $("verify-problems").replaceChildren(
          ...r.problems.map((p) => {
            const where = `${p.file}${p.frame !== null && p.frame !== undefined ? ` frame ${p.frame}` : ""}${p.record_id ? ` record ${p.record_id}` : ""}`;
            return el("li", "", `${where}: ${p.message}`);
          }),
        );
      }
    }
  }

  // -- wiring ----------------------------------------------------------------------------------

  async function loadStats() {
    try {
      stats = await api("/api/stats");
    } catch (e) {
      status("search-status", `The store's figures could not be read: ${e.message}`, "error");
      return;
    }
    $("store-name").textContent = stats.store;
    const select = $("mode");
    const current = readState().mode;
    select.replaceChildren(
      ...stats.modes.map((mode) => {
        const option = el("option", "", mode);
        option.value = mode;
        return option;
      }),
    );
    setMode(current);
    $("k").max = String(stats.limits.k);
  }

  function wire() {
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const q = $("q").value.trim();
      if (!q) {
        $("q").focus();
        return;
      }
      shown.search = null; // searching again is a request to refresh
      go({ view: "search", q, k: $("k").value || "4", mode: $("mode").value, filter: $("filter").value.trim(), id: "" });
    });
    $("browse-form").addEventListener("submit", (event) => {
      event.preventDefault();
      go({ view: "browse", source: $("source").value.trim(), offset: "0", id: "" });
    });
    $("prev").addEventListener("click", () => go({ offset: String(Math.max(0, Number(readState().offset) - PAGE)), id: "" }));
    $("next").addEventListener("click", () => go({ offset: String(Number(readState().offset) + PAGE), id: "" }));
    $("detail-close").addEventListener("click", () => go({ id: "" }));
    $("verify-button").addEventListener("click", startVerify);
    $("frame-img").addEventListener("load", () => performance.mark("memvid:frame"));
    for (const view of ["search", "browse", "store"]) {
      $(`tab-${view}`).addEventListener("click", (event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
        event.preventDefault();
        go({ view, id: "" });
      });
    }
    document.addEventListener("keydown", (event) => {
      const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
      if (event.key === "/" && !typing) {
        event.preventDefault();
        go({ view: "search" });
        $("q").focus();
      } else if (event.key === "Escape" && !$("detail").hidden) {
        go({ id: "" });
      }
    });
    window.addEventListener("popstate", render);
  }

  async function start() {
    wire();
    await loadStats();
    await render();
    performance.mark("memvid:ready");
    pollVerify(); // a check started earlier (another tab) is shown
    if (!readState().q && readState().view === "search") $("q").focus();
  }

  start();
})();
