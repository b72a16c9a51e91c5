// Run detail: one Plotly line chart per metric key, fed by the shared chart-data endpoint.
// Zooming asks the server for a finer sample of just the visible step range. While the run is
// running, one request every few seconds brings every chart's points after its last step.
(function () {
  "use strict";

  var configElement = document.getElementById("run-chart-config");
  var C = window.LabLedgerCharts;
  if (!configElement || typeof window.Plotly === "undefined" || !C) {
    return;
  }
  var charts = JSON.parse(configElement.textContent);

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
    this.series = null;
    this.range = null;
  }

  ChartView.prototype.draw = function (series, range) {
    var self = this;
    this.series = series;
    this.range = range;
    var trace = {
      type: "scatter",
      mode: series.steps.length > 1 ? "lines" : "markers",
      x: series.steps,
      y: series.values,
      customdata: C.hoverData(series),
      name: C.escapeText(this.chart.runName),
      connectgaps: false,
      line: { width: 1.5, color: "#2563eb" },
      hovertemplate: C.HOVER,
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

  ChartView.prototype.lastStep = function () {
    var steps = this.series ? this.series.steps : [];
    return steps.length ? steps[steps.length - 1] : null;
  };

  // Adds the points of `fresh` after the last one drawn; a zoom keeps its window.
  ChartView.prototype.extend = function (fresh) {
    if (!this.series) {
      return;
    }
    var after = this.lastStep();
    var keep = fresh.steps.map(function (step) { return after === null || step > after; });
    function kept(values) { return values.filter(function (_, i) { return keep[i]; }); }
    var added = kept(fresh.steps).length;
    if (added === 0) {
      return;
    }
    this.draw(
      {
        steps: this.series.steps.concat(kept(fresh.steps)),
        timestamps: this.series.timestamps.concat(kept(fresh.timestamps)),
        values: this.series.values.concat(kept(fresh.values)),
        totalPoints: this.series.totalPoints + added,
        downsampled: this.series.downsampled || fresh.downsampled,
      },
      this.range
    );
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
    return C.fetchJson(url, this.controller ? this.controller.signal : undefined)
      .then(function (body) {
        self.draw(body.series[0], range);
        return body;
      })
      .catch(function (error) {
        if (error && error.name !== "AbortError") {
          setNote(self.chart, "Could not load this series: " + error.message);
        }
      });
  };

  // While the run is running: the new points of every chart not zoomed in (a zoomed chart shows
  // a window; it reloads whole when zoomed out), in requests of at most `keysPerRequest` keys,
  // each after the earliest last step of its keys. Charts are batched in order of their last
  // steps, so a key that stopped logging early does not make every other key's tail be read
  // again. Resolves to whether the run still runs.
  function fetchNewPoints(views, live) {
    var open = views
      .filter(function (view) { return view.series && view.range === null; })
      .sort(function (a, b) { return (a.lastStep() || 0) - (b.lastStep() || 0); });
    var requests = open.length ? [] : [fetchNew([views[0]])]; // still asks whether the run ended
    for (var start = 0; start < open.length; start += live.keysPerRequest) {
      requests.push(fetchNew(open.slice(start, start + live.keysPerRequest)));
    }
    return Promise.all(requests).then(function (bodies) {
      return bodies.every(function (body) { return body.running.indexOf(views[0].chart.runId) !== -1; });
    });
  }

  function fetchNew(batch) {
    var after = null;
    batch.forEach(function (view) {
      var step = view.lastStep();
      after = step === null ? after : after === null ? step : Math.min(after, step);
    });
    var chart = batch[0].chart;
    var url = C.seriesUrl(chart.seriesUrl, [chart.runId], batch.map(function (view) { return view.chart.key; }), {
      max_points: C.pointsFor(batch[0].element),
      after_step: after,
    });
    return C.fetchJson(url).then(function (body) {
      body.series.forEach(function (fresh) {
        batch.forEach(function (view) {
          if (view.chart.key === fresh.key && view.range === null) {
            view.extend(fresh);
          }
        });
      });
      return body;
    });
  }

  var views = charts
    .map(function (chart) { return new ChartView(chart); })
    .filter(function (view) { return view.element; });
  var loads = views.map(function (view) { return view.load(null); });
  var liveElement = document.getElementById("run-live-config");
  var live = liveElement ? JSON.parse(liveElement.textContent) : { running: false };
  if (views.length && live.running) {
    Promise.all(loads).then(function () {
      C.pollWhileRunning(function () { return fetchNewPoints(views, live); }, {
        running: "the run is running",
        ended: "The run has ended: reload the page for its final summary.",
      });
    });
  }
})();
