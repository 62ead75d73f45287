/* The respondent's survey page: skip logic shown live. The server enforces it anyway
   (feedback.definition.clean_answers); this only hides what would be refused.
   No inline scripts anywhere (the Content-Security-Policy forbids them). */
(function () {
  "use strict";

  var SCORES = { nps: true, csat: true, ces: true };

  function valueOf(fieldset) {
    var type = fieldset.getAttribute("data-type");
    var inputs = fieldset.querySelectorAll("input, textarea");
    if (type === "multi") {
      var chosen = [];
      inputs.forEach(function (input) { if (input.checked) { chosen.push(input.value); } });
      return chosen;
    }
    if (type === "text") {
      var area = fieldset.querySelector("textarea");
      return area ? area.value.trim() : "";
    }
    for (var i = 0; i < inputs.length; i += 1) {
      if (inputs[i].checked) {
        return SCORES[type] ? parseInt(inputs[i].value, 10) : inputs[i].value;
      }
    }
    return null;
  }

  function empty(value) {
    return value === null || value === undefined || value === "" ||
      (Array.isArray(value) && value.length === 0);
  }

  // The same rules as feedback.definition.condition_holds.
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

  function apply(form) {
    var effective = {};
    form.querySelectorAll("fieldset[data-question]").forEach(function (fieldset) {
      var raw = fieldset.getAttribute("data-show-if");
      var shown = true;
      if (raw) {
        try { shown = holds(JSON.parse(raw), effective); } catch (e) { shown = true; }
      }
      fieldset.hidden = !shown;
      fieldset.disabled = !shown; // disabled controls are neither sent nor validated
      if (shown) {
        var value = valueOf(fieldset);
        if (!empty(value)) { effective[fieldset.getAttribute("data-question")] = value; }
      }
    });
  }

  function start() {
    var form = document.querySelector("form[data-survey-form]");
    if (!form) { return; }
    var flag = form.querySelector("[data-js-flag]");
    if (flag) { flag.value = "1"; }
    apply(form);
    form.addEventListener("change", function () { apply(form); });
    form.addEventListener("input", function () { apply(form); });
    form.addEventListener("submit", function () {
      apply(form);
      var button = form.querySelector("button[type=submit]");
      // Disabled after the browser has collected the form, so one click sends once.
      if (button) { window.setTimeout(function () { button.disabled = true; }, 0); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
