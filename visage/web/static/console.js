// Visage console: small progressive enhancements. Every page works without this file.
// No inline script anywhere (the CSP forbids it); pages opt in with data-* attributes.
"use strict";
(function () {
  // <form data-confirm="Really?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    }
  });
  // <a|button data-shortcut="j">: keyboard shortcut, unless typing in a field.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) { return; }
    var el = document.querySelector('[data-shortcut="' + CSS.escape(event.key) + '"]');
    if (el instanceof HTMLElement) { event.preventDefault(); el.click(); el.focus(); }
  });
  // <img data-refresh="5">: reload the image every N seconds (live previews).
  document.querySelectorAll("img[data-refresh]").forEach(function (img) {
    var seconds = Math.max(2, parseInt(img.dataset.refresh, 10) || 5);
    var base = img.getAttribute("src").split("?")[0];
    setInterval(function () { img.src = base + "?t=" + Date.now(); }, seconds * 1000);
  });
})();
