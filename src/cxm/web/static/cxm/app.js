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

  function init(root) {
    root.querySelectorAll("[data-chart]").forEach(channelChart);
  }

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
