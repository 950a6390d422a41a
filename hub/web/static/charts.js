// Charts of past readings: each .chart[data-thing][data-measurement] asks the readings API once, when it
// scrolls into view, and draws the series with uPlot. The server decides what a viewer may see; a chart
// it refuses stays a line of text. Buttons [data-chart-hours] in a .chart-group switch 24 h / 7 days.
"use strict";

(() => {
  const plots = new Map(); // chart element → uPlot instance

  function status(el, text) {
    let p = el.querySelector(".chart-status");
    if (!p) {
      p = document.createElement("p");
      p.className = "chart-status muted";
      el.appendChild(p);
    }
    p.textContent = text;
    p.hidden = !text;
  }

  function url(el) {
    const thing = encodeURIComponent(el.dataset.thing);
    const query = new URLSearchParams({ measurement: el.dataset.measurement, hours: el.dataset.hours || "24" });
    return `/api/v1/things/${thing}/readings?${query}`;
  }

  async function load(el) {
    el.dataset.loaded = "loading";
    status(el, "Loading…");
    let body;
    try {
      const response = await fetch(url(el), { headers: { Accept: "application/json" } });
      body = await response.json();
      if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    } catch (err) {
      el.dataset.loaded = "error";
      status(el, `No chart: ${err.message}`);
      return;
    }
    const series = (body.series || []).find((s) => s.measurement === el.dataset.measurement);
    const points = series ? series.points.filter((p) => typeof p[1] === "number") : [];
    plots.get(el)?.destroy();
    plots.delete(el);
    if (points.length === 0) {
      el.dataset.loaded = "empty";
      status(el, "No readings in this period.");
      return;
    }
    status(el, "");
    draw(el, points);
    el.dataset.loaded = "drawn";
  }

  function draw(el, points) {
    const color = getComputedStyle(el).color || "#1f6feb";
    const unit = el.dataset.unit || "";
    const options = {
      width: Math.max(el.clientWidth, 160),
      height: Number(el.dataset.height || 120),
      legend: { show: false },
      cursor: { y: false },
      scales: { x: { time: true } },
      axes: [{ stroke: color }, { stroke: color, size: 48, values: (u, ticks) => ticks.map((t) => `${t}${unit ? " " + unit : ""}`) }],
      series: [{}, { label: el.dataset.label || el.dataset.measurement, stroke: color, width: 1.5 }],
    };
    const data = [points.map((p) => p[0]), points.map((p) => p[1])];
    plots.set(el, new uPlot(options, data, el));
  }

  function start() {
    const charts = [...document.querySelectorAll(".chart[data-thing][data-measurement]")];
    if (charts.length === 0 || typeof uPlot === "undefined") return;
    if ("IntersectionObserver" in window) {
      const observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (entry.isIntersecting) {
            observer.unobserve(entry.target);
            load(entry.target);
          }
        }
      });
      charts.forEach((el) => observer.observe(el));
    } else {
      charts.forEach(load);
    }

    document.querySelectorAll(".chart-group [data-chart-hours]").forEach((button) => {
      button.addEventListener("click", () => {
        const group = button.closest(".chart-group");
        group.querySelectorAll("[data-chart-hours]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
        group.querySelectorAll(".chart").forEach((el) => {
          el.dataset.hours = button.dataset.chartHours;
          load(el);
        });
      });
    });

    let pending = 0;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        for (const [el, plot] of plots) plot.setSize({ width: Math.max(el.clientWidth, 160), height: plot.height });
      }, 150);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
