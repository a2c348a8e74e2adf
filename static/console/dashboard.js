// Receivables dashboard: draws each section's chart from the JSON the page carries
// ({{ charts|json_script }}), no inline script (CSP). Chart.js is vendored under
// static/vendor/chartjs/. The numbers are for display; the tables and CSV hold the exact values.
(function () {
  "use strict";
  const PALETTE = ["#2b6cb0", "#c81e1e", "#2f855a", "#b7791f", "#6b46c1", "#0987a0", "#d53f8c", "#4a5568", "#dd6b20"];

  // A chart with nothing to draw says so (the message is the page's, translated) instead of a blank canvas.
  function empty(canvas) {
    const holder = canvas.parentElement;
    const message = document.createElement("p");
    message.className = "empty";
    message.dataset.testid = "chart-empty-" + canvas.dataset.chart;
    message.textContent = holder.dataset.empty;
    holder.replaceChildren(message);
  }

  // A zero is a figure (drawn); a chart whose every point is missing (a rate of nothing due) has none.
  function hasData(spec) {
    return !!spec && spec.datasets.some((dataset) => dataset.data.some((value) => value !== null));
  }

  function draw() {
    const source = document.getElementById("dashboard-charts");
    if (!source || typeof window.Chart === "undefined") return;
    const charts = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const spec = charts[canvas.dataset.chart];
      if (!hasData(spec)) {
        empty(canvas);
        return;
      }
      const line = spec.type === "line";
      const datasets = spec.datasets.map((dataset, index) => {
        const colour = PALETTE[index % PALETTE.length];
        return {
          label: dataset.label,
          data: dataset.data,
          backgroundColor: line ? colour : colour + "cc",
          borderColor: colour,
          borderWidth: line ? 2 : 1,
          pointRadius: line ? 3 : 0,
          spanGaps: true,
        };
      });
      const tick = spec.percent ? (value) => value + "%" : (value) => Number(value).toLocaleString();
      new window.Chart(canvas, {
        type: spec.type,
        data: { labels: spec.labels, datasets: datasets },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
          scales: {
            x: { stacked: !!spec.stacked },
            y: { stacked: !!spec.stacked, beginAtZero: true, ticks: { callback: tick } },
          },
        },
      });
      canvas.dataset.drawn = "1";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
