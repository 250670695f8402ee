// The web view's one script (no inline scripts: the Content-Security-Policy forbids them).
// On a recording's page, it starts asciinema-player on the cast the page names, with the
// recording's own markers ("m" events).
"use strict";
(function () {
  var element = document.getElementById("player");
  var state = document.getElementById("player-state");
  if (element === null) return;
  if (typeof AsciinemaPlayer === "undefined") {
    state.textContent = "the player is not installed with this relay";
    return;
  }
  var player = AsciinemaPlayer.create(element.dataset.cast, element, {
    autoPlay: true, preload: true, idleTimeLimit: 2, fit: "width", terminalFontSize: "14px"
  });
  player.addEventListener("playing", function () { state.textContent = "playing"; });
  player.addEventListener("ended", function () { state.textContent = "ended"; });
  player.addEventListener("marker", function (event) {
    state.textContent = "marker: " + (event.label || event.index);
  });
})();
