// The Packets page's upload with a progress bar. Progressive enhancement: without this script
// (or without FormData/XHR) the form posts as a plain multipart form and the browser's own
// indicator is all there is. The server's answer (the "uploaded" page, or the form again with
// its error) replaces the page, as the plain post would.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var form = document.getElementById("upload");
  var bar = document.getElementById("upload-progress");
  var note = document.getElementById("upload-progress-note");
  if (!form || !bar || !note || !window.FormData || !window.XMLHttpRequest) return;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    bar.hidden = false;
    bar.value = 0;
    note.textContent = "Uploading…";
    button.disabled = true;
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      bar.max = e.total;
      bar.value = e.loaded;
      note.textContent = "Uploading: " + Math.floor((100 * e.loaded) / e.total) + "% of " +
        (e.total / (1024 * 1024)).toFixed(1) + " MB";
    });
    xhr.upload.addEventListener("load", function () {
      note.textContent = "Uploaded; Herald is checking the file…";
    });
    xhr.addEventListener("load", function () {
      if (xhr.responseURL) window.history.replaceState(null, "", xhr.responseURL);
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      bar.hidden = true;
      button.disabled = false;
      note.textContent = "The upload did not reach Herald (the connection failed). Nothing was uploaded; try again.";
    });
    xhr.send(new FormData(form));
  });
});
