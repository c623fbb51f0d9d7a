// Draws <div class="chart" data-series='{"t": [unix seconds], "clicks": [n]}'> as a uPlot
// time series (the vendored uplot), in the page's own colours, resized with its box.
"use strict";

function drawChart(box) {
  const data = JSON.parse(box.dataset.series);
  const style = getComputedStyle(document.documentElement);
  const accent = style.getPropertyValue("--accent").trim();
  const muted = style.getPropertyValue("--muted").trim();
  const grid = style.getPropertyValue("--border").trim();
  const axis = { stroke: muted, grid: { stroke: grid }, ticks: { stroke: grid } };
  const options = {
    width: box.clientWidth,
    height: 240,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [axis, { ...axis, size: 50 }],
    series: [{}, { label: "Clicks", stroke: accent, width: 2, fill: accent + "33", points: { show: false } }],
  };
  const chart = new uPlot(options, [data.t, data.clicks], box);
  new ResizeObserver(() => chart.setSize({ width: box.clientWidth, height: 240 })).observe(box);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".chart[data-series]").forEach(drawChart);
});
