// Keeps the working-time countdowns current. The server says how many working seconds are left
// (data-left) and for how long the clock keeps running before office hours end (data-run); outside
// office hours the countdown stands still, as working time does.
(function () {
  "use strict";
  var started = Date.now();
  var words = {
    "zh-CN": { left: "剩 ", over: "超时 ", h: "小时", m: "分" },
    "en": { left: "", over: "", h: "h ", m: "m", leftAfter: " left", overAfter: " overdue" }
  };
  function text(seconds, locale) {
    var w = words[locale] || words["zh-CN"];
    var rest = Math.abs(Math.trunc(seconds));
    var hours = Math.floor(rest / 3600);
    var minutes = Math.floor((rest % 3600) / 60);
    var body = hours + w.h + (minutes < 10 ? "0" : "") + minutes + w.m;
    if (seconds < 0) { return w.over + body + (w.overAfter || ""); }
    return w.left + body + (w.leftAfter || "");
  }
  function tick() {
    var elapsed = (Date.now() - started) / 1000;
    var nodes = document.querySelectorAll(".countdown[data-left]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var run = Number(node.getAttribute("data-run")) || 0;
      var left = Number(node.getAttribute("data-left")) - Math.min(elapsed, run);
      node.textContent = text(left, node.getAttribute("data-locale"));
    }
  }
  if (document.querySelector(".countdown[data-left]")) {
    setInterval(tick, 15000);
  }
})();

// On a narrow screen the diagram scrolls sideways: start with the current state in view.
(function () {
  "use strict";
  var box = document.querySelector(".diagram-box");
  var current = box && box.querySelector(".state.current rect");
  if (!current || box.scrollWidth <= box.clientWidth) { return; }
  var boxRect = box.getBoundingClientRect();
  var rect = current.getBoundingClientRect();
  box.scrollLeft += rect.left + rect.width / 2 - (boxRect.left + boxRect.width / 2);
})();
