// Front end of the study notice: what a study holds when none of it can be shown.
// Every string comes from the kernel, partly from DICOM files, and is set with
// textContent, never as HTML.

const NOTICE_CSS = `
.lbx-notice { background: #fff8e1; color: #111; border: 1px solid #e0a800;
  border-left: 6px solid #e0a800; border-radius: 3px; padding: 10px 14px;
  font: 13px/1.45 system-ui, sans-serif; }
.lbx-notice .lbx-head { color: #444; margin-bottom: 6px; white-space: pre-wrap; }
.lbx-notice .lbx-notice-title { font-weight: 600; margin-bottom: 4px; }
.lbx-notice ul { margin: 4px 0 0 18px; padding: 0; }
`;

function render({ model, el }) {
  injectStyle("lbx-notice-style", NOTICE_CSS);
  const root = element("div", "lbx-notice", el);
  root.setAttribute("role", "status");
  const head = element("div", "lbx-head", root);
  const title = element("div", "lbx-notice-title", root);
  const list = element("ul", "lbx-notice-lines", root);

  function show() {
    const overlay = model.get("overlay") || {};
    head.textContent = [overlay.patient, overlay.study].filter(Boolean).join("\n");
    head.hidden = !head.textContent;
    title.textContent = model.get("title") || "";
    list.replaceChildren();
    for (const line of model.get("lines") || []) {
      element("li", "lbx-notice-line", list).textContent = line;
    }
    root.dataset.painted = "true";
  }
  for (const name of ["title", "lines", "overlay"]) model.on("change:" + name, show);
  show();
}

export default { render };
