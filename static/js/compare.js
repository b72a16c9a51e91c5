// Compare page: one chart per metric key with a trace per run (one colour per run on every
// chart), EMA smoothing over a faint raw curve, log scale, x by step / wall time / time since
// start, group bands computed on the server, a diff table filter, parallel coordinates, a
// scatter, and live extension of RUNNING runs' traces. Each chart's series come in one request.
(function () {
  "use strict";

  // Run colours arrive as data attributes: the Content-Security-Policy refuses style="" in the
  // page, while a style property set from a script file is allowed.
  Array.prototype.forEach.call(document.querySelectorAll(".swatch[data-colour]"), function (swatch) {
    swatch.style.backgroundColor = swatch.dataset.colour;
  });

  var configElement = document.getElementById("compare-config");
  var C = window.LabLedgerCharts;
  if (!configElement || typeof window.Plotly === "undefined" || !C) {
    return;
  }
  var config = JSON.parse(configElement.textContent);
  var MAX_LEGEND_ENTRIES = 12;
  var runsById = {};
  config.runs.forEach(function (run) {
    runsById[run.id] = run;
  });
  var state = { x: config.x, smoothing: config.smoothing, log: config.log, groupBy: config.groupBy };

  var charts = config.keys.map(function (key, index) {
    return {
      key: key,
      element: document.getElementById("compare-chart-" + index),
      note: document.getElementById("compare-chart-" + index + "-note"),
      series: {}, // run id → {steps, timestamps, values, totalPoints, downsampled}
      bands: [],
      traces: {}, // run id → {raw: index, smooth: index, emaState}
      range: null,
      drawn: false,
    };
  });

  function runIds() {
    return config.runs.map(function (run) {
      return run.id;
    });
  }

  function saveState() {
    var url = new URL(window.location.href);
    url.searchParams.set("x", state.x);
    url.searchParams.set("smoothing", String(state.smoothing));
    if (state.log) {
      url.searchParams.set("log", "1");
    } else {
      url.searchParams.delete("log");
    }
    if (state.groupBy) {
      url.searchParams.set("group_by", state.groupBy);
    } else {
      url.searchParams.delete("group_by");
    }
    window.history.replaceState(null, "", url.toString());
    carrySettings();
    var xNote = document.getElementById("x-axis-note");
    if (xNote) {
      xNote.hidden = !state.groupBy;
    }
  }

  // The page's other forms (parallel coordinates, scatter, importance) carry the chart settings
  // as hidden inputs: kept in step with the controls here, so "Draw" or "Weigh" undoes none of them.
  function carrySettings() {
    var settings = {
      x: state.x,
      smoothing: String(state.smoothing),
      log: state.log ? "1" : "",
      group_by: state.groupBy,
    };
    document.querySelectorAll("form.plot-controls").forEach(function (form) {
      Object.keys(settings).forEach(function (name) {
        form.querySelectorAll("input[type=hidden][name='" + name + "']").forEach(function (input) {
          input.remove();
        });
        if (settings[name]) {
          var input = document.createElement("input");
          input.type = "hidden";
          input.name = name;
          input.value = settings[name];
          form.appendChild(input);
        }
      });
    });
  }

  function xTitle() {
    return { step: "step", wall: "wall time (UTC)", relative: "seconds since start" }[state.x];
  }

  function runTraces(chart) {
    var traces = [];
    chart.traces = {};
    config.runs.forEach(function (run) {
      var series = chart.series[run.id];
      if (!series || series.steps.length === 0) {
        return;
      }
      var name = C.escapeText(run.name);
      var x = C.xValues(series, state.x, run.startTime);
      var smoothing = state.smoothing > 0;
      var entry = { raw: traces.length };
      traces.push({
        type: "scatter",
        mode: series.steps.length > 1 ? "lines" : "markers",
        x: x,
        y: series.values,
        customdata: C.hoverData(series),
        name: name,
        legendgroup: run.id,
        showlegend: !smoothing,
        opacity: smoothing ? 0.25 : 1,
        connectgaps: false,
        line: { width: 1.5, color: run.colour },
        marker: { color: run.colour },
        hovertemplate: C.HOVER,
      });
      if (smoothing) {
        var smoothed = C.ema(series.values, state.smoothing);
        entry.smooth = traces.length;
        entry.emaState = smoothed.state;
        traces.push({
          type: "scatter",
          mode: "lines",
          x: x,
          y: smoothed.values,
          customdata: C.hoverData(series),
          name: name,
          legendgroup: run.id,
          connectgaps: false,
          line: { width: 2, color: run.colour },
          hovertemplate: C.HOVER,
        });
      }
      chart.traces[run.id] = entry;
    });
    return traces;
  }

  function bandTraces(chart) {
    var traces = [];
    chart.bands.forEach(function (band, index) {
      var colour = runsById[band.runIds[0]] ? runsById[band.runIds[0]].colour : "#4e79a7";
      var label = C.escapeText(state.groupBy + "=" + (band.label || "(none)") + " (" + band.runIds.length + (band.runIds.length === 1 ? " run)" : " runs)"));
      var group = "group-" + index;
      traces.push({
        type: "scatter", mode: "lines", x: band.steps, y: band.low, line: { width: 0, color: colour },
        legendgroup: group, showlegend: false, hoverinfo: "skip", name: label,
      });
      traces.push({
        type: "scatter", mode: "lines", x: band.steps, y: band.high, line: { width: 0, color: colour },
        fill: "tonexty", fillcolor: colour + "33", legendgroup: group, showlegend: false,
        hoverinfo: "skip", name: label,
      });
      traces.push({
        type: "scatter", mode: "lines", x: band.steps, y: band.mean, line: { width: 2, color: colour },
        legendgroup: group, name: label,
        hovertemplate: "<b>%{fullData.name}</b><br>step %{x}<br>mean %{y:.6g}<extra></extra>",
      });
    });
    return traces;
  }

  function draw(chart) {
    var grouped = Boolean(state.groupBy);
    var traces = grouped ? bandTraces(chart) : runTraces(chart);
    var entries = traces.filter(function (t) { return t.showlegend !== false; }).length;
    var layout = C.layout({
      yTitle: chart.key,
      // Past a dozen entries a legend crowds out the plot; the run list above keys the colours.
      showlegend: entries <= MAX_LEGEND_ENTRIES,
      xTitle: grouped ? "step" : xTitle(),
      xType: !grouped && state.x === "wall" ? "date" : undefined,
      integerX: grouped || state.x === "step",
      range: chart.range,
      log: state.log,
      traces: traces,
      height: 340,
      uirevision: chart.key + state.x + (grouped ? "g" : ""),
    });
    window.Plotly.react(chart.element, traces, layout, C.plotConfig);
    var shown = Object.keys(chart.series).map(function (id) {
      return chart.series[id];
    });
    var total = shown.reduce(function (sum, s) { return sum + s.totalPoints; }, 0);
    var drawnPoints = shown.reduce(function (sum, s) { return sum + s.steps.length; }, 0);
    var downsampled = shown.some(function (s) { return s.downsampled; });
    chart.note.textContent = grouped
      ? chart.bands.length + " groups by " + state.groupBy + ": mean line, min–max band on a common step grid." +
        " Grouped lines are drawn over steps" + (state.x === "step" ? "." : ", whatever the x-axis choice.")
      : "Showing " + drawnPoints.toLocaleString() + " of " + total.toLocaleString() + " points" +
        (downsampled ? " (downsampled; zoom in for detail)." : ".");
    if (entries > MAX_LEGEND_ENTRIES) {
      chart.note.textContent += " No legend for " + entries + " lines: the colours are the run list's; hover names a line.";
    }
    chart.element.setAttribute("data-drawn", "1");
    if (!chart.drawn) {
      chart.drawn = true;
      chart.element.on("plotly_relayout", function (event) {
        if (state.x !== "step" || state.groupBy) {
          return; // finer data is fetched by step window; other axes show what was loaded
        }
        var range = C.zoomWindow(event);
        if (range !== undefined) {
          chart.range = range;
          load([chart], range);
        }
      });
    }
  }

  function accept(body, targets) {
    targets.forEach(function (chart) {
      chart.series = {};
      chart.bands = [];
    });
    body.series.forEach(function (series) {
      targets.forEach(function (chart) {
        if (chart.key === series.key) {
          chart.series[series.runId] = series;
        }
      });
    });
    body.groups.forEach(function (band) {
      targets.forEach(function (chart) {
        if (chart.key === band.key) {
          chart.bands.push(band);
        }
      });
    });
    targets.forEach(draw);
  }

  // One request per chart, every run's series of that key in it: the requests run side by side
  // on the server's workers, and each chart draws as soon as its own data arrives.
  function loadOne(chart, range) {
    var url = C.seriesUrl(config.seriesUrl, runIds(), [chart.key], {
      max_points: C.pointsFor(chart.element),
      x_min: range ? range[0] : null,
      x_max: range ? range[1] : null,
      group_by: state.groupBy,
    });
    return C.fetchJson(url)
      .then(function (body) {
        accept(body, [chart]);
        return body;
      })
      .catch(function (error) {
        chart.note.textContent = "Could not load the series: " + error.message;
        return null;
      });
  }

  function load(targets, range) {
    return Promise.all(targets.map(function (chart) { return loadOne(chart, range); })).then(function (bodies) {
      return bodies.filter(Boolean)[0] || null; // each says which runs are still running
    });
  }

  // Live runs: ask only for points after the last step drawn, append them with extendTraces.
  var running = [];
  function lastStep(chart, runId) {
    var series = chart.series[runId];
    return series && series.steps.length ? series.steps[series.steps.length - 1] : null;
  }

  function extend(chart, fresh) {
    var run = runsById[fresh.runId];
    var series = chart.series[fresh.runId];
    var entry = chart.traces[fresh.runId];
    var after = lastStep(chart, fresh.runId);
    var keep = fresh.steps.map(function (step) { return after === null || step > after; });
    var part = {
      steps: fresh.steps.filter(function (_, i) { return keep[i]; }),
      timestamps: fresh.timestamps.filter(function (_, i) { return keep[i]; }),
      values: fresh.values.filter(function (_, i) { return keep[i]; }),
    };
    if (part.steps.length === 0) {
      return;
    }
    if (!series || !entry || state.groupBy) {
      if (series) {
        series.steps = series.steps.concat(part.steps);
        series.timestamps = series.timestamps.concat(part.timestamps);
        series.values = series.values.concat(part.values);
        series.totalPoints += part.steps.length;
      } else {
        chart.series[fresh.runId] = Object.assign({ totalPoints: part.steps.length, downsampled: false }, part);
      }
      draw(chart);
      return;
    }
    series.steps = series.steps.concat(part.steps);
    series.timestamps = series.timestamps.concat(part.timestamps);
    series.values = series.values.concat(part.values);
    series.totalPoints += part.steps.length;
    var x = C.xValues(part, state.x, run.startTime);
    var update = { x: [x], y: [part.values], customdata: [C.hoverData(part)] };
    var indices = [entry.raw];
    if (entry.smooth !== undefined) {
      var smoothed = C.ema(part.values, state.smoothing, entry.emaState).values;
      update = { x: [x, x], y: [part.values, smoothed], customdata: [update.customdata[0], update.customdata[0]] };
      indices.push(entry.smooth);
    }
    window.Plotly.extendTraces(chart.element, update, indices);
  }

  // The new points of the running runs shown, after the earliest last step drawn of any of them;
  // resolves to whether any still runs.
  function fetchNewPoints() {
    var after = null;
    charts.forEach(function (chart) {
      running.forEach(function (runId) {
        var step = lastStep(chart, runId);
        after = step === null ? after : after === null ? step : Math.min(after, step);
      });
    });
    var url = C.seriesUrl(config.seriesUrl, running, config.keys, {
      max_points: C.pointsFor(charts[0].element),
      after_step: after,
    });
    return C.fetchJson(url).then(function (body) {
      body.series.forEach(function (fresh) {
        charts.forEach(function (chart) {
          if (chart.key === fresh.key) {
            extend(chart, fresh);
          }
        });
      });
      running = body.running;
      return running.length > 0;
    });
  }

  // Controls: each change redraws without a reload and keeps the state in the URL.
  function bind(id, event, handler) {
    var element = document.getElementById(id);
    if (element) {
      element.addEventListener(event, handler);
    }
  }
  bind("smoothing", "input", function (event) {
    state.smoothing = parseFloat(event.target.value) || 0;
    document.getElementById("smoothing-value").textContent = state.smoothing.toFixed(2);
    charts.forEach(draw);
    saveState();
  });
  bind("log-scale", "change", function (event) {
    state.log = event.target.checked;
    charts.forEach(draw);
    saveState();
  });
  bind("x-axis", "change", function (event) {
    state.x = event.target.value;
    charts.forEach(function (chart) {
      chart.range = null;
      draw(chart);
    });
    saveState();
  });
  bind("group-by", "change", function (event) {
    state.groupBy = event.target.value;
    charts.forEach(function (chart) {
      chart.range = null;
    });
    load(charts);
    saveState();
  });
  bind("only-differences", "change", function (event) {
    ["diff-table", "metric-table", "artifact-table"].forEach(function (id) {
      var table = document.getElementById(id);
      if (table) table.classList.toggle("only-differences", event.target.checked);
    });
  });

  function numeric(values) {
    return values.every(function (v) { return v !== null && v !== undefined && v !== "" && isFinite(Number(v)); });
  }

  function dimension(label, values) {
    if (numeric(values)) {
      return { label: C.escapeText(label), values: values.map(Number) };
    }
    var texts = values.map(function (v) { return v === null || v === undefined ? "—" : String(v); });
    // Numbers in numeric order (a param some runs lack is text here), then words, "—" last.
    var categories = Array.from(new Set(texts)).sort(function (a, b) {
      if ((a === "—") !== (b === "—")) {
        return a === "—" ? 1 : -1;
      }
      var x = a === "" ? NaN : Number(a), y = b === "" ? NaN : Number(b);
      if (isFinite(x) !== isFinite(y)) {
        return isFinite(x) ? -1 : 1;
      }
      return isFinite(x) ? x - y : a.localeCompare(b, undefined, { numeric: true });
    });
    return {
      label: C.escapeText(label),
      values: texts.map(function (t) { return categories.indexOf(t); }),
      tickvals: categories.map(function (_, i) { return i; }),
      ticktext: categories,  // plain SVG text (unlike the label): escaping would show the entities
    };
  }

  function drawParallel() {
    var element = document.getElementById("parallel-chart");
    if (!element || !config.pcMetric || config.pc.length === 0) {
      return;
    }
    var runs = config.runs.filter(function (run) {
      var value = run.metrics[config.pcMetric];
      return value !== null && value !== undefined && isFinite(value);
    });
    if (runs.length === 0) {
      element.textContent = "No run has a value for " + config.pcMetric + ".";
      return;
    }
    var dimensions = config.pc.map(function (key) {
      return dimension(key, runs.map(function (run) { return run.params[key]; }));
    });
    var metric = runs.map(function (run) { return run.metrics[config.pcMetric]; });
    dimensions.push({ label: C.escapeText(config.pcMetric), values: metric });
    window.Plotly.react(
      element,
      [{ type: "parcoords", dimensions: dimensions, line: { color: metric, colorscale: "Viridis", showscale: true } }],
      { margin: { l: 60, r: 60, t: 50, b: 30 }, height: 320, paper_bgcolor: "rgba(0,0,0,0)" },
      C.plotConfig
    );
  }

  function valueOf(run, name) {
    if (name.indexOf("params.") === 0) {
      return run.params[name.slice(7)];
    }
    return run.metrics[name.replace(/^metrics\./, "")];
  }

  function drawScatter() {
    var element = document.getElementById("scatter-chart");
    if (!element || !config.sx || !config.sy) {
      return;
    }
    var runs = config.runs.filter(function (run) {
      var x = valueOf(run, config.sx);
      var y = run.metrics[config.sy];
      return x !== undefined && x !== null && y !== undefined && y !== null;
    });
    var xs = runs.map(function (run) { return valueOf(run, config.sx); });
    var traces = [{
      type: "scatter",
      mode: "markers",
      x: numeric(xs) ? xs.map(Number) : xs.map(function (v) { return C.escapeText(v); }),
      y: runs.map(function (run) { return run.metrics[config.sy]; }),
      text: runs.map(function (run) { return C.escapeText(run.name); }),
      marker: { size: 10, color: runs.map(function (run) { return run.colour; }) },
      hovertemplate: "<b>%{text}</b><br>x %{x}<br>y %{y:.6g}<extra></extra>",
    }];
    var layout = C.layout({ xTitle: C.escapeText(config.sx), yTitle: "metrics." + config.sy, showlegend: false });
    window.Plotly.react(element, traces, layout, C.plotConfig);
  }

  // Parameter importance: fetched once the page is drawn (the server fits a random forest).
  function meterCell(value, text, kind) {
    var cell = document.createElement("td");
    cell.className = "importance-cell";
    if (value === null) {
      cell.textContent = "—";
      return cell;
    }
    var meter = document.createElement("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = Math.abs(value);
    meter.className = kind;
    var number = document.createElement("span");
    number.textContent = text;
    cell.append(meter, number);
    return cell;
  }

  function drawImportance() {
    var status = document.getElementById("importance-status");
    if (!status || !config.im) {
      if (status) {
        status.textContent = "No metric to weigh the params against.";
      }
      return;
    }
    var query = runIds().map(function (id) { return "runs=" + encodeURIComponent(id); });
    query.push("metric=" + encodeURIComponent(config.im));
    C.fetchJson(config.importanceUrl + "?" + query.join("&"))
      .then(function (body) {
        if (body.params.length === 0) {
          status.textContent = "Nothing to weigh: " + body.note + ".";
          return;
        }
        status.textContent = "For " + body.metric + ", over the " + body.runsUsed + " runs with a value for it.";
        var rows = body.params.map(function (param) {
          var row = document.createElement("tr");
          var name = document.createElement("th");
          name.scope = "row";
          name.textContent = param.key;
          var r = param.correlation;
          row.append(
            name,
            meterCell(param.importance, param.importance.toFixed(2), "importance"),
            meterCell(r, r === null ? "" : (r > 0 ? "+" : "") + r.toFixed(2), r !== null && r < 0 ? "negative" : "positive")
          );
          return row;
        });
        document.querySelector("#importance-table tbody").replaceChildren.apply(
          document.querySelector("#importance-table tbody"), rows
        );
        document.getElementById("importance-container").hidden = false;
      })
      .catch(function (error) {
        status.textContent = "Could not weigh the params: " + error.message;
      });
  }

  load(charts).then(function (body) {
    running = body ? body.running : [];
    if (running.length) {
      C.pollWhileRunning(fetchNewPoints, { running: "a run shown is running", ended: "Every run shown has ended." });
    }
  });
  drawParallel();
  drawScatter();
  drawImportance();
})();
