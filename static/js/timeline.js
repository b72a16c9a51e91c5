// Alias timeline: one row per alias or stage, one bar per version that held it (Plotly).
(function () {
  "use strict";

  var dataElement = document.getElementById("alias-timeline-data");
  var element = document.getElementById("alias-timeline");
  if (!dataElement || !element || typeof window.Plotly === "undefined") {
    return;
  }
  var chart = JSON.parse(dataElement.textContent);

  // Plotly renders labels and hovers as HTML-like text: escape user text first.
  function escapeForPlotly(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  var palette = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563"];
  var byVersion = {};
  chart.bars.forEach(function (bar) {
    var key = "v" + bar.version;
    if (!byVersion[key]) {
      byVersion[key] = { base: [], x: [], y: [], text: [], hover: [], lineColor: [], lineWidth: [] };
    }
    var trace = byVersion[key];
    var start = new Date(bar.start);
    var end = new Date(bar.end);
    trace.base.push(bar.start);
    trace.x.push(Math.max(end - start, 1));
    trace.y.push(escapeForPlotly(bar.label));
    trace.text.push(bar.forced ? key + " (break-glass)" : key);
    // A break-glass move is outlined in red, so it stands out wherever the timeline is read.
    trace.lineColor.push(bar.forced ? "#b42318" : "rgba(0,0,0,0)");
    trace.lineWidth.push(bar.forced ? 3 : 0);
    trace.hover.push(
      escapeForPlotly(bar.label) + " → " + key + "<br>" + bar.start.slice(0, 19).replace("T", " ") +
        " – " + (bar.current ? "now" : bar.end.slice(0, 19).replace("T", " ")) +
        (bar.by ? "<br>moved by " + escapeForPlotly(bar.by) : "") +
        (bar.forced ? "<br><b>break-glass move</b>" : "")
    );
  });
  var traces = Object.keys(byVersion).map(function (key, index) {
    var trace = byVersion[key];
    return {
      type: "bar",
      orientation: "h",
      name: key,
      base: trace.base,
      x: trace.x,
      y: trace.y,
      text: trace.text,
      textposition: "inside",
      insidetextanchor: "middle",
      hovertext: trace.hover,
      hovertemplate: "%{hovertext}<extra></extra>",
      marker: {
        color: palette[index % palette.length],
        line: { color: trace.lineColor, width: trace.lineWidth },
      },
    };
  });
  var rows = new Set(chart.bars.map(function (bar) { return bar.label; })).size;
  var layout = {
    barmode: "overlay",
    height: Math.max(180, 70 + rows * 46),
    margin: { l: 150, r: 16, t: 12, b: 40 },
    xaxis: { type: "date", title: { text: "time (UTC)" } },
    yaxis: { automargin: true, autorange: "reversed" },
    legend: { title: { text: "version" } },
    font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
  };
  window.Plotly.newPlot(element, traces, layout, { responsive: true, displaylogo: false });
})();
