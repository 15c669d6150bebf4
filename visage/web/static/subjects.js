// Subjects screen: drag and drop onto the enrolment drop zone, and webcam capture.
// Progressive enhancement only: without this file the plain <input type="file" multiple>
// and its form do everything. No inline script (the CSP forbids it).
"use strict";
(function () {
  var form = document.getElementById("enrol-form");
  if (!(form instanceof HTMLFormElement)) { return; }
  var input = form.querySelector('input[type="file"]');
  var csrf = form.querySelector('input[name="csrf"]');

  // Swap the parts of the page an enrolment changes (report, templates) with those of the
  // page the server answered, keeping the webcam running for the next photo.
  function showResult(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    ["enrol-report", "templates"].forEach(function (id) {
      var fresh = doc.getElementById(id);
      var old = document.getElementById(id);
      if (fresh && old) { old.replaceWith(document.importNode(fresh, true)); }
    });
  }

  // Drag and drop: dropped files go into the file field, which the form then posts.
  var zone = form.querySelector("[data-dropzone]");
  if (zone && input instanceof HTMLInputElement) {
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      var dropped = event.dataTransfer && event.dataTransfer.files;
      if (!dropped || !dropped.length) { return; }
      var list = new DataTransfer();
      Array.prototype.forEach.call(dropped, function (file) {
        if (file.type.indexOf("image/") === 0) { list.items.add(file); }
      });
      input.files = list.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      input.focus();
    });
  }

  // Webcam: shown only where the browser can open one.
  var box = document.querySelector("[data-webcam]");
  if (!box || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.fetch) { return; }
  var start = box.querySelector("[data-webcam-start]");
  var stop = box.querySelector("[data-webcam-stop]");
  var shoot = box.querySelector("[data-webcam-shoot]");
  var video = box.querySelector("[data-webcam-video]");
  var error = box.querySelector("[data-webcam-error]");
  var stream = null;
  box.hidden = false;

  function say(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  function running(on) {
    video.hidden = !on;
    shoot.hidden = !on;
    stop.hidden = !on;
    start.hidden = on;
  }

  start.addEventListener("click", function () {
    say("");
    navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        running(true);
        shoot.focus();
      })
      .catch(function () { say(error.dataset.denied); });
  });

  stop.addEventListener("click", function () {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    stream = null;
    video.srcObject = null;
    running(false);
    start.focus();
  });

  shoot.addEventListener("click", function () {
    if (!video.videoWidth) { return; }
    var canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    shoot.disabled = true;
    canvas.toBlob(function (blob) {
      var body = new FormData();
      body.append("photos", blob, "webcam-" + new Date().toISOString().replace(/[:.]/g, "-") + ".jpg");
      fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf ? csrf.value : "" },
      })
        .then(function (response) {
          return response.text().then(function (html) {
            if (!response.ok && response.status !== 422) { throw new Error(String(response.status)); }
            showResult(html);
            say("");
          });
        })
        .catch(function () { say(error.dataset.failed); })
        .then(function () { shoot.disabled = false; });
    }, "image/jpeg", 0.92);
  });
})();
