// Draws <div class="chart" data-series='{"t": [unix seconds], "clicks": [n], "unique": [n]}'>
// as a uPlot time series (the vendored uplot), in the page's own colours, resized with its
// box. "unique" is optional: when given, it is a second, dashed line (the page's legend
// names both; a dash tells them apart without colour).
"use strict";

function drawChart(box) {
  const data = JSON.parse(box.dataset.series);
  const style = getComputedStyle(document.documentElement);
  const accent = style.getPropertyValue("--accent").trim();
  const second = style.getPropertyValue("--chart-second").trim() || accent;
  const muted = style.getPropertyValue("--muted").trim();
  const grid = style.getPropertyValue("--border").trim();
  const axis = { stroke: muted, grid: { stroke: grid }, ticks: { stroke: grid } };
  const series = [{}, { label: "Clicks", stroke: accent, width: 2, fill: accent + "33", points: { show: false } }];
  const values = [data.t, data.clicks];
  if (Array.isArray(data.unique)) {
    series.push({ label: "Unique clicks", stroke: second, width: 2, dash: [6, 4], points: { show: false } });
    values.push(data.unique);
  }
  const options = {
    width: box.clientWidth,
    height: 240,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [axis, { ...axis, size: 50 }],
    series,
  };
  const chart = new uPlot(options, values, box);
  new ResizeObserver(() => chart.setSize({ width: box.clientWidth, height: 240 })).observe(box);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".chart[data-series]").forEach(drawChart);
});
