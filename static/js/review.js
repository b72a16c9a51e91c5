// Review page: the candidate's and the current holder's learning curves on one Plotly chart per
// metric, each series read from the shared chart-data endpoint (dashboard:chart-series),
// downsampled on the server to about the chart's width and fetched finer for a zoomed step range.
// Escaping, fetching, the layout and zoom handling come from chart_common.js.
(function () {
  "use strict";

  var configElement = document.getElementById("review-curves");
  var C = window.LabLedgerCharts;
  if (!configElement || typeof window.Plotly === "undefined" || !C) {
    return;
  }
  var charts = JSON.parse(configElement.textContent);
  var colors = { candidate: "#2563eb", current: "#9ca3af" };

  // Each trace's URL already names its run and key; only the window and width change.
  function fetchSeries(trace, maxPoints, range) {
    var url = C.seriesUrl(trace.seriesUrl, [], [], {
      max_points: maxPoints,
      x_min: range ? range[0] : null,
      x_max: range ? range[1] : null,
    });
    return C.fetchJson(url).then(function (body) {
      return body.series[0]; // one run and one key per request
    });
  }

  function tracesFor(chart, series) {
    return series.map(function (data, index) {
      var trace = chart.traces[index];
      var name = C.escapeText(trace.name);
      return {
        type: "scatter",
        mode: data.steps.length > 1 ? "lines" : "markers",
        x: data.steps,
        y: data.values,
        name: name,
        line: { width: trace.role === "candidate" ? 2 : 1.5, color: colors[trace.role] },
        marker: { color: colors[trace.role] },
        hovertemplate: name + "<br>step %{x}<br>%{y}<extra></extra>",
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
    var maxPoints = C.pointsFor(element);
    Promise.all(chart.traces.map(function (trace) { return fetchSeries(trace, maxPoints, range); }))
      .then(function (series) {
        var traces = tracesFor(chart, series);
        var layout = C.layout({
          yTitle: chart.key,
          integerX: true,
          range: range,
          traces: traces,
          uirevision: chart.elementId,
        });
        window.Plotly.react(element, traces, layout, C.plotConfig);
        var thinned = series.some(function (data) { return data.downsampled; });
        var where = range ? " in steps " + Math.floor(range[0]) + "–" + Math.ceil(range[1]) : "";
        note.textContent = (thinned ? "Downsampled to about the chart's width" : "All points shown") + where + ".";
        if (!chart.listening) {
          chart.listening = true;
          element.on("plotly_relayout", function (event) {
            var window_ = C.zoomWindow(event);
            if (window_ !== undefined) {
              draw(chart, window_);
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
