// Review page: the candidate's and the current holder's learning curves on one Plotly chart per
// metric, each series read from the run page's endpoint (dashboard:metric-series).
(function () {
  "use strict";

  var configElement = document.getElementById("review-curves");
  if (!configElement || typeof window.Plotly === "undefined") {
    return;
  }
  var charts = JSON.parse(configElement.textContent);
  var colors = { candidate: "#2563eb", current: "#9ca3af" };

  // Plotly renders legends and hovers as HTML-like text: escape user text (run names, keys).
  function escapeForPlotly(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function fetchSeries(trace, maxPoints) {
    var url = new URL(trace.seriesUrl, window.location.href);
    url.searchParams.set("max_points", String(maxPoints));
    return fetch(url.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            throw new Error(body && body.message ? body.message : "HTTP " + response.status);
          }
          return body;
        });
      }
    );
  }

  function draw(chart) {
    var element = document.getElementById(chart.elementId);
    var note = document.getElementById(chart.elementId + "-note");
    if (!element) {
      return;
    }
    var maxPoints = Math.max(100, Math.min(5000, Math.round(element.clientWidth || 800)));
    Promise.all(chart.traces.map(function (trace) { return fetchSeries(trace, maxPoints); }))
      .then(function (series) {
        var traces = series.map(function (data, index) {
          var trace = chart.traces[index];
          return {
            type: "scatter",
            mode: data.steps.length > 1 ? "lines" : "markers",
            x: data.steps,
            y: data.values,
            name: escapeForPlotly(trace.name),
            line: { width: trace.role === "candidate" ? 2 : 1.5, color: colors[trace.role] },
            marker: { color: colors[trace.role] },
            hovertemplate: escapeForPlotly(trace.name) + "<br>step %{x}<br>%{y}<extra></extra>",
          };
        });
        var layout = {
          margin: { l: 60, r: 16, t: 12, b: 44 },
          height: 300,
          hovermode: "closest",
          showlegend: true,
          legend: { orientation: "h", y: -0.25 },
          xaxis: { title: { text: "step" }, zeroline: false },
          yaxis: { title: { text: escapeForPlotly(chart.key) }, zeroline: false, automargin: true },
          font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 },
          paper_bgcolor: "rgba(0,0,0,0)",
          plot_bgcolor: "rgba(0,0,0,0)",
        };
        window.Plotly.newPlot(element, traces, layout, { responsive: true, displaylogo: false });
        var thinned = series.some(function (data) { return data.downsampled; });
        note.textContent = thinned ? "Downsampled to about the chart's width." : "All points shown.";
      })
      .catch(function (error) {
        note.textContent = "Could not load these curves: " + error.message;
      });
  }

  charts.forEach(draw);
})();
