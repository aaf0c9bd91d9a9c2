/* corenas dashboard: draws the pages from the read-only JSON API.
 *
 * Every stored string (genome values, error text, metric names) is inserted with textContent
 * or as a chart label, never as HTML, so markup in the data shows as text. Pages poll the job
 * summary and redraw when its version changes: every POLL_LIVE ms while a driver runs, every
 * POLL_IDLE ms otherwise.
 */
"use strict";

const body = document.body;
const POLL_LIVE = Number(body.dataset.pollLive || 2000);
const POLL_IDLE = Number(body.dataset.pollIdle || 10000);
const PAGE_SIZE = 50;
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function link(href, text) {
  const a = el("a", text);
  a.href = href;
  return a;
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  return value.toPrecision(digits || 5).replace(/\.?0+(e|$)/, "$1");
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function poller(check) {
  /* Calls check() now and again after each answer; check returns true while the job is live. */
  async function tick() {
    let live = false;
    try {
      live = await check();
    } catch (error) {
      console.error(error);
    }
    document.getElementById("live").hidden = !live;
    setTimeout(tick, live ? POLL_LIVE : POLL_IDLE);
  }
  tick();
}

function progressText(job) {
  const total = job.max_trials ? ` / ${job.max_trials}` : "";
  return `${job.search_final}${total}`;
}

/* ---- jobs page ------------------------------------------------------------------------- */
function jobsPage() {
  const tbody = document.querySelector("#jobs tbody");
  const note = document.getElementById("jobs-note");
  poller(async () => {
    const jobs = await getJSON("/api/jobs");
    tbody.replaceChildren();
    let live = false;
    for (const job of jobs) {
      const row = el("tr");
      row.dataset.key = job.key;
      if (job.error) {
        row.append(el("td", job.label), el("td", "unreadable", "status status-failed"));
        const cell = el("td", job.error, "error");
        cell.colSpan = 6;
        row.append(cell);
        tbody.append(row);
        continue;
      }
      live = live || job.live;
      const name = el("td");
      name.append(link(`/jobs/${job.key}`, job.name));
      const failed = job.counts.failed + job.counts.infeasible + job.counts.stopped;
      row.append(
        name,
        el("td", job.status, `status status-${job.status}`),
        el("td", progressText(job), "num"),
        el("td", job.counts.succeeded, "num"),
        el("td", failed, "num"),
        el("td", job.stage2, "num"),
        el("td", job.best ? fmt(job.best.reward) : "—", "num"),
        el("td", job.label, "where"),
      );
      tbody.append(row);
    }
    note.textContent = jobs.length === 1 ? "1 job" : `${jobs.length} jobs`;
    return live;
  });
}

/* ---- job page -------------------------------------------------------------------------- */
function jobPage() {
  const key = body.dataset.key;
  const api = `/api/jobs/${key}`;
  const state = { sort: "id", order: "asc", offset: 0, status: "", stage: "", q: "" };
  let version = null;
  let rewardChart = null;
  let scatterChart = null;

  function summaryCards(job) {
    document.getElementById("job-status").textContent = job.status;
    document.getElementById("job-status").className = `value status status-${job.status}`;
    document.getElementById("job-progress").textContent = progressText(job);
    document.getElementById("job-succeeded").textContent = job.counts.succeeded;
    document.getElementById("job-failed").textContent =
      `${job.counts.failed} / ${job.counts.infeasible} / ${job.counts.stopped}`;
    document.getElementById("job-running").textContent = job.counts.running;
    const best = document.getElementById("job-best");
    best.replaceChildren();
    if (job.best) best.append(link(`/jobs/${key}/trials/${job.best.id}`, `${fmt(job.best.reward)} (trial ${job.best.id})`));
    else best.textContent = "—";
  }

  async function drawTable() {
    const params = new URLSearchParams({
      sort: state.sort, order: state.order, offset: state.offset, limit: PAGE_SIZE,
      status: state.status, stage: state.stage, q: state.q,
    });
    const errorBox = document.getElementById("table-error");
    let page;
    try {
      page = await getJSON(`${api}/trials?${params}`);
    } catch (error) {
      errorBox.textContent = error.message;
      return;
    }
    errorBox.textContent = "";
    const head = document.querySelector("#trials thead tr");
    head.replaceChildren();
    const columns = [...page.columns, "stage 2", "genome", "error"];
    for (const column of columns) {
      const th = el("th", column === "duration_s" ? "duration (s)" : column);
      if (page.columns.includes(column)) {
        th.dataset.column = column;
        th.classList.add("sortable");
        if (column === state.sort) th.classList.add(state.order === "asc" ? "asc" : "desc");
        th.addEventListener("click", () => {
          state.order = state.sort === column && state.order === "asc" ? "desc" : "asc";
          if (state.sort !== column) state.order = column === "id" ? "asc" : "desc";
          state.sort = column;
          state.offset = 0;
          drawTable();
        });
      }
      head.append(th);
    }
    const tbody = document.querySelector("#trials tbody");
    tbody.replaceChildren();
    for (const row of page.rows) {
      const tr = el("tr");
      tr.dataset.id = row.id;
      const id = el("td", null, "num");
      id.append(link(`/jobs/${key}/trials/${row.id}`, row.id));
      tr.append(
        id,
        el("td", row.stage === "train" ? "stage 2" : row.stage),
        el("td", row.status, `status status-${row.status}`),
        el("td", fmt(row.reward), "num"),
        el("td", fmt(row.duration_s, 3), "num"),
      );
      for (const metric of page.metrics) tr.append(el("td", fmt(row.metrics[metric]), "num"));
      const stage2 = el("td", null, "num");
      for (const child of row.stage2) {
        stage2.append(link(`/jobs/${key}/trials/${child.id}`, fmt(child.reward)), " ");
      }
      if (row.parent_id !== null) stage2.append(link(`/jobs/${key}/trials/${row.parent_id}`, `of ${row.parent_id}`));
      tr.append(stage2, el("td", row.genome, "mono genome"), el("td", row.error || "", "error"));
      tbody.append(tr);
    }
    const last = Math.min(page.offset + page.limit, page.matched);
    document.getElementById("table-count").textContent =
      `${page.matched} of ${page.total} trials match`;
    document.getElementById("page-label").textContent =
      page.matched ? `${page.offset + 1}–${last}` : "none";
    document.getElementById("prev").disabled = page.offset === 0;
    document.getElementById("next").disabled = last >= page.matched;
  }

  async function drawReward() {
    const curve = await getJSON(`${api}/curve`);
    const failedCount = Object.values(curve.failed).reduce((n, ids) => n + ids.length, 0);
    const datasets = [
      { type: "scatter", label: `succeeded (${curve.points.length})`, data: curve.points,
        backgroundColor: "#1f77b4", pointRadius: 3 },
      { type: "line", label: "best so far", data: curve.best, stepped: "before",
        borderColor: "#111", borderWidth: 1.5, pointRadius: 0, fill: false },
    ];
    const options = {
      animation: false, maintainAspectRatio: false, parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "trial" } },
                y: { title: { display: true, text: "reward" } } },
      plugins: { subtitle: { display: failedCount > 0, text: `${failedCount} trials failed, were infeasible or stopped` } },
      onClick: (event, elements) => {
        if (elements.length && elements[0].datasetIndex === 0) {
          window.location = `/jobs/${key}/trials/${curve.points[elements[0].index].x}`;
        }
      },
    };
    if (rewardChart) {
      rewardChart.data.datasets = datasets;
      rewardChart.options.plugins.subtitle = options.plugins.subtitle;
      rewardChart.options.onClick = options.onClick;
      rewardChart.update();
    } else {
      rewardChart = new Chart(document.getElementById("reward-chart"), { data: { datasets }, options });
    }
  }

  function fillAxis(axis, options, chosen) {
    const select = document.getElementById(`scatter-${axis}`);
    const names = [...select.options].map((o) => o.value);
    if (names.join("\n") !== options.join("\n")) {
      select.replaceChildren(...options.map((name) => el("option", name)));
      for (const option of select.options) option.value = option.textContent;
    }
    select.value = chosen ? chosen.name : "";
    document.getElementById(`scatter-${axis}-mode`).value = chosen ? chosen.mode : "max";
  }

  async function drawScatter() {
    const axis = (name) => `${document.getElementById(`scatter-${name}`).value}:` +
      document.getElementById(`scatter-${name}-mode`).value;
    const chosen = document.getElementById("scatter-x").dataset.user;
    const params = chosen ? new URLSearchParams({ x: axis("x"), y: axis("y") }) : "";
    const note = document.getElementById("scatter-note");
    let data;
    try {
      data = await getJSON(`${api}/scatter?${params}`);
    } catch (error) {
      note.textContent = error.message;
      return;
    }
    fillAxis("x", data.options, data.x);
    fillAxis("y", data.options, data.y);
    if (!data.x) {
      note.textContent = "the trials report no two numbers to plot";
      return;
    }
    const onFront = new Set(data.front);
    const byId = new Map(data.points.map((p) => [p.id, p]));
    note.textContent = `${data.x.name} ${data.x.mode}, ${data.y.name} ${data.y.mode}: ${data.front.length} on the Pareto front`;
    const others = data.points.filter((p) => !onFront.has(p.id));
    const front = data.front.map((id) => byId.get(id));
    const datasets = [
      { type: "scatter", label: `trials (${data.points.length})`, data: others,
        backgroundColor: "rgba(31,119,180,0.55)", pointRadius: 3 },
      { type: "line", label: "Pareto front", data: front, borderColor: "#d62728",
        backgroundColor: "#d62728", pointRadius: 5, borderWidth: 1.5, fill: false },
    ];
    const options = {
      animation: false, maintainAspectRatio: false, parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: `${data.x.name} (${data.x.mode})` } },
                y: { type: "linear", title: { display: true, text: `${data.y.name} (${data.y.mode})` } } },
      plugins: { tooltip: { callbacks: { label: (ctx) => `trial ${ctx.raw.id}: ${fmt(ctx.raw.x)}, ${fmt(ctx.raw.y)}` } } },
      onClick: (event, elements) => {
        if (elements.length) {
          const point = datasets[elements[0].datasetIndex].data[elements[0].index];
          window.location = `/jobs/${key}/trials/${point.id}`;
        }
      },
    };
    if (scatterChart) scatterChart.destroy();
    scatterChart = new Chart(document.getElementById("scatter-chart"), { data: { datasets }, options });
  }

  async function drawStage2() {
    const pairs = await getJSON(`${api}/stage2`);
    document.getElementById("stage2-section").hidden = pairs.length === 0;
    const tbody = document.querySelector("#stage2 tbody");
    tbody.replaceChildren();
    for (const pair of pairs) {
      const tr = el("tr");
      const own = el("td", null, "num");
      own.append(link(`/jobs/${key}/trials/${pair.trial.id}`, pair.trial.id));
      const parent = el("td", null, "num");
      if (pair.search) parent.append(link(`/jobs/${key}/trials/${pair.search.id}`, pair.search.id));
      const change = pair.search && pair.trial.reward !== null && pair.search.reward !== null
        ? pair.trial.reward - pair.search.reward : null;
      tr.append(
        own,
        el("td", pair.trial.status, `status status-${pair.trial.status}`),
        el("td", fmt(pair.trial.reward), "num"),
        parent,
        el("td", pair.search ? fmt(pair.search.reward) : "—", "num"),
        el("td", change === null ? "—" : (change >= 0 ? "+" : "") + fmt(change), "num"),
      );
      tbody.append(tr);
    }
  }

  for (const [id, field] of [["status-filter", "status"], ["stage-filter", "stage"]]) {
    document.getElementById(id).addEventListener("change", (event) => {
      state[field] = event.target.value;
      state.offset = 0;
      drawTable();
    });
  }
  let typing = null;
  document.getElementById("filter").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.q = event.target.value; state.offset = 0; drawTable(); }, 250);
  });
  document.getElementById("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    drawTable();
  });
  document.getElementById("next").addEventListener("click", () => {
    state.offset += PAGE_SIZE;
    drawTable();
  });
  for (const id of ["scatter-x", "scatter-y", "scatter-x-mode", "scatter-y-mode"]) {
    document.getElementById(id).addEventListener("change", () => {
      document.getElementById("scatter-x").dataset.user = "1";
      drawScatter();
    });
  }

  poller(async () => {
    const job = await getJSON(api);
    summaryCards(job);
    if (job.version !== version) {
      version = job.version;
      await drawTable();  // the table first: the charts' data take longer on a large job
      body.dataset.tableDrawn = version;
      await Promise.all([drawReward(), drawScatter(), drawStage2()]);
      body.dataset.drawn = version;
    }
    return job.live;
  });
}

/* ---- trial page ------------------------------------------------------------------------ */
function trialPage() {
  const key = body.dataset.key;
  const trialId = body.dataset.trial;
  const api = `/api/jobs/${key}/trials/${trialId}`;
  let chart = null;
  let seen = null;

  async function drawIntermediate() {
    const detail = await getJSON(api);
    const trial = detail.trial;
    const status = document.getElementById("trial-status");
    status.textContent = trial.status;
    status.className = `status status-${trial.status}`;
    const text = JSON.stringify(detail.intermediate);
    if (text === seen) return !["succeeded", "failed", "stopped", "infeasible"].includes(trial.status);
    seen = text;
    const names = [...new Set(detail.intermediate.flatMap((r) => Object.keys(r.metrics)))].sort();
    document.getElementById("curve-note").textContent = detail.intermediate.length
      ? `${detail.intermediate.length} reports` : "this trial reported no intermediate metrics";
    const datasets = names.map((name, i) => ({
      label: name, borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
      data: detail.intermediate.filter((r) => name in r.metrics).map((r) => ({ x: r.step, y: r.metrics[name] })),
      pointRadius: 2, borderWidth: 1.5,
    }));
    if (chart) chart.destroy();
    chart = new Chart(document.getElementById("intermediate-chart"), {
      type: "line", data: { datasets },
      options: { animation: false, maintainAspectRatio: false, parsing: false,
        scales: { x: { type: "linear", title: { display: true, text: "step" } } } },
    });
    body.dataset.drawn = "1";
    return !["succeeded", "failed", "stopped", "infeasible"].includes(trial.status);
  }

  async function drawModel() {
    const note = document.getElementById("model-note");
    let model;
    try {
      model = await getJSON(`${api}/model`);
    } catch (error) {
      note.textContent = error.message;
      return;
    }
    if (!model.available) {
      note.textContent = `no model summary: ${model.reason}`;
      return;
    }
    note.textContent = `${model.type}: ${model.params.toLocaleString("en")} parameters (${model.trainable.toLocaleString("en")} trainable)`;
    const tbody = document.querySelector("#model-layers tbody");
    tbody.replaceChildren(...model.layers.map((layer) => {
      const tr = el("tr");
      const name = el("td", layer.name, "mono");
      name.style.paddingLeft = `${(layer.name.split(".").length - 1) * 1.2 + 0.4}em`;
      tr.append(name, el("td", layer.type), el("td", layer.params.toLocaleString("en"), "num"));
      return tr;
    }));
    document.getElementById("model-layers").hidden = false;
    document.getElementById("model-text").textContent = model.text;
    document.getElementById("model-text-box").hidden = false;
  }

  drawModel();
  poller(drawIntermediate);
}

if (body.dataset.page === "jobs") jobsPage();
else if (body.dataset.page === "job") jobPage();
else if (body.dataset.page === "trial") trialPage();
