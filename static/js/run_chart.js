// Run detail: one Plotly line chart per metric key, fed by the shared chart-data endpoint
// (one request for all keys). Zooming asks the server for a finer sample of just the visible
// step range.
(function () {
  "use strict";

  var configElement = document.getElementById("run-chart-config");
  var C = window.LabLedgerCharts;
  if (!configElement || typeof window.Plotly === "undefined" || !C) {
    return;
  }
  var charts = JSON.parse(configElement.textContent);
  var HOVER = "<b>%{fullData.name}</b><br>step %{customdata[0]}<br>value %{y:.6g}<br>%{customdata[1]}<extra></extra>";

  function setNote(chart, text) {
    var note = document.getElementById(chart.elementId + "-note");
    if (note) {
      note.textContent = text;
    }
  }

  function ChartView(chart) {
    this.chart = chart;
    this.element = document.getElementById(chart.elementId);
    this.controller = null;
    this.drawn = false;
  }

  ChartView.prototype.draw = function (series, range) {
    var self = this;
    var trace = {
      type: "scatter",
      mode: series.steps.length > 1 ? "lines" : "markers",
      x: series.steps,
      y: series.values,
      customdata: C.hoverData(series),
      name: C.escapeText(this.chart.runName),
      connectgaps: false,
      line: { width: 1.5, color: "#2563eb" },
      hovertemplate: HOVER,
    };
    var layout = C.layout({
      yTitle: this.chart.key,
      integerX: true,
      range: range,
      traces: [trace],
      showlegend: false,
      uirevision: this.chart.elementId,
    });
    window.Plotly.react(this.element, [trace], layout, C.plotConfig);
    setNote(this.chart, C.describe(series, range));
    if (!this.drawn) {
      this.drawn = true;
      this.element.on("plotly_relayout", function (event) {
        var window_ = C.zoomWindow(event);
        if (window_ !== undefined) {
          self.load(window_);
        }
      });
    }
  };

  ChartView.prototype.load = function (range) {
    var self = this;
    if (this.controller) {
      this.controller.abort();
    }
    this.controller = typeof AbortController === "undefined" ? null : new AbortController();
    var url = C.seriesUrl(this.chart.seriesUrl, [this.chart.runId], [this.chart.key], {
      max_points: C.pointsFor(this.element),
      x_min: range ? range[0] : null,
      x_max: range ? range[1] : null,
    });
    setNote(this.chart, "Loading…");
    C.fetchJson(url, this.controller ? this.controller.signal : undefined)
      .then(function (body) {
        self.draw(body.series[0], range);
      })
      .catch(function (error) {
        if (error && error.name !== "AbortError") {
          setNote(self.chart, "Could not load this series: " + error.message);
        }
      });
  };

  charts.forEach(function (chart) {
    var view = new ChartView(chart);
    if (view.element) {
      view.load(null);
    }
  });
})();
