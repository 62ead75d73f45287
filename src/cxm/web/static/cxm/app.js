/* cxm web UI behaviour: charts, confirmations, copy buttons. No inline scripts anywhere. */
(function () {
  "use strict";

  function channelChart(element) {
    if (!window.echarts) { return; }
    var source = document.getElementById(element.dataset.chart);
    if (!source) { return; }
    var rows = JSON.parse(source.textContent).slice().reverse();  // largest on top
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption({
      animationDuration: 400,
      grid: { left: 8, right: 48, top: 4, bottom: 4, containLabel: true },
      tooltip: { trigger: "item", formatter: "{b}: {c} events" },
      xAxis: { type: "value", splitLine: { lineStyle: { color: "#eef0f3" } },
               axisLabel: { color: "#667085" } },
      yAxis: { type: "category", data: rows.map(function (r) { return r.name; }),
               axisTick: { show: false }, axisLine: { lineStyle: { color: "#cfd4dc" } },
               axisLabel: { color: "#344054", fontWeight: 500 } },
      series: [{
        type: "bar", barMaxWidth: 22,
        data: rows.map(function (r) {
          return { value: r.value, itemStyle: { color: r.colour, borderRadius: [0, 4, 4, 0] } };
        }),
        label: { show: true, position: "right", color: "#475467" }
      }]
    });
    element.style.height = Math.max(120, rows.length * 34 + 16) + "px";
    chart.resize();
    window.addEventListener("resize", function () { chart.resize(); });
  }

  // --- survey charts (data from json_script, type from data-chart-type) ----------------------

  var AXIS = { color: "#667085" };
  var GRID_LINE = { lineStyle: { color: "#eef0f3" } };
  var TONES = { ok: "#16a34a", warn: "#d97706", muted: "#98a2b3" };

  function dataOf(element) {
    var source = document.getElementById(element.dataset.chart);
    return source ? JSON.parse(source.textContent) : null;
  }

  function mount(element, option, height) {
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    if (height) { element.style.height = height + "px"; }
    chart.setOption(option);
    chart.resize();
    window.addEventListener("resize", function () { chart.resize(); });
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec"];

  function shortDate(iso, monthly) {  // "2025-03-17" -> "17 Mar" (or "Mar 2025" by month)
    var parts = iso.split("-");
    var month = MONTHS[parseInt(parts[1], 10) - 1] || parts[1];
    return monthly ? month + " " + parts[0] : parseInt(parts[2], 10) + " " + month;
  }

  function trendChart(element, data) {
    var points = data.points;
    var labels = points.map(function (p) { return p.start; });
    var low = points.map(function (p) { return p.low; });
    var band = points.map(function (p) {
      return p.low === null || p.high === null ? null : +(p.high - p.low).toFixed(2);
    });
    var digits = data.kind === "ces" ? 2 : 0;
    var monthly = element.dataset.period === "month";
    mount(element, {
      animationDuration: 400,
      grid: { left: 8, right: 28, top: 16, bottom: 8, containLabel: true },
      tooltip: {
        trigger: "axis",
        formatter: function (items) {
          var p = points[items[0].dataIndex];
          var value = p.value === null ? "—" : p.value.toFixed(digits);
          var range = p.low === null ? "" : " (range " + p.low.toFixed(digits) + " to " +
            p.high.toFixed(digits) + ")";
          return p.start + "<br>" + value + range + "<br>" + p.n + " answers";
        }
      },
      xAxis: { type: "category", data: labels, boundaryGap: false,
               axisLabel: { color: AXIS.color, hideOverlap: true, margin: 12,
                            formatter: function (value) { return shortDate(value, monthly); } },
               axisLine: { lineStyle: { color: "#cfd4dc" } } },
      yAxis: { type: "value", min: data.min, max: data.max, splitLine: GRID_LINE,
               axisLabel: AXIS },
      series: [
        { name: "low", type: "line", data: low, stack: "ci", stackStrategy: "all",
          symbol: "none", lineStyle: { opacity: 0 }, silent: true },
        { name: "range", type: "line", data: band, stack: "ci", stackStrategy: "all",
          symbol: "none", lineStyle: { opacity: 0 }, silent: true,
          areaStyle: { color: "rgba(79, 70, 229, .12)" } },
        { name: "score", type: "line", data: points.map(function (p) { return p.value; }),
          symbol: "circle", symbolSize: 6, connectNulls: true,
          lineStyle: { color: "#4f46e5", width: 2 }, itemStyle: { color: "#4f46e5" } }
      ]
    });
  }

  function distributionChart(element, rows) {
    mount(element, {
      animationDuration: 400,
      grid: { left: 8, right: 8, top: 16, bottom: 4, containLabel: true },
      tooltip: { trigger: "item", formatter: "score {b}: {c} answers" },
      xAxis: { type: "category", data: rows.map(function (r) { return r.name; }),
               axisTick: { show: false }, axisLabel: AXIS,
               axisLine: { lineStyle: { color: "#cfd4dc" } } },
      yAxis: { type: "value", splitLine: GRID_LINE, axisLabel: AXIS, minInterval: 1 },
      series: [{
        type: "bar", barMaxWidth: 28,
        data: rows.map(function (r) {
          return { value: r.value, itemStyle: { color: r.colour, borderRadius: [4, 4, 0, 0] } };
        })
      }]
    });
  }

  function driversChart(element, rows) {
    rows = rows.slice().reverse();  // largest effect on top
    mount(element, {
      animationDuration: 400,
      grid: { left: 8, right: 56, top: 4, bottom: 4, containLabel: true },
      tooltip: { trigger: "item", formatter: "{b}: {c} points" },
      xAxis: { type: "value", splitLine: GRID_LINE, axisLabel: AXIS },
      yAxis: { type: "category", data: rows.map(function (r) { return r.name; }),
               axisTick: { show: false }, axisLine: { lineStyle: { color: "#cfd4dc" } },
               axisLabel: { color: "#344054", fontWeight: 500, width: 220, overflow: "truncate" } },
      series: [{
        type: "bar", barMaxWidth: 20,
        data: rows.map(function (r) {
          var colour = r.value < 0 ? "#dc2626" : "#16a34a";
          return { value: r.value, itemStyle: {
            color: r.tone === "ok" ? colour : colour + "88",
            borderRadius: r.value < 0 ? [4, 0, 0, 4] : [0, 4, 4, 0] } };
        }),
        label: { show: true, position: "right", color: "#475467",
                 formatter: function (p) { return (p.value > 0 ? "+" : "") + p.value; } }
      }]
    }, Math.max(140, rows.length * 32 + 24));
  }

  function sparkChart(element, rows) {
    mount(element, {
      animation: false,
      grid: { left: 2, right: 2, top: 6, bottom: 2 },
      tooltip: { trigger: "axis", formatter: function (items) {
        return rows[items[0].dataIndex].start + ": " + items[0].value + " answers";
      } },
      xAxis: { type: "category", show: false, boundaryGap: false,
               data: rows.map(function (r) { return r.start; }) },
      yAxis: { type: "value", show: false, min: 0 },
      series: [{ type: "line", data: rows.map(function (r) { return r.count; }),
                 symbol: rows.length > 1 ? "none" : "circle", smooth: true,
                 lineStyle: { color: "#4f46e5", width: 2 },
                 areaStyle: { color: "rgba(79, 70, 229, .12)" } }]
    });
  }

  var CHARTS = { trend: trendChart, distribution: distributionChart, drivers: driversChart,
                 spark: sparkChart };

  function chart(element) {
    if (!window.echarts || element.dataset.chartReady) { return; }
    element.dataset.chartReady = "1";
    var draw = CHARTS[element.dataset.chartType];
    if (!draw) { channelChart(element); return; }
    var data = dataOf(element);
    if (data) { draw(element, data); }
  }

  function init(root) {
    if (!root.querySelectorAll) { return; }
    if (root.matches && root.matches("[data-chart]")) { chart(root); }
    root.querySelectorAll("[data-chart]").forEach(chart);
  }

  // Charts in content swapped in by htmx (e.g. the survey trend's period switch).
  document.addEventListener("htmx:load", function (event) { init(event.target); });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm &&
        !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
})();
