// Run detail: one Plotly line chart per metric key, fed by the dashboard's series endpoint.
// Zooming asks the server for a finer sample of just the visible step range.
(function () {
  "use strict";

  var configElement = document.getElementById("run-chart-config");
  if (!configElement || typeof window.Plotly === "undefined") {
    return;
  }
  var charts = JSON.parse(configElement.textContent);

  // Plotly renders titles, legends and hover labels as HTML-like text, so user text
  // (metric keys, run names) is escaped before it reaches Plotly.
  function escapeForPlotly(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function setNote(chart, text) {
    var note = document.getElementById(chart.elementId + "-note");
    if (note) {
      note.textContent = text;
    }
  }

  function describe(data, range) {
    var shown = data.steps.length.toLocaleString();
    var total = data.totalPoints.toLocaleString();
    var where = range ? " in steps " + Math.floor(range[0]) + "–" + Math.ceil(range[1]) : "";
    if (data.downsampled) {
      return "Showing " + shown + " of " + total + " points" + where + " (downsampled; zoom in for detail).";
    }
    if (data.totalPoints === 1) {
      return "Showing the only point" + where + ".";
    }
    return "Showing all " + total + " points" + where + ".";
  }

  function layoutFor(chart, range) {
    var xaxis = { title: { text: "step" }, zeroline: false };
    if (range) {
      xaxis.range = range;
      xaxis.autorange = false;
    } else {
      xaxis.autorange = true;
    }
    return {
      margin: { l: 60, r: 16, t: 12, b: 44 },
      height: 300,
      showlegend: false,
      hovermode: "closest",
      // A fixed uirevision keeps the user's zoom when new data arrives.
      uirevision: chart.elementId,
      xaxis: xaxis,
      yaxis: { title: { text: escapeForPlotly(chart.key) }, zeroline: false, automargin: true },
      font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    };
  }

  function traceFor(chart, data) {
    return {
      type: "scatter",
      mode: data.steps.length > 1 ? "lines" : "markers",
      x: data.steps,
      y: data.values,
      name: escapeForPlotly(chart.runName),
      connectgaps: false,
      line: { width: 1.5, color: "#2563eb" },
      hovertemplate: "step %{x}<br>%{y}<extra></extra>",
    };
  }

  function ChartView(chart) {
    this.chart = chart;
    this.element = document.getElementById(chart.elementId);
    this.controller = null;
    this.loadedRange = undefined;
    this.drawn = false;
  }

  ChartView.prototype.maxPoints = function () {
    // About one point per horizontal pixel, as the server's downsampler expects.
    var width = this.element.clientWidth || 800;
    return Math.max(100, Math.min(5000, Math.round(width)));
  };

  ChartView.prototype.load = function (range) {
    var self = this;
    var key = range ? range[0] + ":" + range[1] : "all";
    if (key === this.loadedRange) {
      return;
    }
    this.loadedRange = key;
    if (this.controller) {
      this.controller.abort();
    }
    this.controller = typeof AbortController === "undefined" ? null : new AbortController();
    var url = new URL(this.chart.seriesUrl, window.location.href);
    url.searchParams.set("max_points", String(this.maxPoints()));
    if (range) {
      url.searchParams.set("x_min", String(range[0]));
      url.searchParams.set("x_max", String(range[1]));
    }
    setNote(this.chart, "Loading…");
    fetch(url.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: this.controller ? this.controller.signal : undefined,
    })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            throw new Error(body && body.message ? body.message : "HTTP " + response.status);
          }
          return body;
        });
      })
      .then(function (data) {
        self.draw(data, range);
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") {
          return;
        }
        self.loadedRange = undefined;
        setNote(self.chart, "Could not load this series: " + error.message);
      });
  };

  ChartView.prototype.draw = function (data, range) {
    var self = this;
    var config = { responsive: true, displaylogo: false, typesetMath: false };
    window.Plotly.react(this.element, [traceFor(this.chart, data)], layoutFor(this.chart, range), config);
    setNote(this.chart, describe(data, range));
    if (!this.drawn) {
      this.drawn = true;
      this.element.on("plotly_relayout", function (event) {
        self.onRelayout(event);
      });
    }
  };

  ChartView.prototype.onRelayout = function (event) {
    if (event["xaxis.autorange"]) {
      this.load(null);
      return;
    }
    var lo = event["xaxis.range[0]"];
    var hi = event["xaxis.range[1]"];
    if (Array.isArray(event["xaxis.range"])) {
      lo = event["xaxis.range"][0];
      hi = event["xaxis.range"][1];
    }
    if (typeof lo === "number" && typeof hi === "number" && isFinite(lo) && isFinite(hi)) {
      this.load([Math.min(lo, hi), Math.max(lo, hi)]);
    }
  };

  charts.forEach(function (chart) {
    var view = new ChartView(chart);
    if (view.element) {
      view.load(null);
    }
  });
})();
