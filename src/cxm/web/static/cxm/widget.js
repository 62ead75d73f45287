/* cxm survey widget — runs on other sites' pages.
 *
 *   <script src="https://cxm.example/widget.js" data-write-key="…" data-survey="<slug>"
 *           data-user-id="…" data-user-hash="<HMAC-SHA256 of the user id, from your server>"
 *           async></script>
 *
 * Or data-email / data-anonymous-id instead of data-user-id (the hash is then of that value).
 * Also: data-lang (a language to prefer). Asks the platform
 * whether this visitor should see the survey (POST /w/v1/surveys/<slug>/ask); if so, shows
 * it in a Shadow DOM (the page's CSS does not reach in, ours does not leak out), submits to
 * POST /w/v1/responses, thanks, and can be dismissed (not shown again in this browser tab).
 * Every text from the server is set with textContent, never as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector("script[data-survey][src*='widget.js']");
  if (!script || !window.fetch) { return; }
  var base = script.src.replace(/\/widget\.js(?:[?#].*)?$/, "");
  var cfg = {
    key: script.getAttribute("data-write-key") || "",
    survey: script.getAttribute("data-survey") || "",
    userId: script.getAttribute("data-user-id") || "",
    anonymousId: script.getAttribute("data-anonymous-id") || "",
    email: script.getAttribute("data-email") || "",
    userHash: script.getAttribute("data-user-hash") || "",
    language: script.getAttribute("data-lang") || ""
  };
  if (!cfg.survey || !(cfg.userId || cfg.anonymousId || cfg.email)) { return; }
  var DISMISSED = "cxm-survey-dismissed:" + cfg.survey;
  try { if (window.sessionStorage.getItem(DISMISSED)) { return; } } catch (e) { /* private mode */ }

  var SCORES = { nps: true, csat: true, ces: true };
  var CSS = [
    ":host { all: initial !important; }",
    ".panel { position: fixed; z-index: 2147483000; right: 20px; bottom: 20px; width: 380px;",
    "  max-width: calc(100vw - 24px); max-height: calc(100vh - 40px); overflow: auto;",
    "  box-sizing: border-box; background: #fff; color: #1d2330; border: 1px solid #dfe3ea;",
    "  border-radius: 14px; box-shadow: 0 12px 32px rgba(16,24,40,.18), 0 2px 6px rgba(16,24,40,.08);",
    "  font: 15px/1.45 'Inter','Segoe UI',system-ui,-apple-system,Roboto,Arial,sans-serif;",
    "  text-align: left; letter-spacing: normal; padding: 18px 18px 16px; }",
    ".panel * { box-sizing: border-box; font-family: inherit; }",
    ".top { display: flex; align-items: flex-start; gap: 12px; margin-bottom: 12px; }",
    ".title { flex: 1; font-size: 16px; font-weight: 650; margin: 0; line-height: 1.3; }",
    ".close { flex: 0 0 auto; width: 32px; height: 32px; border: 0; border-radius: 8px;",
    "  background: #f2f4f7; color: #475467; font-size: 20px; line-height: 1; cursor: pointer; padding: 0; }",
    ".close:hover { background: #e4e7ec; }",
    "fieldset { border: 0; margin: 0 0 16px; padding: 0; min-width: 0; }",
    "fieldset[hidden] { display: none; }",
    "legend { font-weight: 600; padding: 0; margin-bottom: 8px; font-size: 15px; }",
    ".req { color: #b42318; margin-left: 3px; }",
    ".scale { display: grid; gap: 4px; }",
    ".opt { position: relative; display: block; margin: 0; }",
    ".opt input { position: absolute; opacity: 0; width: 1px; height: 1px; margin: 0; }",
    ".opt span { display: flex; align-items: center; justify-content: center; height: 36px;",
    "  border: 1px solid #dfe3ea; border-radius: 7px; background: #fff; font-weight: 600;",
    "  font-size: 14px; cursor: pointer; color: #1d2330; }",
    ".opt input:checked + span { background: #4f46e5; border-color: #4f46e5; color: #fff; }",
    ".opt input:focus-visible + span { outline: 3px solid #a5b4fc; }",
    ".ends { display: flex; justify-content: space-between; color: #667085; font-size: 12px; margin-top: 4px; }",
    ".choices { display: flex; flex-direction: column; gap: 6px; }",
    ".choice span { justify-content: flex-start; gap: 9px; padding: 0 12px; font-weight: 500; }",
    ".choice span::before { content: ''; flex: 0 0 16px; height: 16px; border: 2px solid #98a2b3;",
    "  border-radius: 50%; background: #fff; box-sizing: border-box; }",
    ".multi .choice span::before { border-radius: 4px; }",
    ".choice input:checked + span { background: #eef0ff; color: #1d2330; border-color: #4f46e5; }",
    ".choice input:checked + span::before { border-color: #4f46e5; background: #4f46e5;",
    "  box-shadow: inset 0 0 0 2px #fff; }",
    "textarea { display: block; width: 100%; min-height: 76px; resize: vertical; font-size: 15px;",
    "  border: 1px solid #dfe3ea; border-radius: 8px; padding: 8px 10px; color: #1d2330; background: #fff; }",
    ".send { display: block; width: 100%; height: 42px; border: 0; border-radius: 9px; background: #4f46e5;",
    "  color: #fff; font-size: 15px; font-weight: 650; cursor: pointer; }",
    ".send:disabled { opacity: .6; cursor: progress; }",
    ".problem { color: #b42318; background: #fdecea; border-radius: 8px; padding: 8px 10px;",
    "  font-size: 14px; margin: 0 0 12px; }",
    ".problem[hidden] { display: none; }",
    ".thanks { text-align: center; padding: 12px 4px 6px; }",
    ".thanks .mark { width: 44px; height: 44px; margin: 0 auto 10px; border-radius: 50%;",
    "  background: #e7f6ec; color: #067647; font-size: 22px; font-weight: 700; display: flex;",
    "  align-items: center; justify-content: center; }",
    ".thanks p { margin: 0; font-size: 16px; font-weight: 600; }",
    "@media (max-width: 480px) { .panel { right: 8px; left: 8px; bottom: 8px; width: auto; max-height: 75vh; } }"
  ].join("\n");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function empty(value) {
    return value === null || value === undefined || value === "" ||
      (Array.isArray(value) && value.length === 0);
  }

  // The same rules as feedback.definition.condition_holds (the server enforces them).
  function holds(condition, answers) {
    var given = answers[condition.question];
    var value = condition.value;
    if (condition.op === "answered") { return !empty(given); }
    if (empty(given)) { return false; }
    if (Array.isArray(given)) {
      if (condition.op === "eq") { return given.indexOf(value) !== -1; }
      if (condition.op === "ne") { return given.indexOf(value) === -1; }
      if (condition.op === "in") {
        return Array.isArray(value) && value.some(function (v) { return given.indexOf(v) !== -1; });
      }
      return false;
    }
    switch (condition.op) {
      case "eq": return given === value;
      case "ne": return given !== value;
      case "in": return Array.isArray(value) && value.indexOf(given) !== -1;
      case "lt": return given < value;
      case "lte": return given <= value;
      case "gt": return given > value;
      case "gte": return given >= value;
      default: return false;
    }
  }

  function post(path, body, withKey) {
    var headers = { "Content-Type": "application/json" };
    if (withKey && cfg.key) { headers.Authorization = "Basic " + window.btoa(cfg.key + ":"); }
    return window.fetch(base + path, {
      method: "POST", mode: "cors", credentials: "omit", cache: "no-store",
      headers: headers, body: JSON.stringify(body)
    });
  }

  function styleInto(root) {
    try {
      var sheet = new window.CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.appendChild(el("style", "", CSS));
    }
  }

  function render(data) {
    var survey = data.survey;
    var labels = data.labels || {};
    var host = el("div");
    host.setAttribute("data-cxm-survey", survey.slug);
    var root = host.attachShadow({ mode: "open" });
    styleInto(root);
    var panel = el("section", "panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", survey.title || survey.slug);
    panel.setAttribute("lang", survey.language || "en");
    var top = el("div", "top");
    top.appendChild(el("p", "title", survey.title || ""));
    var close = el("button", "close", "×");
    close.type = "button";
    close.setAttribute("aria-label", labels.close || "Close");
    close.addEventListener("click", function () {
      try { window.sessionStorage.setItem(DISMISSED, "1"); } catch (e) { /* private mode */ }
      host.remove();
    });
    top.appendChild(close);
    panel.appendChild(top);

    var form = el("form");
    form.noValidate = true;
    var problem = el("p", "problem");
    problem.hidden = true;
    problem.setAttribute("role", "alert");
    form.appendChild(problem);
    var sets = [];
    survey.questions.forEach(function (q) {
      var set = el("fieldset");
      set.setAttribute("data-question", q.id);
      var legend = el("legend", "", q.text);
      if (q.required) { legend.appendChild(el("span", "req", "*")); }
      set.appendChild(legend);
      var name = "cxm-" + q.id;
      if (SCORES[q.type]) {
        var row = el("div", "scale");
        var count = q.max - q.min + 1;
        row.style.gridTemplateColumns = "repeat(" + count + ", minmax(0, 1fr))";
        for (var n = q.min; n <= q.max; n += 1) {
          var label = el("label", "opt");
          var input = el("input");
          input.type = "radio";
          input.name = name;
          input.value = String(n);
          label.appendChild(input);
          label.appendChild(el("span", "", n));
          row.appendChild(label);
        }
        set.appendChild(row);
        var ends = el("div", "ends");
        ends.appendChild(el("span", "", labels[q.type + "_low"] || ""));
        ends.appendChild(el("span", "", labels[q.type + "_high"] || ""));
        set.appendChild(ends);
      } else if (q.type === "single" || q.type === "multi") {
        var list = el("div", "choices " + q.type);
        q.choices.forEach(function (choice) {
          var option = el("label", "opt choice");
          var box = el("input");
          box.type = q.type === "single" ? "radio" : "checkbox";
          box.name = name;
          box.value = choice.id;
          option.appendChild(box);
          option.appendChild(el("span", "", choice.label));
          list.appendChild(option);
        });
        set.appendChild(list);
      } else {
        var area = el("textarea");
        area.name = name;
        area.maxLength = 5000;
        area.setAttribute("aria-label", q.text);
        set.appendChild(area);
      }
      sets.push({ q: q, set: set });
      form.appendChild(set);
    });

    function valueOf(item) {
      var inputs = item.set.querySelectorAll("input, textarea");
      if (item.q.type === "text") { return inputs[0].value.trim(); }
      if (item.q.type === "multi") {
        var chosen = [];
        inputs.forEach(function (i) { if (i.checked) { chosen.push(i.value); } });
        return chosen;
      }
      for (var i = 0; i < inputs.length; i += 1) {
        if (inputs[i].checked) {
          return SCORES[item.q.type] ? parseInt(inputs[i].value, 10) : inputs[i].value;
        }
      }
      return null;
    }

    function collect() {
      var answers = {};
      sets.forEach(function (item) {
        var shown = !item.q.show_if || holds(item.q.show_if, answers);
        item.set.hidden = !shown;
        item.set.disabled = !shown;
        if (shown) {
          var value = valueOf(item);
          if (!empty(value)) { answers[item.q.id] = value; }
        }
      });
      return answers;
    }

    var send = el("button", "send", labels.submit || "Send");
    send.type = "submit";
    form.appendChild(send);
    form.addEventListener("change", collect);
    form.addEventListener("input", collect);
    collect();

    function thank() {
      form.remove();
      var done = el("div", "thanks");
      done.setAttribute("data-cxm-thanks", "");
      done.appendChild(el("div", "mark", "✓"));
      done.appendChild(el("p", "", survey.thank_you || labels.thanks || "Thank you!"));
      panel.appendChild(done);
      try { window.sessionStorage.setItem(DISMISSED, "1"); } catch (e) { /* private mode */ }
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var answers = collect();
      var missing = sets.filter(function (item) {
        return item.q.required && !item.set.hidden && empty(answers[item.q.id]);
      });
      if (missing.length) {
        problem.textContent = (labels.problem || "Please check your answers") + ": " +
          missing[0].q.text + " (" + (labels.required || "required") + ")";
        problem.hidden = false;
        return;
      }
      send.disabled = true;
      send.textContent = labels.sending || "…";
      post("/w/v1/responses", { token: data.token, answers: answers,
                                language: survey.language }, false)
        .then(function (response) {
          if (response.status === 201 || response.status === 409) {
            return response.text().then(thank, thank);  // read the body: done either way
          }
          return response.json().then(function (body) {
            problem.textContent = (body && body.message) || labels.failed || "Error";
            problem.hidden = false;
          });
        })
        .catch(function () {
          problem.textContent = labels.failed || "Your answers could not be sent.";
          problem.hidden = false;
        })
        .then(function () {
          send.disabled = false;
          send.textContent = labels.submit || "Send";
        });
    });
    panel.appendChild(form);
    root.appendChild(panel);
    document.body.appendChild(host);
  }

  function start() {
    var languages = [];
    try { languages = Array.prototype.slice.call(navigator.languages || [], 0, 10); } catch (e) { /* old browser */ }
    post("/w/v1/surveys/" + encodeURIComponent(cfg.survey) + "/ask", {
      userId: cfg.userId || undefined, anonymousId: cfg.anonymousId || undefined,
      email: cfg.email || undefined, userHash: cfg.userHash || undefined,
      language: cfg.language || undefined,
      languages: languages
    }, true).then(function (response) {
      if (response.status !== 200) {
        if (response.status >= 400 && window.console) {
          response.json().then(function (body) {
            window.console.warn("cxm survey widget:", body && body.code, body && body.message);
          }, function () { /* not JSON */ });
        }
        return null;
      }
      return response.json().then(render);
    }).catch(function () { /* offline or blocked: show nothing */ });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
