// Baitiao Ops console: the little behaviour the pages need, no inline scripts (CSP).
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches("[data-autosubmit]")) target.form.submit();
});
document.addEventListener("submit", (event) => {
  // One click, one request: a double-clicked button does not submit twice.
  const form = event.target;
  if (form.dataset.submitted === "1" && !form.hasAttribute("hx-post")) {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "1";
  form.querySelectorAll("button[type=submit]").forEach((button) => button.setAttribute("aria-busy", "true"));
});
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-submitted]").forEach((form) => delete form.dataset.submitted);
});
