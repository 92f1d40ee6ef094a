/* The top bar's menu button. Below the bar's natural width (app.css decides, in a media query, so the
   page is laid out right before any script runs and nothing jumps) the links fold into a panel that
   this button opens. It reports its state in aria-expanded; Escape, a click elsewhere, or widening
   the window past the breakpoint closes it, and Escape hands the focus back to the button. */
(function () {
  "use strict";
  const button = document.querySelector(".menu-toggle");
  const menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!menu) return;  // logged out: no menu

  function setOpen(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("open", open);
  }
  const isOpen = () => button.getAttribute("aria-expanded") === "true";

  button.addEventListener("click", () => setOpen(!isOpen()));
  document.addEventListener("keydown", event => {
    if (event.key !== "Escape" || !isOpen()) return;
    setOpen(false);
    button.focus();
  });
  document.addEventListener("click", event => {
    if (isOpen() && !menu.contains(event.target) && !button.contains(event.target)) setOpen(false);
  });
  // Tabbing out of the open panel (past its last link) closes it, so it never hides what gets the focus.
  menu.addEventListener("focusout", event => {
    if (isOpen() && event.relatedTarget && !menu.contains(event.relatedTarget) && event.relatedTarget !== button) setOpen(false);
  });
  // Widened past the breakpoint, the links are back in the bar: the panel must not reopen by itself later.
  const buttonShown = () => getComputedStyle(button).display !== "none";
  window.addEventListener("resize", () => { if (isOpen() && !buttonShown()) setOpen(false); });
})();
