// A tus 1.0.0 client (https://tus.io/protocols/resumable-upload) for the checkpoint upload page: hashes the
// file (SHA-256, checked by the worker after the last chunk), creates the upload, then PATCHes it in chunks.
// A dropped chunk is retried from the offset the server reports (HEAD); choosing the same file again after a
// reload resumes the upload remembered in localStorage.
(function () {
  "use strict";
  var form = document.getElementById("resumable-upload");
  if (!form) { return; }
  var bar = form.querySelector("progress");
  var state = form.querySelector('[data-field="state"]');
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var chunkBytes = parseInt(form.dataset.chunkBytes, 10);
  var READ_BYTES = 8 * 1048576;

  function say(text, done, total) {
    state.textContent = text;
    if (total) { bar.max = total; bar.value = done; }
  }
  function mb(n) { return (n / 1048576).toFixed(1) + " MB"; }
  function b64(text) { return window.btoa(unescape(encodeURIComponent(text))); }
  function sleep(ms) { return new Promise(function (resolve) { window.setTimeout(resolve, ms); }); }

  async function hashFile(file) {
    var digest = new window.StylegapSha256();
    for (var at = 0; at < file.size; at += READ_BYTES) {
      digest.update(new Uint8Array(await file.slice(at, at + READ_BYTES).arrayBuffer()));
      say("Computing the file's SHA-256: " + mb(Math.min(at + READ_BYTES, file.size)) + " of " + mb(file.size),
        at, file.size);
    }
    return digest.hex();
  }

  // Resolves with the finished XMLHttpRequest whatever its status; rejects only when the network failed.
  function send(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      xhr.setRequestHeader("X-CSRFToken", csrf);
      Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      if (onProgress) { xhr.upload.onprogress = function (e) { onProgress(e.loaded); }; }
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = xhr.onabort = xhr.ontimeout = function () { reject(new Error("network")); };
      xhr.send(body === undefined ? null : body);
    });
  }

  async function serverOffset(url) {
    var xhr = await send("HEAD", url, {});
    return xhr.status === 200 ? parseInt(xhr.getResponseHeader("Upload-Offset"), 10) : null;
  }

  async function start(file) {
    var key = "stylegap-tus:" + form.dataset.createUrl + ":" + file.name + ":" + file.size + ":" + file.lastModified;
    var url = window.localStorage.getItem(key), offset = null;
    if (url) { offset = await serverOffset(url).catch(function () { return null; }); }
    if (offset === null) {
      var sha256 = await hashFile(file);
      var created = await send("POST", form.dataset.createUrl, {
        "Upload-Length": String(file.size),
        "Upload-Metadata": "filename " + b64(file.name) + ",sha256 " + b64(sha256)
      });
      if (created.status !== 201) { throw new Error(created.responseText || "The server refused the upload."); }
      url = created.getResponseHeader("Location");
      window.localStorage.setItem(key, url);
      offset = 0;
    }
    var failures = 0, attached = false;
    while (offset < file.size) {
      var from = offset;
      say("Uploading: " + mb(from) + " of " + mb(file.size), from, file.size);
      try {
        var xhr = await send("PATCH", url, {
          "Upload-Offset": String(from),
          "Content-Type": "application/offset+octet-stream"
        }, file.slice(from, from + chunkBytes), function (loaded) {
          say("Uploading: " + mb(from + loaded) + " of " + mb(file.size), from + loaded, file.size);
        });
        if (xhr.status === 204) {
          offset = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
          attached = offset === file.size;
          failures = 0;
          continue;
        }
        if (xhr.status !== 409 && xhr.status !== 423 && xhr.status < 500) {
          window.localStorage.removeItem(key);
          throw new Error(xhr.responseText || "The server refused the upload (" + xhr.status + ").");
        }
      } catch (err) {
        if (err.message !== "network") { throw err; }
      }
      failures += 1;
      if (failures > 10) { throw new Error("The connection keeps failing; choose the file again later to resume."); }
      say("Connection lost at " + mb(offset) + "; resuming…", offset, file.size);
      await sleep(Math.min(30000, 1000 * Math.pow(2, failures - 1)));
      var reported = await serverOffset(url).catch(function () { return null; });
      if (reported !== null) { offset = reported; }
    }
    if (!attached) {
      // Every byte is on the server but the request that sent the last ones was lost: an empty PATCH attaches it.
      var last = await send("PATCH", url, {
        "Upload-Offset": String(file.size),
        "Content-Type": "application/offset+octet-stream"
      }, new Blob([]));
      if (last.status !== 204 && last.status !== 409) { throw new Error(last.responseText || "Finishing failed."); }
    }
    window.localStorage.removeItem(key);
    say("Uploaded: a worker now checks its SHA-256, unpacks and validates it…", file.size, file.size);
    window.setTimeout(function () { window.location.assign(form.dataset.doneUrl); }, 1500);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) { return; }
    form.querySelector("button").disabled = true;
    start(file).catch(function (err) {
      say("Upload stopped: " + err.message);
      form.querySelector("button").disabled = false;
    });
  });
})();
