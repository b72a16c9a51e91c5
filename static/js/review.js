// Review page: the candidate's and the current holder's learning curves on one Plotly chart per
// metric, each series read from the shared chart-data endpoint (dashboard:chart-series), downsampled on
// the server to about the chart's width and fetched finer for a zoomed step range.
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

  function fetchSeries(trace, maxPoints, range) {
    var url = new URL(trace.seriesUrl, window.location.href);
    url.searchParams.set("max_points", String(maxPoints));
    if (range) {
      url.searchParams.set("x_min", String(range[0]));
      url.searchParams.set("x_max", String(range[1]));
    }
    return fetch(url.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            throw new Error(body && body.message ? body.message : "HTTP " + response.status);
          }
          return body.series[0]; // one run and one key per request
        });
      }
    );
  }

  function layoutFor(chart, range) {
    var xaxis = { title: { text: "step" }, zeroline: false, autorange: !range };
    if (range) {
      xaxis.range = range;
    }
    return {
      margin: { l: 60, r: 16, t: 12, b: 44 },
      height: 300,
      hovermode: "closest",
      showlegend: true,
      legend: { orientation: "h", y: -0.25 },
      // A fixed uirevision keeps the user's zoom when finer data arrives.
      uirevision: chart.elementId,
      xaxis: xaxis,
      yaxis: { title: { text: escapeForPlotly(chart.key) }, zeroline: false, automargin: true },
      font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    };
  }

  function tracesFor(chart, series) {
    return series.map(function (data, index) {
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
  }

  // Draws both runs' series; zooming asks the server for a finer sample of the visible steps.
  function draw(chart, range) {
    var element = document.getElementById(chart.elementId);
    var note = document.getElementById(chart.elementId + "-note");
    if (!element) {
      return;
    }
    var maxPoints = Math.max(100, Math.min(5000, Math.round(element.clientWidth || 800)));
    Promise.all(chart.traces.map(function (trace) { return fetchSeries(trace, maxPoints, range); }))
      .then(function (series) {
        var config = { responsive: true, displaylogo: false, typesetMath: false };
        window.Plotly.react(element, tracesFor(chart, series), layoutFor(chart, range), config);
        var thinned = series.some(function (data) { return data.downsampled; });
        var where = range ? " in steps " + Math.floor(range[0]) + "–" + Math.ceil(range[1]) : "";
        note.textContent = (thinned ? "Downsampled to about the chart's width" : "All points shown") + where + ".";
        if (!chart.listening) {
          chart.listening = true;
          element.on("plotly_relayout", function (event) {
            if (event["xaxis.autorange"]) {
              draw(chart, null);
              return;
            }
            var lo = event["xaxis.range[0]"];
            var hi = event["xaxis.range[1]"];
            if (Array.isArray(event["xaxis.range"])) {
              lo = event["xaxis.range"][0];
              hi = event["xaxis.range"][1];
            }
            if (typeof lo === "number" && typeof hi === "number" && isFinite(lo) && isFinite(hi)) {
              draw(chart, [Math.min(lo, hi), Math.max(lo, hi)]);
            }
          });
        }
      })
      .catch(function (error) {
        note.textContent = "Could not load these curves: " + error.message;
      });
  }

  charts.forEach(function (chart) {
    draw(chart, null);
  });
})();
