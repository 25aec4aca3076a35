/* Autocomplete for the search box: the ARIA 1.2 combobox + listbox pattern.
 *
 * Progressive: without this file the box is a plain form. With it, typing asks
 * the form's data-suggest-url (?q=...) after a short pause; ArrowDown/ArrowUp
 * move through the suggestions, Enter searches the chosen one, Escape closes
 * the list. Suggestions are inserted as text, never as HTML.
 */
(function () {
  "use strict";

  var DELAY_MS = 150;
  var counter = 0;

  function setup(form) {
    var input = form.querySelector("input[name=q]");
    var url = form.getAttribute("data-suggest-url");
    if (!input || !url || !window.fetch) { return; }
    var id = "suggest-" + (++counter);
    var list = document.createElement("ul");
    var status = document.createElement("div");
    var items = [];
    var active = -1;
    var timer = null;
    var pending = null;

    list.id = id;
    list.className = "suggestions";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "搜索建议");
    list.hidden = true;
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    form.classList.add("has-suggest");
    input.insertAdjacentElement("afterend", list);
    form.appendChild(status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", id);
    input.setAttribute("aria-expanded", "false");

    function close() {
      list.hidden = true;
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      active = index;
      items.forEach(function (li, i) {
        li.setAttribute("aria-selected", i === index ? "true" : "false");
        li.classList.toggle("is-active", i === index);
      });
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", items[index].id);
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      input.value = items[index].textContent;
      close();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }

    function render(suggestions) {
      list.textContent = "";
      items = suggestions.map(function (text, i) {
        var li = document.createElement("li");
        li.id = id + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.textContent = text;
        li.addEventListener("mousedown", function (event) { event.preventDefault(); });
        li.addEventListener("click", function () { choose(i); });
        list.appendChild(li);
        return li;
      });
      active = -1;
      if (items.length && document.activeElement === input) {
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
        status.textContent = items.length + " 条建议，用上下方向键选择";
      } else {
        close();
      }
    }

    function fetchSuggestions() {
      var q = input.value.trim();
      if (pending) { pending.abort(); }
      if (!q) { render([]); return; }
      pending = window.AbortController ? new AbortController() : null;
      fetch(url + "?q=" + encodeURIComponent(q), {
        headers: { "Accept": "application/json" },
        signal: pending ? pending.signal : undefined
      }).then(function (response) {
        return response.ok ? response.json() : { suggestions: [] };
      }).then(function (data) {
        if (input.value.trim() === q) { render(data.suggestions || []); }
      }).catch(function () { /* aborted or offline: keep the plain box */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(fetchSuggestions, DELAY_MS);
    });

    input.addEventListener("keydown", function (event) {
      var open = !list.hidden && items.length > 0;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (!open) { if (items.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } return; }
        event.preventDefault();
        var step = event.key === "ArrowDown" ? 1 : -1;
        var next = active + step;
        if (next >= items.length) { next = -1; }
        if (next < -1) { next = items.length - 1; }
        highlight(next);
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        close();
      }
    });

    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-suggest-url]"), setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
